"""A small asyncio HTTP/1.1 load generator (keep-alive, Content-Length or chunked bodies).

Python, but it only parses framing, so on one core it drives several thousand requests/s:
well above what it measures here (checked by running it against the fake upstream).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    cpu_per_call: float | None = None  # the measured server's CPU seconds per 200, if known

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader, started: float, result: Result) -> bool:
    """Read one response; returns whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    result.ttfb.append(time.perf_counter() - started)
    status = int(head[9:12])
    result.statuses[status] = result.statuses.get(status, 0) + 1
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        start = lower.find(b"content-length:")
        length = int(lower[start + 15: lower.find(b"\r\n", start)]) if start >= 0 else 0
        await reader.readexactly(length)
    return b"connection: close" not in lower


async def _closed_loop(host: str, port: int, request: bytes, deadline: float,
                       result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            if not await _read_response(reader, started, result):
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            result.latencies.append(time.perf_counter() - started)
    except (ConnectionError, asyncio.IncompleteReadError):
        result.errors += 1
    finally:
        writer.close()


async def closed_loop(host: str, port: int, request: bytes, concurrency: int,
                      seconds: float) -> Result:
    """`concurrency` connections each sending requests back to back for `seconds`."""
    result = Result()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*[_closed_loop(host, port, request, deadline, result)
                           for _ in range(concurrency)])
    result.elapsed = time.perf_counter() - started
    return result


async def _one_stream(host: str, port: int, request: bytes, result: Result) -> None:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        result.statuses[status] = result.statuses.get(status, 0) + 1
        first = True
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            piece = await reader.readexactly(size + 2)
            if first and size:
                result.ttfb.append(time.perf_counter() - started)
                first = False
            body += piece
            if size == 0:
                break
        writer.close()
        if b"[DONE]" not in body or b"event: error" in body:
            result.errors += 1
        else:
            result.latencies.append(time.perf_counter() - started)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        result.errors += 1


async def streams(host: str, port: int, request: bytes, count: int) -> Result:
    """`count` streams opened at once, each on its own connection, read to the end."""
    result = Result()
    started = time.perf_counter()
    await asyncio.gather(*[_one_stream(host, port, request, result) for _ in range(count)])
    result.elapsed = time.perf_counter() - started
    return result
