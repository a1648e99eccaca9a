"""What a capability handler sees of the running task it owns."""

from __future__ import annotations

from typing import Any

from beatra.config import Settings
from beatra.tasks import states
from beatra.tasks.states import Claim


class TaskContext:
    def __init__(self, claim: Claim, settings: Settings) -> None:
        self.claim = claim
        self.settings = settings

    @property
    def task_id(self) -> str:
        return self.claim.task_id

    @property
    def account_id(self) -> str:
        return self.claim.account_id

    @property
    def capability(self) -> str:
        return self.claim.capability

    @property
    def model(self) -> str:
        """The resolved catalog model id."""
        return self.claim.model

    @property
    def input(self) -> dict[str, Any]:
        return self.claim.input

    @property
    def state(self) -> dict[str, Any]:
        return self.claim.state

    @property
    def attempt(self) -> int:
        return self.claim.attempts

    def progress(self, stage: str, percent: int | None = None, message: str | None = None) -> None:
        """Record progress (also renews the lease). Raises LostClaim if the task is gone."""
        states.set_progress(self.claim, {"stage": stage, "percent": percent, "message": message},
                            lease_seconds=self.settings.task_lease_seconds)

    def checkpoint(self) -> None:
        """A safe place to stop: raises CancelRequested or LostClaim when the task must end."""
        states.checkpoint(self.claim)

    def warn(self, code: str, message: str, field: str | None = None) -> None:
        """Add a TaskWarning (saved with the task's next transition)."""
        warning = {"code": code, "message": message, "field": field}
        if warning not in self.claim.warnings:
            self.claim.warnings.append(warning)

    def save_state(self, state: dict[str, Any]) -> None:
        """Persist handler state now (e.g. an upstream job id, before polling for it)."""
        states.save_state(self.claim, state)
        self.claim.state = dict(state)
