"""Pooled HTTP for upstream calls: one requests adapter (urllib3 pool) per process.

Under gevent (gunicorn's gevent worker), `post()` goes through geventhttpclient
(beatra.providers.gevent_http), several times cheaper per call. Elsewhere it hands a ready
PreparedRequest straight to the adapter. requests' Session layer
(environment/proxy merging, cookie jars, hooks, redirects) costs ~0.3 ms a call and does
nothing an upstream call needs; no proxies or .netrc are consulted (trust_env off), which is
also what we want for upstream traffic. The pool is sized for many concurrent greenlets.
"""

from __future__ import annotations

import os
import threading

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from beatra.config import UPSTREAM_POOL_SIZE
from beatra.cooperative import under_gevent
from beatra.providers import gevent_http

USER_AGENT = "beatra/0.1"

_lock = threading.Lock()
_adapter: HTTPAdapter | None = None
_session: requests.Session | None = None
_pid: int | None = None


def upstream_adapter() -> HTTPAdapter:
    global _adapter, _session, _pid
    if _adapter is None or _pid != os.getpid():  # never share sockets across a fork
        with _lock:
            if _adapter is None or _pid != os.getpid():
                _adapter = HTTPAdapter(pool_connections=64, pool_maxsize=UPSTREAM_POOL_SIZE,
                                       max_retries=0)
                _session = None
                _pid = os.getpid()
    return _adapter


def upstream_session() -> requests.Session:
    """A full requests Session on the same pool, for calls off the hot path that want its
    conveniences (multipart encoding, `json=`); trust_env off as for every upstream call."""
    global _session
    adapter = upstream_adapter()
    if _session is None:
        with _lock:
            if _session is None:
                session = requests.Session()
                session.trust_env = False
                session.headers["User-Agent"] = USER_AGENT
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                _session = session
    return _session


def post(url: str, body: bytes, headers: dict[str, str], *,
         timeout: tuple[float, float], stream: bool) -> requests.Response:
    """POST without following redirects; the caller closes the response."""
    if under_gevent():
        return gevent_http.post(url, body, {**headers, "User-Agent": USER_AGENT},
                                timeout=timeout, stream=stream, pool_size=UPSTREAM_POOL_SIZE)
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = url
    request.body = body
    request.headers = CaseInsensitiveDict(headers)
    request.headers["Content-Length"] = str(len(body))
    request.headers.setdefault("User-Agent", USER_AGENT)
    return upstream_adapter().send(request, stream=stream, timeout=timeout, verify=True,
                                   cert=None, proxies={})
