"""/console (the HTML shell) and /console/static/<file> (its CSS and JS).

Public routes (see beatra.auth.PUBLIC_BLUEPRINTS): they hold no account data. The page runs
under a Content-Security-Policy with no inline script, so a string from the API that slipped
into the DOM as markup still could not run.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, request, send_from_directory

from beatra.errors import not_found

STATIC = Path(__file__).resolve().parent / "static"
# A versioned asset URL (?v=<content hash>) never changes content, so browsers keep it a year;
# an unversioned one is revalidated after a short while.
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"

blp = Blueprint("console", __name__, template_folder="templates")


@cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    return f"/console/static/{name}?v={asset_version(name)}"


def content_security_policy() -> str:
    # Signed content URLs point at BEATRA_PUBLIC_URL (or presigned S3 over https), which may
    # not be the origin the page was loaded from; they are media, never script.
    public = urlsplit(current_app.extensions["beatra.settings"].public_url)
    media = "'self' blob: data: https:"
    if public.scheme and public.netloc:
        media += f" {public.scheme}://{public.netloc}"
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {media}",
        f"media-src {media}",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ])


@blp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if resp.mimetype == "text/html":
        resp.headers["Content-Security-Policy"] = content_security_policy()
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cache-Control"] = "no-cache"
    return resp


@blp.route("/console", methods=["GET"])
@blp.route("/console/", methods=["GET"])
def shell() -> Response:
    html = render_template("console/index.html", asset_url=asset_url)
    return Response(html, mimetype="text/html")


@blp.route("/console/static/<path:filename>", methods=["GET"])
def static(filename: str) -> Response:
    if "/" in filename or "\\" in filename or not (STATIC / filename).is_file():
        raise not_found("No such console asset.")
    versioned = request.args.get("v") == asset_version(filename)
    resp = send_from_directory(STATIC, filename, max_age=None, conditional=True)
    resp.headers["Cache-Control"] = IMMUTABLE if versioned else SHORT
    return resp
