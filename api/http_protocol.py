"""uvicorn's httptools protocol with a bound on the request line and headers.

httptools buffers a request's header block however large it is (a 1 MB header was accepted),
and uvicorn's only setting for it, ``h11_max_incomplete_event_size``, applies to h11 alone,
which costs far more CPU per request. This protocol counts a request's header bytes as the
parser reports them and, for a block still incomplete at the end of a read, every byte read
since: past ``FILESTORE_MAX_HEADER_BYTES`` it answers 431 ``headers_too_large`` and closes the
connection, so a connection never holds much more than that plus two reads for its headers.

``python -m api.serve`` uses it; any other uvicorn command line gives ``--http`` ``HTTP``.
"""

import json
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.error_handlers import error_body
from domain.errors import HeadersTooLarge
from infra.config import get_settings

log = logging.getLogger(__name__)

HTTP = "api.http_protocol:BoundedHttpToolsProtocol"

# How long a refused connection is kept half-closed so its client can read the 431.
LINGER_SECONDS = 2.0


class _OverLimit(Exception):
    """Raised from a parser callback to stop parsing: the headers are too large."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes = get_settings().requests.max_header_bytes
        self._header_bytes = 0
        self._in_headers = False
        self._refused = False

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but for the headers' limit: it answers every parser error with 400.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        block_began_earlier = self._in_headers
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _OverLimit):
                self._refuse()
                return
            self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if block_began_earlier and self._in_headers:
            # The whole read went into a header block the parser still holds.
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._refuse()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._in_headers = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            raise _OverLimit

    def _refuse(self) -> None:
        self._refused = True
        error = HeadersTooLarge(
            f"The request line and headers are over {self._max_header_bytes} bytes."
        )
        log.info(
            "request headers too large",
            extra={"limit": self._max_header_bytes, "client": str(self.client)},
        )
        body = json.dumps(error_body(error)).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        # Closing a socket with unread bytes resets the connection, and the client, still
        # sending its headers, may lose the answer: half-close, discard what still comes in
        # (``data_received`` drops it) for a moment, then close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
