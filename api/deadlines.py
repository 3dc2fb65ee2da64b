"""Deadlines on request bodies: a client that stops sending, or sends too slowly, is cut off.

Every ``receive()`` of a body runs under ``asyncio.timeout(idle)``, and the bytes that arrive
are measured against the time spent waiting for them, window by window: a body that averages
under the minimum rate over a window is cut too. Time the application spends between two
``receive()`` calls (a part on its way to storage) is not the client's and is not counted.

Either way ``receive()`` raises ``RequestTimeout``, so the route unwinds as from any failed read
(a proxied upload ends ``failed``, its object to the outbox) and the error handler answers 408
with ``Connection: close``. Deadlines stop once the body is complete (later ``receive()`` calls
only wait for the disconnect) or the response has started: by then the application is no longer
waiting for the body to answer, and a 408 could not be sent anyway.
"""

import asyncio
import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.error_handlers import error_body
from domain.errors import RequestTimeout

log = logging.getLogger(__name__)


class _Pace:
    """One request body's progress against its deadlines."""

    def __init__(self, path: str, idle: float, min_rate: int, window: float) -> None:
        self.path, self.idle, self.min_rate, self.window = path, idle, min_rate, window
        self.done = False
        self.received = 0
        self.waited = 0.0  # in the current window
        self.window_bytes = 0

    async def receive(self, receive: Receive) -> Message:
        began = time.monotonic()
        deadline = asyncio.timeout(self.idle)
        try:
            async with deadline:
                message = await receive()
        except TimeoutError:
            if not deadline.expired():
                raise
            raise self._cut("idle", f"No body bytes arrived for {self.idle:g} seconds.") from None
        if message["type"] != "http.request":
            self.done = True
            return message
        size = len(message.get("body", b""))
        self.received += size
        self.done = not message.get("more_body", False)
        self.waited += time.monotonic() - began
        self.window_bytes += size
        if self.waited >= self.window:
            if self.min_rate and not self.done and self.window_bytes < self.min_rate * self.waited:
                rate = self.window_bytes / self.waited
                detail = (
                    f"The body arrived at {rate:.0f} bytes/s over {self.waited:.1f} seconds; "
                    f"the minimum is {self.min_rate} bytes/s."
                )
                raise self._cut("rate", detail)
            self.waited, self.window_bytes = 0.0, 0
        return message

    def _cut(self, reason: str, detail: str) -> RequestTimeout:
        log.info(
            "request body too slow",
            extra={"path": self.path, "reason": reason, "received_bytes": self.received},
        )
        return RequestTimeout(detail)


class BodyDeadlineMiddleware:
    """Ends a request whose body stalls for ``idle_seconds`` or, after a first window, averages
    under ``min_rate_bytes`` a second over ``window_seconds`` of waiting (0: no minimum)."""

    def __init__(
        self, app: ASGIApp, idle_seconds: float, min_rate_bytes: int, window_seconds: float
    ) -> None:
        self.app = app
        self.idle, self.min_rate, self.window = idle_seconds, min_rate_bytes, window_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pace = _Pace(scope["path"], self.idle, self.min_rate, self.window)
        started = False

        async def paced_receive() -> Message:
            if pace.done or started:
                return await receive()
            return await pace.receive(receive)

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, paced_receive, send_started)
        except RequestTimeout as error:
            # The route's error handler answers it; this is for whatever let it through.
            if started:
                raise
            await _answer(send, error)


async def _answer(send: Send, error: RequestTimeout) -> None:
    body = json.dumps(error_body(error)).encode()
    extra = error.headers or {}
    headers = [(name.lower().encode(), value.encode()) for name, value in extra.items()]
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
