"""Per-model parameter policy (catalog `params`) and the upstream request it produces.

Catalog form (all keys optional):

    params:
      token_limit_field: max_completion_tokens   # or max_tokens: the one field this upstream
                                                 # accepts; the client's max_tokens /
                                                 # max_completion_tokens is sent under it
      default_max_output: 4096    # cap sent when the client sets none (keeps the reserve a
                                  # true upper bound)
      drop: [temperature, top_p]  # parameters the model rejects; removed silently
      set: {}                     # fields always sent (e.g. thinking: {type: enabled})
      non_stream_set: {enable_thinking: false}   # sent on non-streaming calls (Qwen3)
      reasoning_echo: tool_calls  # DeepSeek/Kimi thinking: assistant tool-call turns must
                                  # carry their reasoning_content; beatra restores it
      stream_usage: true          # false for upstreams that reject stream_options (GLM)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from beatra.catalog.model import Model

_KEYS = {"token_limit_field", "default_max_output", "drop", "set", "non_stream_set",
         "reasoning_echo", "stream_usage"}
_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens")
# Fields that exist only between the client and beatra.
_BEATRA_ONLY = ("model_options",)


@dataclass(frozen=True)
class ChatPolicy:
    token_limit_field: str = "max_completion_tokens"
    default_max_output: int = 4096
    drop: frozenset[str] = frozenset()
    set_fields: dict[str, Any] = field(default_factory=dict)
    non_stream_set: dict[str, Any] = field(default_factory=dict)
    reasoning_echo: bool = False
    stream_usage: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ChatPolicy:
        """Parse catalog `params`; ValueError names the bad key."""
        unknown = set(params) - _KEYS
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
        limit_field = params.get("token_limit_field", "max_completion_tokens")
        if limit_field not in _TOKEN_FIELDS:
            raise ValueError("token_limit_field must be max_completion_tokens or max_tokens")
        default_max = params.get("default_max_output", 4096)
        if not isinstance(default_max, int) or default_max < 1:
            raise ValueError("default_max_output must be a positive integer")
        drop = params.get("drop", [])
        if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
            raise ValueError("drop must be a list of parameter names")
        for key in ("set", "non_stream_set"):
            if not isinstance(params.get(key, {}), dict):
                raise ValueError(f"{key} must be a mapping")
        echo = params.get("reasoning_echo")
        if echo not in (None, "tool_calls"):
            raise ValueError("reasoning_echo must be tool_calls")
        return cls(
            token_limit_field=limit_field,
            default_max_output=default_max,
            drop=frozenset(drop),
            set_fields=dict(params.get("set", {})),
            non_stream_set=dict(params.get("non_stream_set", {})),
            reasoning_echo=echo == "tool_calls",
            stream_usage=bool(params.get("stream_usage", True)),
        )

    def output_limit(self, request: dict[str, Any]) -> int:
        """Tokens per choice the upstream may generate: the client's cap, else ours."""
        return (request.get("max_completion_tokens") or request.get("max_tokens")
                or self.default_max_output)

    def upstream_body(
        self,
        request: dict[str, Any],
        upstream_model: str,
        *,
        restore_reasoning: Callable[[list[str]], str | None],
    ) -> dict[str, Any]:
        """The body to send: client fields pass through unless this policy changes them."""
        body = {k: v for k, v in request.items() if v is not None and k not in _BEATRA_ONLY}
        # model_options first, so nothing below (what the bill and the relay depend on) can be
        # overridden by it; the request schema also refuses those keys in it.
        body.update(request.get("model_options") or {})
        body["model"] = upstream_model
        body["messages"] = [self._message(m, restore_reasoning) for m in request["messages"]]
        for name in _TOKEN_FIELDS:
            body.pop(name, None)
        body[self.token_limit_field] = self.output_limit(request)
        for name in self.drop:
            body.pop(name, None)
        stream = bool(request.get("stream"))
        body["stream"] = stream
        body.pop("stream_options", None)
        if stream and self.stream_usage:
            # Always ask for usage so the call can be billed exactly; the usage chunk is
            # withheld from clients that did not ask for it.
            body["stream_options"] = {"include_usage": True}
        body.update(self.set_fields)
        if not stream:
            body.update(self.non_stream_set)
        return body

    def _message(
        self, message: dict[str, Any], restore: Callable[[list[str]], str | None]
    ) -> dict[str, Any]:
        if message.get("role") != "assistant":
            return message
        echoed = message.get("reasoning_content")
        out = {k: v for k, v in message.items() if k not in ("reasoning_content", "reasoning")}
        calls = message.get("tool_calls")
        if self.reasoning_echo and calls:
            reasoning = restore([c["id"] for c in calls]) or echoed
            if reasoning:
                out["reasoning_content"] = reasoning
        return out


_cache: WeakKeyDictionary[Model, ChatPolicy] = WeakKeyDictionary()


def policy_for(model: Model) -> ChatPolicy:
    """Parsed once per catalog model (its params were validated when the catalog loaded)."""
    policy = _cache.get(model)
    if policy is None:
        policy = _cache[model] = ChatPolicy.from_params(model.params)
    return policy
