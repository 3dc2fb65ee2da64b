"""Request bodies are bounded; only the multipart upload streams large ones (counting them)."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.error_handlers import error_body
from domain.errors import PayloadTooLarge


class BodyLimitMiddleware:
    """Refuses a body over ``limit`` bytes with 413, by its Content-Length or as it streams.

    ``streaming_paths`` read their bodies in bounded chunks themselves (the upload route, whose
    JSON form is bounded in ``api.body``).
    """

    def __init__(self, app: ASGIApp, limit: int, streaming_paths: frozenset[str]) -> None:
        self.app = app
        self.limit = limit
        self.streaming_paths = streaming_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(f"The request body is over {self.limit} bytes.")
            return message

        await self.app(scope, bounded_receive, send)

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLarge(f"The request body is over {self.limit} bytes.")
        body = json.dumps(error_body(error)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
