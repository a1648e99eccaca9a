"""The web console's shell and assets: public, cached, under a CSP without inline script."""

from __future__ import annotations

import re

import pytest

from beatra.console.routes import STATIC, asset_version


def test_shell_is_public_html_with_versioned_assets(client):
    resp = client.get("/console")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    html = resp.get_data(as_text=True)
    assert f'src="/console/static/console.js?v={asset_version("console.js")}"' in html
    assert f'href="/console/static/console.css?v={asset_version("console.css")}"' in html
    assert client.get("/console/").status_code == 200


def test_shell_has_no_inline_script_or_handlers(client):
    html = client.get("/console").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" for body in scripts)
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "style=" not in html  # style-src 'self' would block it


def test_every_form_control_has_a_label(client):
    html = client.get("/console").get_data(as_text=True)
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    controls = re.findall(r"<(?:input|select|textarea)\b[^>]*\bid=\"([^\"]+)\"", html)
    assert controls
    assert [c for c in controls if c not in labelled] == []


def test_console_csp(client):
    csp = client.get("/console").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # Signed content URLs are built on BEATRA_PUBLIC_URL; the page must be allowed to show them.
    assert "http://beatra.test" in directives["img-src"]
    assert "http://beatra.test" in directives["media-src"]


@pytest.mark.parametrize(("name", "mime"), [("console.js", "text/javascript"),
                                            ("console.css", "text/css"),
                                            ("favicon.svg", "image/svg+xml")])
def test_assets_cache_headers(client, name, mime):
    versioned = client.get(f"/console/static/{name}?v={asset_version(name)}")
    assert versioned.status_code == 200
    assert versioned.mimetype == mime
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["X-Content-Type-Options"] == "nosniff"
    assert versioned.get_data() == (STATIC / name).read_bytes()
    # Unversioned (or an old version): cached briefly, revalidated by ETag.
    plain = client.get(f"/console/static/{name}?v=stale")
    assert plain.headers["Cache-Control"] == "public, max-age=300"
    again = client.get(f"/console/static/{name}", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/console/static/nope.js", "/console/static/../routes.py",
                                  "/console/static/..%2Froutes.py"])
def test_unknown_assets_are_404_envelopes(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_api_routes_still_need_a_key(client):
    assert client.get("/v1/tasks").status_code == 401


def test_script_never_builds_markup_from_strings():
    source = (STATIC / "console.js").read_text()
    # API strings reach the page only through textContent / text nodes.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    # The key lives in sessionStorage and goes out only as an Authorization header.
    assert "localStorage" not in source and "document.cookie" not in source
