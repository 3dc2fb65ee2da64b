"""A streaming ``multipart/form-data`` reader: parts arrive as events, file bytes never pile up."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from domain.errors import MalformedBody, ValidationFailed
from domain.media_types import DESCRIPTION as MEDIA_TYPE
from domain.media_types import is_media_type

MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file part's headers; its bytes follow as ``bytes`` events until ``PartEnd``."""

    name: str
    filename: str
    content_type: str | None


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = Field | FilePart | bytes | PartEnd


def boundary_of(content_type: str) -> bytes | None:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    return options.get(b"boundary") or None


class _Collector:
    """Receives the parser's callbacks and turns them into ``Event`` objects."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._headers: dict[bytes, bytes] = {}
        self._field: bytes = b""
        self._value: bytes = b""
        self._file: FilePart | None = None
        self._field_name = ""
        self._form_value = bytearray()
        self.ended = False

    def on_part_begin(self) -> None:
        self._headers = {}
        self._file = None
        self._form_value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            self._file = FilePart(name, filename.decode("utf-8", "replace"), self._content_type())
            self.events.append(self._file)
        else:
            self._field_name = name

    def _content_type(self) -> str | None:
        """The file part's Content-Type: it is stored and sent on to storage, so it must be a
        media type; an empty header counts as none given."""
        raw = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        if not raw:
            return None
        if not is_media_type(raw):
            raise ValidationFailed(f"The file part's Content-Type must be {MEDIA_TYPE}.")
        return raw

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.events.append(bytes(data[start:end]))
            return
        self._form_value += data[start:end]
        if len(self._form_value) > MAX_FIELD_BYTES:
            raise MalformedBody(f"A form field is longer than {MAX_FIELD_BYTES} bytes.")

    def on_part_end(self) -> None:
        if self._file is not None:
            self.events.append(PartEnd())
        else:
            self.events.append(Field(self._field_name, self._form_value.decode("utf-8", "replace")))

    def on_end(self) -> None:
        self.ended = True


async def read_multipart(stream: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[Event]:
    collector = _Collector()
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    async for chunk in stream:
        try:
            parser.write(chunk)
        except MultipartParseError as error:
            raise MalformedBody(f"Malformed multipart body: {error}") from None
        events, collector.events = collector.events, []
        for event in events:
            yield event
    try:
        parser.finalize()
    except MultipartParseError as error:
        raise MalformedBody(f"Malformed multipart body: {error}") from None
    for event in collector.events:
        yield event
    if not collector.ended:
        # python-multipart's ``finalize`` does not check this: a body cut short would otherwise
        # read as a complete (truncated) file.
        raise MalformedBody("The body ends before its closing boundary.")
