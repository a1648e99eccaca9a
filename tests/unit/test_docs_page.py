"""/docs: Swagger UI over /openapi.json, every asset served by beatra itself."""

from __future__ import annotations

import re

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


def test_docs_page_renders_offline_without_a_key(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    init = client.get("/docs/init.js")
    assert init.status_code == 200
    script = init.get_data(as_text=True)
    assert '"/openapi.json"' in script and "validatorUrl: null" in script
    # No URL to another host anywhere: only beatra's own paths.
    assert URL.findall(html) == [] and URL.findall(script) == []
    refs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert len(refs) == 6 and all(ref.startswith("/docs/") for ref in refs)
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.data) > 0
    assert client.get("/openapi.json").status_code == 200


def test_only_the_page_assets_are_served(client):
    assert client.get("/docs/assets/swagger-ui-bundle.js").mimetype in (
        "text/javascript", "application/javascript")
    for name in ("index.j2", "../__init__.py", "swagger-initializer.js"):
        resp = client.get(f"/docs/assets/{name}")
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "not_found"
