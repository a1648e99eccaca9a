"""A fast fake OpenAI chat upstream for benchmarks: raw asyncio HTTP/1.1, canned bodies.

Non-streaming: one canned chat.completion with usage. Streaming (`"stream": true` in the
body): STREAM_CHUNKS content chunks spread over STREAM_SECONDS, a usage chunk, [DONE].
It does no real work, so it cannot be the bottleneck of what is measured through it.

    python -m bench.fake_upstream --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

STREAM_CHUNKS = int(os.environ.get("BENCH_STREAM_CHUNKS", "20"))
STREAM_SECONDS = float(os.environ.get("BENCH_STREAM_SECONDS", "5"))
CANNED_REPLY = "Hello from bench."  # the non-streaming answer: seeing it proves a relay

_COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench-model", "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": CANNED_REPLY},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}).encode()
_SYNC = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
         + str(len(_COMPLETION)).encode() + b"\r\n\r\n" + _COMPLETION)
_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def _chunk(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    event = f"data: {data}\n\n".encode()
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def _delta(text: str | None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage else [{"index": 0, "delta": {"content": text} if text else {},
                                 "finish_reason": finish}]
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "bench-model", "choices": choices}
    if usage:
        body["usage"] = usage
    return body


_FIRST = _chunk({**_delta("w0 "), "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                      "content": "w0 "},
                                                "finish_reason": None}]})
_MIDDLE = [_chunk(_delta(f"w{i} ")) for i in range(1, STREAM_CHUNKS)]
_TAIL = (_chunk(_delta(None, "stop"))
         + _chunk(_delta(None, usage={"prompt_tokens": 12, "completion_tokens": STREAM_CHUNKS,
                                      "total_tokens": 12 + STREAM_CHUNKS}))
         + _chunk("[DONE]") + b"0\r\n\r\n")


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            if b'"stream":true' in body or b'"stream": true' in body:
                writer.write(_STREAM_HEAD + _FIRST)
                await writer.drain()
                pause = STREAM_SECONDS / STREAM_CHUNKS
                for piece in _MIDDLE:
                    await asyncio.sleep(pause)
                    writer.write(piece)
                    await writer.drain()
                writer.write(_TAIL)
            else:
                writer.write(_SYNC)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=4096)
    print(f"fake upstream listening on http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
