"""Helpers for the upload / storage / SSRF / media-input tests: a tiny loopback HTTP server,
a guard that fails any non-loopback connection, and media bytes the sandbox does not make."""

from __future__ import annotations

import contextlib
import io
import ipaddress
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class LocalServer:
    port: int
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@contextlib.contextmanager
def serve(routes: dict[str, Handler],
          tls: tuple[str, str] | None = None) -> Iterator[LocalServer]:
    """HTTP/1.1 on 127.0.0.1 (ephemeral port); `routes` maps a path to a handler.
    `tls` = (cert file, key file) serves HTTPS instead."""
    state: dict[str, LocalServer] = {}

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state["server"].seen.append((self.path, dict(self.headers)))
            handler = routes.get(self.path.split("?", 1)[0])
            if handler is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            handler(self)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    if tls is not None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state["server"] = LocalServer(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def send(body: bytes, content_type: str = "application/octet-stream", status: int = 200,
         headers: dict[str, str] | None = None) -> Handler:
    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(body)

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return send(b"", "text/plain", status, {"Location": location})


def guard_connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record every outgoing TCP connection urllib3 makes; fail the test (without connecting)
    on any address that is not loopback, so a refusal that comes too late cannot hide."""
    import urllib3.util.connection as conn

    made: list[tuple[str, int]] = []
    real = conn.create_connection

    def guarded(address, *args, **kwargs):
        host, port = address[0], address[1]
        made.append((host, port))
        if not ipaddress.ip_address(host.strip("[]")).is_loopback:
            raise AssertionError(f"connection attempted to non-loopback {host}:{port}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(conn, "create_connection", guarded)
    return made


def mp4_bytes(duration_ms: int, *, brand: bytes = b"isom", version: int = 0,
              moov_last: bool = False) -> bytes:
    """A minimal ISO-BMFF file: ftyp, an mdat of filler and moov/mvhd with the duration."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    timescale = 600
    duration = duration_ms * timescale // 1000
    if version == 1:
        mvhd = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        mvhd = bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration)
    mvhd += struct.pack(">IH", 0x00010000, 0x0100) + bytes(70) + struct.pack(">I", 2)
    ftyp = box(b"ftyp", brand + struct.pack(">I", 0) + brand + b"mp41")
    moov = box(b"moov", box(b"mvhd", mvhd))
    mdat = box(b"mdat", bytes(4096))
    return ftyp + (mdat + moov if moov_last else moov + mdat)


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims huge dimensions (a decompression bomb's calling card)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class ZeroStream(io.RawIOBase):
    """`size` bytes of a repeating pattern, produced on demand (never held in memory)."""

    def __init__(self, size: int, prefix: bytes = b"", suffix: bytes = b"") -> None:
        self.parts = [prefix, None, suffix]
        self.size = size
        self.pos = 0
        self.total = len(prefix) + size + len(suffix)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # Werkzeug's test client measures the stream with seek/tell

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.total}[whence]
        self.pos = max(0, min(self.total, base + offset))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        prefix, _, suffix = self.parts
        n = 0
        want = len(buffer)
        while n < want and self.pos < self.total:
            if self.pos < len(prefix):
                piece = prefix[self.pos: self.pos + want - n]
            elif self.pos < len(prefix) + self.size:
                left = len(prefix) + self.size - self.pos
                piece = b"\x07" * min(want - n, left, 1 << 20)
            else:
                offset = self.pos - len(prefix) - self.size
                piece = suffix[offset: offset + want - n]
            buffer[n: n + len(piece)] = piece
            n += len(piece)
            self.pos += len(piece)
        return n


def self_signed(directory, name: str) -> tuple[str, str]:
    """(cert, key) for `name`, made with the openssl CLI; the cert is its own CA."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    cert, key = str(directory / f"{name}.crt"), str(directory / f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return cert, key
