"""``HEAD`` on every ``GET`` route: the same status and headers, no body (RFC 9110 §9.3.2).

FastAPI routes answer only the methods they declare, so ``curl -I`` and ``wget -c`` met 405 on
downloads. This middleware hands a ``HEAD`` to the application as a ``GET`` (on a copy of the
scope: the server still knows it is a ``HEAD`` and expects no body) and drops the body it
answers. A route that would read a body only to have it dropped (a proxied download streams it
from storage) asks ``is_head(request)`` and skips it, keeping its ``Content-Length``.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_KEY = "filestore.head"


def is_head(request: Request) -> bool:
    """Whether this ``GET`` is a client's ``HEAD``: its body will not be sent."""
    return bool(request.scope.get(HEAD_KEY))


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET", HEAD_KEY: True}, receive, headers_only)
