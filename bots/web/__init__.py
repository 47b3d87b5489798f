"""The browser page for the bots, prebuilt so that running a bot needs no Node.js.

``DIST_DIR`` holds ``index.html``, ``app.js`` and ``app.css``; the page refers to
them with ``./`` paths, so it can be mounted at any path (the bot server uses
``/client/``). It calls ``POST /start`` and the SmallWebRTC offer routes on the
same origin. Rebuild it from ``src/`` with ``npm ci && npm run build`` here.
"""

from pathlib import Path

DIST_DIR: Path = Path(__file__).resolve().parent / "dist"
"""The built page: a directory to serve as static files (``html=True``)."""

__all__ = ["DIST_DIR"]
