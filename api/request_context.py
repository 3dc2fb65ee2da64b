"""The request id of every request (``X-Request-ID`` in and out) and its one access log line."""

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.logging import request_id_var

# A share link's token is its only secret: the log keeps enough of it to tell links apart.
_SHARE_PREFIX = "/s/"
_TOKEN_SHOWN = 6


def loggable_path(path: str) -> str:
    """``path`` with a share link's token cut short (``/s/jkGi1F…/download``)."""
    if not path.startswith(_SHARE_PREFIX):
        return path
    token, slash, rest = path[len(_SHARE_PREFIX) :].partition("/")
    return f"{_SHARE_PREFIX}{token[:_TOKEN_SHOWN]}…{slash}{rest}"


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID`` in and out) and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("api.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": loggable_path(scope["path"]),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)
