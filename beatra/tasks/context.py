"""What a capability handler sees of the running task it owns: the claim itself (task_id,
account_id, capability, model, input, state, attempts, …) plus the owner's actions."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from beatra.tasks import states
from beatra.tasks.states import Claim


@dataclass
class TaskContext(Claim):
    lease_seconds: float = field(kw_only=True)  # how far a progress report extends the lease

    @classmethod
    def of(cls, claim: Claim, *, lease_seconds: float) -> TaskContext:
        values = {f.name: getattr(claim, f.name) for f in fields(Claim)}
        return cls(**values, lease_seconds=lease_seconds)

    def progress(self, stage: str, percent: int | None = None, message: str | None = None) -> None:
        """Record progress (also renews the lease). Raises LostClaim if the task is gone."""
        states.set_progress(self, {"stage": stage, "percent": percent, "message": message},
                            lease_seconds=self.lease_seconds)

    def checkpoint(self) -> None:
        """A safe place to stop: raises CancelRequested or LostClaim when the task must end."""
        states.checkpoint(self)

    def warn(self, code: str, message: str, field: str | None = None) -> None:
        """Add a TaskWarning (saved with the task's next transition)."""
        warning = {"code": code, "message": message, "field": field}
        if warning not in self.warnings:
            self.warnings.append(warning)

    def save_state(self, state: dict[str, Any]) -> None:
        """Persist handler state now (e.g. an upstream job id, before polling for it)."""
        states.save_state(self, state)
        self.state = dict(state)
