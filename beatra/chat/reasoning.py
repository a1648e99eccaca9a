"""Chain-of-thought normalisation: whatever the upstream does, clients get `reasoning_content`
and clean `content`.

Upstream styles: `reasoning_content` (DeepSeek, Kimi, GLM-4.5+, Qwen, Doubao, Hunyuan),
`reasoning` (OpenRouter-style), or `<think>…</think>` at the start of `content` (GLM-Z1 and
other open models), possibly with the tags split across stream chunks.
"""

from __future__ import annotations

from typing import Any

OPEN, CLOSE = "<think>", "</think>"


def split_think(content: str) -> tuple[str | None, str]:
    """(reasoning, content) for a whole message; reasoning is None when there was none."""
    stripped = content.lstrip()
    if stripped.startswith(OPEN):
        body = stripped[len(OPEN):]
        end = body.find(CLOSE)
        if end == -1:  # cut off while thinking
            return body, ""
        return body[:end], body[end + len(CLOSE):].lstrip()
    if stripped.startswith(CLOSE):  # a stray closing tag leaked by some upstreams
        return None, stripped[len(CLOSE):].lstrip()
    return None, content


def normalise_message(message: dict[str, Any]) -> None:
    """In place: fold `reasoning`/inline think tags into `reasoning_content`."""
    reasoning = message.get("reasoning_content")
    alt = message.pop("reasoning", None)
    message.pop("reasoning_details", None)
    if not reasoning and isinstance(alt, str):
        reasoning = alt
    content = message.get("content")
    if isinstance(content, str):
        think, rest = split_think(content)
        if think is not None or rest is not content:
            message["content"] = rest
        if think is not None:
            reasoning = (reasoning or "") + think
    if reasoning is not None:
        message["reasoning_content"] = reasoning


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ThinkSplitter:
    """Streaming `<think>` parser for one choice; holds back only what could be a split tag."""

    __slots__ = ("buf", "state")

    def __init__(self) -> None:
        self.state = "start"  # start → think → after → content, or start → content
        self.buf = ""

    def feed(self, text: str) -> tuple[str, str]:
        reasoning, content = "", ""
        self.buf += text
        while self.buf:
            if self.state == "start":
                head = self.buf.lstrip()
                if head.startswith(OPEN):
                    self.state, self.buf = "think", head[len(OPEN):]
                elif head.startswith(CLOSE):
                    self.state, self.buf = "after", head[len(CLOSE):]
                elif not head or OPEN.startswith(head) or CLOSE.startswith(head):
                    break  # undecided: could still become a tag
                else:
                    self.state = "content"
            elif self.state == "think":
                end = self.buf.find(CLOSE)
                if end >= 0:
                    reasoning += self.buf[:end]
                    self.state, self.buf = "after", self.buf[end + len(CLOSE):]
                else:
                    keep = _partial_suffix(self.buf, CLOSE)
                    reasoning += self.buf[: len(self.buf) - keep]
                    self.buf = self.buf[len(self.buf) - keep:]
                    break
            elif self.state == "after":
                self.buf = self.buf.lstrip()
                if self.buf:
                    self.state = "content"
            else:
                content += self.buf
                self.buf = ""
        return reasoning, content

    def flush(self) -> tuple[str, str]:
        held, self.buf = self.buf, ""
        if self.state == "think":
            return held, ""
        return "", held if self.state != "after" else held.lstrip()
