"""The web console: a static shell and assets served by beatra; the browser calls the public
API with the caller's own key, so the console has no session or login of its own."""

from beatra.console.routes import blp

__all__ = ["blp"]
