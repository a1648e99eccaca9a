"""SSRF rules for every server-side fetch (beatra.net). Refusals happen before any connection:
`guard_connections` fails the test if a non-loopback connection is even attempted."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from beatra.net import FetchError, NetPolicy, UnsafeUrl, check_url, is_public, safe_get
from beatra.net.fetch import pinned_session, safe_request
from tests.unit.media_helpers import guard_connections, redirect, self_signed, send, serve

NO_ALLOWLIST = NetPolicy.parse("")
LOOPBACK = NetPolicy.parse("127.0.0.1")


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    return guard_connections(monkeypatch)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.0.9", "10.0.0.1", "10.255.255.255", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1",
    "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1", "2002:7f00:1::1", "2002:a00:1::",
    "2001:db8::1",
])
def test_non_public_addresses(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8",
    "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/x.png",
    "https://10.1.2.3/x.png",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/x.png",
    "https://[::ffff:127.0.0.1]/x.png",
    "https://localhost/x.png",  # a name that resolves to loopback
    "https://2130706433/x.png",  # 127.0.0.1 as one integer
    "https://0x7f.1/x.png",
    "https://100.64.0.1/",
    "https://[fd00::1]/",
    "https://[fe80::1%25eth0]/",
])
def test_private_targets_are_refused_before_connecting(url, connections):
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check_url(url, policy=NO_ALLOWLIST)
    with pytest.raises(UnsafeUrl):
        safe_get(url, max_bytes=1024, policy=NO_ALLOWLIST)
    assert connections == []


@pytest.mark.parametrize(("url", "reason"), [
    ("http://8.8.8.8/x.png", "https"),  # plain http only for allowlisted hosts
    ("ftp://8.8.8.8/x.png", "https"),
    ("file:///etc/passwd", "https"),
    ("gopher://8.8.8.8/", "https"),
    ("https://user:pw@8.8.8.8/", "credentials"),
    ("https:///nohost", "no host"),
    ("https://8.8.8.8:99999/", "malformed"),
])
def test_schemes_and_shapes_are_refused(url, reason, connections):
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url, policy=NO_ALLOWLIST)
    assert connections == []


def test_a_name_with_one_private_record_is_refused(monkeypatch, connections):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeUrl, match=r"10\.0\.0\.7"):
        check_url("https://mixed.example/", policy=NO_ALLOWLIST)
    assert connections == []


def test_public_https_target_is_pinned_to_the_checked_address(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1", port, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))])
    target = check_url("https://cdn.example/a.png", policy=NO_ALLOWLIST)
    assert (target.host, target.port, target.address) == ("cdn.example", 443, "93.184.216.34")
    assert target.host_header == "cdn.example" and not target.allowlisted


def test_allowlist_parsing():
    policy = NetPolicy.parse(" 127.0.0.1, media.test ,10.9.0.0/16,[::1],  ")
    assert policy.host_listed("MEDIA.test.")
    assert policy.address_listed(ipaddress.ip_address("10.9.3.4"))
    assert policy.address_listed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert policy.address_listed(ipaddress.ip_address("::1"))
    assert not policy.address_listed(ipaddress.ip_address("127.0.0.2"))
    assert NetPolicy.parse("") == NetPolicy()


def test_allowlisted_loopback_fetch_over_http(connections):
    with serve({"/a.png": send(b"\x89PNG-ish", "image/png")}) as srv:
        result = safe_get(srv.url("/a.png"), max_bytes=1024, allowed_types=("image/",),
                          policy=LOOPBACK)
        with result:
            assert (result.status, result.content_type, result.read()) == (
                200, "image/png", b"\x89PNG-ish")
        assert srv.seen[0][1]["Host"] == f"127.0.0.1:{srv.port}"
    assert connections == [("127.0.0.1", srv.port)]


def test_allowlisted_name_connects_to_the_vetted_address_with_its_host_header(monkeypatch):
    """DNS is asked once, by the check; the connection goes to that answer with Host: name."""
    asked = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    with serve({"/m.wav": send(b"RIFF....WAVE", "audio/wav")}) as srv:
        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
        with safe_get(f"http://media.test:{srv.port}/m.wav", max_bytes=1024,
                      policy=NetPolicy.parse("media.test")) as result:
            assert result.read() == b"RIFF....WAVE"
        assert srv.seen[0][1]["Host"] == f"media.test:{srv.port}"
    # urllib3 passes the pinned IP literal through getaddrinfo; no other name is looked up
    assert [h for h in asked if h != "127.0.0.1"] == ["media.test"]


def test_loopback_not_allowlisted_is_refused(connections):
    with serve({"/a": send(b"x")}) as srv, pytest.raises(UnsafeUrl):
        safe_get(srv.url("/a"), max_bytes=10, policy=NO_ALLOWLIST)
    assert connections == []


@pytest.mark.parametrize("location", [
    "http://10.0.0.1/internal.png",
    "http://127.0.0.2/internal.png",  # loopback, but not the allowlisted address
    "https://169.254.169.254/latest/meta-data/",
    "http://[::1]/x",
])
def test_redirect_to_a_private_address_is_refused(location, connections):
    with serve({"/start": redirect(location)}) as srv:
        with pytest.raises(UnsafeUrl, match="not a public address"):
            safe_get(srv.url("/start"), max_bytes=1024, policy=LOOPBACK)
        assert [path for path, _ in srv.seen] == ["/start"]
    assert connections == [("127.0.0.1", srv.port)]  # only the allowed hop was contacted


def test_redirects_are_followed_and_limited():
    with serve({"/a": redirect("/b", 301), "/b": redirect("/c", 307),
                "/c": send(b"done", "image/png"), "/loop": redirect("/loop")}) as srv:
        with safe_get(srv.url("/a"), max_bytes=100, policy=LOOPBACK) as result:
            assert result.read() == b"done" and result.url.endswith("/c")
        with pytest.raises(FetchError, match="redirects"):
            safe_get(srv.url("/loop"), max_bytes=100, max_redirects=3, policy=LOOPBACK)
        assert len([p for p, _ in srv.seen if p == "/loop"]) == 4


def test_size_cap_by_header_and_by_stream():
    big = b"x" * 5000

    def no_length(req):
        req.send_response(200)
        req.send_header("Content-Type", "image/png")
        req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(big)

    with serve({"/declared": send(big, "image/png"), "/streamed": no_length}) as srv:
        with pytest.raises(FetchError, match="5000 bytes"):
            safe_get(srv.url("/declared"), max_bytes=4096, policy=LOOPBACK)
        with pytest.raises(FetchError, match="larger than 4096"):
            safe_get(srv.url("/streamed"), max_bytes=4096, policy=LOOPBACK)


def test_content_type_and_status_caps():
    with serve({"/page": send(b"<html>", "text/html; charset=utf-8"),
                "/gone": send(b"", "image/png", 404),
                "/untyped": send(b"abc", "")}) as srv:
        with pytest.raises(FetchError, match="text/html"):
            safe_get(srv.url("/page"), max_bytes=100, allowed_types=("image/",), policy=LOOPBACK)
        with pytest.raises(FetchError, match="404"):
            safe_get(srv.url("/gone"), max_bytes=100, policy=LOOPBACK)


def test_a_stalled_server_hits_the_read_timeout():
    release = threading.Event()

    def stall(req):
        req.send_response(200)
        req.send_header("Content-Type", "image/png")
        req.send_header("Content-Length", "10")
        req.end_headers()
        req.wfile.write(b"12345")
        req.wfile.flush()
        release.wait(10)  # never sends the rest until the test is over

    with serve({"/stall": stall}) as srv:
        try:
            with pytest.raises(FetchError):
                safe_get(srv.url("/stall"), max_bytes=100, timeout=(1.0, 0.3),
                         deadline_seconds=5, policy=LOOPBACK)
        finally:
            release.set()


def test_safe_request_posts_without_following_redirects():
    with serve({"/hook": redirect("http://10.0.0.1/")}) as srv:
        with safe_request("POST", srv.url("/hook"), data=b'{"a":1}',
                          headers={"Content-Type": "application/json"},
                          policy=LOOPBACK) as result:
            assert result.status == 302  # reported, not followed
        assert [p for p, _ in srv.seen] == ["/hook"]


def test_pinned_session_refuses_to_leave_its_origin():
    target = check_url("http://127.0.0.1:9/", policy=LOOPBACK)
    with pinned_session(target) as session, pytest.raises(UnsafeUrl, match="origin"):
        session.get("http://127.0.0.1:10/", allow_redirects=False, timeout=1)


def _trusting(monkeypatch, ca: str) -> None:
    """Make pinned sessions trust a test CA (the product uses the system store)."""
    from beatra.net import fetch

    real = fetch.pinned_session

    def with_ca(target):
        session = real(target)
        session.verify = ca
        return session

    monkeypatch.setattr(fetch, "pinned_session", with_ca)


def _resolve_to_loopback(monkeypatch, name: str) -> None:
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host == name:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_https_to_a_pinned_address_still_verifies_the_certificate_name(tmp_path, monkeypatch):
    """Connecting to the vetted IP must keep SNI and hostname verification on the URL's name."""
    cert, key = self_signed(tmp_path, "media.test")
    _trusting(monkeypatch, cert)
    _resolve_to_loopback(monkeypatch, "media.test")
    policy = NetPolicy.parse("media.test")
    with serve({"/a.png": send(b"tls-bytes", "image/png")}, tls=(cert, key)) as srv:
        url = f"https://media.test:{srv.port}/a.png"
        with safe_get(url, max_bytes=100, policy=policy) as result:
            assert result.read() == b"tls-bytes"
        assert srv.seen[0][1]["Host"] == f"media.test:{srv.port}"


def test_https_certificate_for_another_name_is_rejected(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path, "other.test")
    _trusting(monkeypatch, cert)
    _resolve_to_loopback(monkeypatch, "media.test")
    with serve({"/a.png": send(b"x", "image/png")}, tls=(cert, key)) as srv:
        with pytest.raises(FetchError, match="SSLError"):
            safe_get(f"https://media.test:{srv.port}/a.png", max_bytes=100,
                     policy=NetPolicy.parse("media.test"))
        assert srv.seen == []
