"""What keeps a browser safe on the API's host: a Content-Security-Policy per page and the
headers every response carries.

The web page (``api/web/``) runs no inline code, so its policy allows scripts and styles from
this host only; it may connect to the API (``'self'``) and to the storage endpoint its
presigned URLs name (uploads, the download a redirect leads to). Swagger UI and ReDoc come with
inline code of their own (a start script, React's style attributes): their policy allows exactly
those scripts by hash, never ``'unsafe-inline'`` script. Every other answer (JSON, a streamed
file) gets a policy that lets it do nothing, should a browser ever render it.
"""

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.config import Settings

CSP = "Content-Security-Policy"
# On every response: no MIME sniffing (a stored file served as text/plain stays text), no
# Referer (a presigned URL in a page's address never reaches another site), no framing.
BASELINE_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# An answer that is not a page: nothing may load or run from it, even when opened directly.
NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; sandbox"
# What no page here needs: plugins, a <base> that re-points relative URLs, being framed.
_LOCKED = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def storage_origin(settings: Settings) -> str:
    """The scheme, host and port of the endpoint presigned URLs point at."""
    parts = urlsplit(settings.storage.presign_endpoint_url)
    return f"{parts.scheme}://{parts.netloc}"


def page_policy(settings: Settings) -> str:
    """The web page's policy: its own files, the API and the storage endpoint, nothing else."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self' {storage_origin(settings)}",
            "form-action 'self'",
            _LOCKED,
        )
    )


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP sources (``'sha256-…'``) for each inline ``<script>`` of a page."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def docs_policy(settings: Settings, script_hashes: Iterable[str]) -> str:
    """Swagger UI's and ReDoc's policy. Their bundles set style attributes and insert style
    elements (so ``'unsafe-inline'`` styles), ReDoc runs a worker from a blob, and ReDoc's
    sidebar logo is pointed at our favicon (``api.pages``). "Try it out" on a download follows
    the redirect to storage, hence its origin in ``connect-src``."""
    scripts = " ".join(("'self'", *script_hashes))
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "worker-src 'self' blob:",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' {storage_origin(settings)}",
            "form-action 'self'",
            _LOCKED,
        )
    )


class SecurityHeadersMiddleware:
    """Adds ``BASELINE_HEADERS`` to every HTTP response, and ``NOTHING_POLICY`` to those that
    bring no policy of their own (a page sets its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASELINE_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault(CSP, NOTHING_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
