"""SSRF-safe HTTP for caller-supplied URLs (media inputs now, webhook delivery later).

The rules, applied to every hop:
1. https only, unless the host is allowlisted (BEATRA_NET_ALLOWLIST), then http too; no
   credentials in the URL.
2. Resolve the host; refuse if ANY address is not public (and not allowlisted), so a name with
   one public and one private record cannot be used to pick the private one.
3. Connect to the address that was checked (`pinned_session`): the connection pool is keyed by
   that IP, while the Host header, TLS SNI and certificate check use the original name. A second
   DNS answer (rebinding) is never consulted.
4. Redirects are never followed by the HTTP library: `safe_get` re-runs 1-3 on each Location.
5. Caps: connect/read timeouts plus a total deadline, a byte limit enforced while streaming
   (and up front from Content-Length), and an allowed Content-Type list.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from beatra.config import Settings, current_settings
from beatra.net.addresses import IPAddress, NetPolicy, is_public

USER_AGENT = "beatra-fetch/0.1"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
READ_CHUNK = 64 * 1024


class NetError(Exception):
    """Base for everything a safe fetch refuses or fails with; str() is caller-presentable."""


class UnsafeUrl(NetError):
    """Refused by policy before any connection was made."""


class FetchError(NetError):
    """The fetch was allowed but failed: network, HTTP status, size, time or content type."""


def current_policy() -> NetPolicy:
    """The app's BEATRA_NET_ALLOWLIST (the environment's outside an app context)."""
    from flask import has_app_context

    settings = current_settings() if has_app_context() else Settings.from_env()
    return NetPolicy.parse(settings.net_allowlist)


@dataclass(frozen=True)
class Target:
    """A URL whose host was resolved and vetted; connections go to `address` only."""

    url: str
    scheme: str
    host: str  # lower-case, IPv6 without brackets
    port: int
    address: str
    allowlisted: bool

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"could not resolve host {host!r}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"could not resolve host {host!r}")
    # IPv4 first: a host with AAAA records on a server without IPv6 routes must still work.
    return sorted(addresses, key=lambda ip: ip.version)


def check_url(url: str, *, policy: NetPolicy | None = None) -> Target:
    """Vet a URL for a server-side request. Raises UnsafeUrl (policy) or FetchError (DNS)."""
    policy = current_policy() if policy is None else policy
    if not isinstance(url, str) or len(url) > 8192:
        raise UnsafeUrl("URL must be a string of at most 8192 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("only https URLs are accepted")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("URLs with credentials are not accepted")
    port = port or (443 if scheme == "https" else 80)
    host_listed = policy.host_listed(host)
    addresses = _resolve(host, port)
    for ip in addresses:
        if not (host_listed or policy.address_listed(ip) or is_public(ip)):
            shown = host if str(ip) == host else f"{host} ({ip})"
            raise UnsafeUrl(f"{shown} is not a public address")
    allowlisted = host_listed or all(policy.address_listed(ip) for ip in addresses)
    if scheme == "http" and not allowlisted:
        raise UnsafeUrl("only https URLs are accepted")
    return Target(url=url.strip(), scheme=scheme, host=host, port=port,
                  address=str(addresses[0]), allowlisted=allowlisted)


class PinnedAdapter(HTTPAdapter):
    """Sends every request for the target's origin to the vetted address, nowhere else."""

    def __init__(self, target: Target) -> None:
        self.target = target
        super().__init__(pool_connections=1, pool_maxsize=2, max_retries=0)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> Any:
        parts = urlsplit(request.url or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if ((parts.hostname or "").rstrip(".").lower(), port, parts.scheme) != (
                self.target.host.lower(), self.target.port, self.target.scheme):
            raise UnsafeUrl("request left the vetted origin")  # e.g. a library-level redirect
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params = {**host_params, "host": self.target.address}
        extra: dict[str, Any] = dict(pool_kwargs)
        if self.target.scheme == "https":
            extra.update(server_hostname=self.target.host, assert_hostname=self.target.host)
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=extra)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        request.headers["Host"] = self.target.host_header


def pinned_session(target: Target) -> requests.Session:
    """A session bound to one vetted origin (no env proxies, no redirects followed for you:
    always pass allow_redirects=False). Webhook delivery POSTs with it."""
    session = requests.Session()
    session.trust_env = False
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    adapter = PinnedAdapter(target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class FetchResult:
    """A fetched response; the body is in a temp file (rewound), closed with the result."""

    url: str
    status: int
    content_type: str
    headers: dict[str, str]
    size: int
    file: IO[bytes] = field(repr=False)

    def read(self) -> bytes:
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> FetchResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _type_allowed(content_type: str, allowed: tuple[str, ...] | None) -> bool:
    if not allowed:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return any(base == a or (a.endswith("/") and base.startswith(a)) for a in allowed)


def _read_body(resp: requests.Response, max_bytes: int, deadline: float) -> tuple[IO[bytes], int]:
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"response is {declared} bytes; the limit is {max_bytes}")
    body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise FetchError("fetch took too long")
            # read1 returns what arrived, so a slow drip still reaches the deadline check.
            chunk = resp.raw.read1(READ_CHUNK, decode_content=False)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"response is larger than {max_bytes} bytes")
            body.write(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        body.close()
        raise FetchError(f"reading the response failed ({exc.__class__.__name__})") from None
    except Exception:
        body.close()
        raise
    body.seek(0)
    return body, size


def _send(target: Target, method: str, *, data: bytes | None, headers: dict[str, str] | None,
          timeout: tuple[float, float], deadline: float) -> tuple[requests.Session,
                                                                  requests.Response]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("fetch took too long")
    session = pinned_session(target)
    try:
        resp = session.request(method, target.url, data=data, headers=headers, stream=True,
                               allow_redirects=False,
                               timeout=(min(timeout[0], remaining), min(timeout[1], remaining)))
    except UnsafeUrl:
        session.close()
        raise
    except requests.Timeout:
        session.close()
        raise FetchError("the remote server did not answer in time") from None
    except requests.RequestException as exc:
        session.close()
        raise FetchError(f"could not connect ({exc.__class__.__name__})") from None
    return session, resp


def safe_request(method: str, url: str, *, data: bytes | None = None,
                 headers: dict[str, str] | None = None, max_bytes: int = 64 * 1024,
                 timeout: tuple[float, float] = (5.0, 10.0), deadline_seconds: float = 15.0,
                 policy: NetPolicy | None = None) -> FetchResult:
    """One request, no redirects, any status returned (webhook delivery: POST + read status)."""
    target = check_url(url, policy=policy)
    deadline = time.monotonic() + deadline_seconds
    session, resp = _send(target, method, data=data, headers=headers, timeout=timeout,
                          deadline=deadline)
    with contextlib.closing(session), contextlib.closing(resp):
        body, size = _read_body(resp, max_bytes, deadline)
        return FetchResult(url=target.url, status=resp.status_code,
                           content_type=resp.headers.get("Content-Type", ""),
                           headers=dict(resp.headers), size=size, file=body)


def safe_get(url: str, *, max_bytes: int, allowed_types: tuple[str, ...] | None = None,
             timeout: tuple[float, float] = (5.0, 15.0), deadline_seconds: float = 30.0,
             max_redirects: int = 5, policy: NetPolicy | None = None) -> FetchResult:
    """GET a caller-supplied URL under every SSRF rule; follows up to `max_redirects`
    redirects, re-vetting each hop. Non-2xx, oversize, slow or wrongly typed → FetchError.

    `allowed_types` are MIME types, or prefixes ending in "/" ("image/"); a response without
    Content-Type counts as application/octet-stream.
    """
    policy = current_policy() if policy is None else policy
    deadline = time.monotonic() + deadline_seconds
    for _hop in range(max_redirects + 1):
        target = check_url(url, policy=policy)
        session, resp = _send(target, "GET", data=None, headers=None, timeout=timeout,
                              deadline=deadline)
        with contextlib.closing(session), contextlib.closing(resp):
            location = resp.headers.get("Location")
            if resp.status_code in REDIRECT_STATUSES and location:
                url = urljoin(target.url, location)
                continue
            if not 200 <= resp.status_code < 300:
                raise FetchError(f"the remote server answered HTTP {resp.status_code}")
            content_type = resp.headers.get("Content-Type") or "application/octet-stream"
            if not _type_allowed(content_type, allowed_types):
                raise FetchError(f"content type {content_type.split(';')[0]!r} is not accepted")
            body, size = _read_body(resp, max_bytes, deadline)
            return FetchResult(url=target.url, status=resp.status_code,
                               content_type=content_type, headers=dict(resp.headers),
                               size=size, file=body)
    raise FetchError(f"more than {max_redirects} redirects")
