"""GET /docs: Swagger UI over /openapi.json, served entirely by beatra (works offline).

The assets come from the `swagger-ui-bundle-v2` package (Swagger UI 5, which reads OpenAPI
3.1); the page names no other host, and the validator badge (which would call out) is off.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from beatra.errors import not_found

blp = Blueprint("docs-page", __name__)

# Only what the page loads; nothing else from the package directory is served.
ASSETS = frozenset({"swagger-ui.css", "index.css", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js", "favicon-32x32.png", "favicon-16x16.png"})

_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>beatra API</title>
    <link rel="stylesheet" type="text/css" href="{css}">
    <link rel="stylesheet" type="text/css" href="{index_css}">
    <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{bundle}" charset="UTF-8"></script>
    <script src="{preset}" charset="UTF-8"></script>
    <script src="{init}" charset="UTF-8"></script>
  </body>
</html>
"""

_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
};
"""


def _asset(name: str) -> str:
    return url_for("docs-page.asset", filename=name)


@blp.route("/docs", methods=["GET"])
def page() -> Response:
    html = _PAGE.format(css=_asset("swagger-ui.css"), index_css=_asset("index.css"),
                        icon=_asset("favicon-32x32.png"), bundle=_asset("swagger-ui-bundle.js"),
                        preset=_asset("swagger-ui-standalone-preset.js"),
                        init=url_for("docs-page.init"))
    return Response(html, mimetype="text/html")


@blp.route("/docs/init.js", methods=["GET"])
def init() -> Response:
    spec = url_for("api-docs.openapi_json")
    return Response(_INIT % f'"{spec}"', mimetype="text/javascript")


@blp.route("/docs/assets/<path:filename>", methods=["GET"])
def asset(filename: str) -> Response:
    if filename not in ASSETS:
        raise not_found("No such documentation asset.")
    return send_from_directory(str(swagger_ui_path), filename, max_age=3600)
