"""Parse storage bucket notifications into `ObjectCreated` events.

Pure module: no I/O, no web framework. `parse_events` takes the already-decoded JSON body of a
webhook call and understands these shapes:

* S3 event records, ``{"Records": [{"eventName": ..., "s3": {"bucket": {"name": ...},
  "object": {"key": ..., "size": ..., "eTag": ...}}}, ...]}``, as MinIO sends them (event names
  prefixed with ``s3:``, plus envelope fields ``EventName`` and ``Key`` that are ignored) and as AWS
  S3 sends them (no ``s3:`` prefix). Object keys are URL-encoded (``%2F`` for ``/``, ``+`` for a
  space) and are decoded with `urllib.parse.unquote_plus`. Only Put, Post, Copy and
  CompleteMultipartUpload creations are kept. The AWS ``s3:TestEvent`` body is an empty batch.
* SeaweedFS filer webhook events, ``{"event_type": "create", "key": "/buckets/<bucket>/<key>",
  "message": {"new_entry": {...}}}``, alone or as a JSON list of them. ``create`` and ``update``
  (with a ``new_entry``) events count as creations; directories and the internal ``.uploads/``
  entries of multipart uploads are skipped. The size is ``new_entry.attributes.file_size`` and the
  etag is the base64-decoded ``new_entry.extended["Seaweed-X-Amz-ETag"]``.

Well-formed events for other buckets, other key prefixes or other event types are dropped
silently; a body that is not an event at all raises `MalformedEvent`.
"""

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_plus

__all__ = ["MalformedEvent", "ObjectCreated", "parse_events"]

S3_CREATED_EVENTS = frozenset(
    {
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
    }
)
S3_TEST_EVENT = "s3:TestEvent"
SEAWEED_CREATED_EVENTS = frozenset({"create", "update"})
SEAWEED_BUCKETS_DIR = "/buckets/"
SEAWEED_MULTIPART_DIR = ".uploads/"
SEAWEED_ETAG_ATTRIBUTE = "Seaweed-X-Amz-ETag"


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None
    etag: str | None
    # When storage says the object was created (S3 records' ``eventTime``; SeaweedFS's filer
    # events carry no such time). Metadata, not identity: equal events may differ in it.
    event_time: datetime | None = field(default=None, compare=False)


class MalformedEvent(ValueError):
    """The body is not a bucket notification this module understands."""


def parse_events(body: object, bucket: str, key_prefix: str) -> list[ObjectCreated]:
    """Return the object creations in `body` for `bucket` under the folder `key_prefix`.

    A key matches when it starts with ``key_prefix + "/"`` and names something inside that folder
    (slashes around `key_prefix` are ignored; an empty prefix matches every key). Identical
    (bucket, key, etag) events are reported once, in order of first appearance.
    """
    folder = key_prefix.strip("/")
    required_start = f"{folder}/" if folder else ""
    seen: set[tuple[str, str, str | None]] = set()
    events: list[ObjectCreated] = []
    for event in _created_events(body):
        identity = (event.bucket, event.key, event.etag)
        in_folder = event.key.startswith(required_start) and event.key != required_start
        if event.bucket != bucket or not in_folder or identity in seen:
            continue
        seen.add(identity)
        events.append(event)
    return events


def _created_events(body: object) -> Iterator[ObjectCreated]:
    if isinstance(body, list):
        for index, item in enumerate(body):
            if not isinstance(item, dict) or "event_type" not in item:
                raise MalformedEvent(f"item {index} of the event list is not a SeaweedFS event")
            yield from _seaweed_event(item, f"item {index}")
    elif isinstance(body, dict):
        if "Records" in body:
            yield from _s3_records(body["Records"])
        elif "event_type" in body:
            yield from _seaweed_event(body, "event")
        elif body.get("Event") != S3_TEST_EVENT:
            raise MalformedEvent("object has neither 'Records' nor 'event_type'")
    else:
        raise MalformedEvent(f"expected a JSON object or list, got {_json_type(body)}")


def _s3_records(records: object) -> Iterator[ObjectCreated]:
    if not isinstance(records, list):
        raise MalformedEvent(f"'Records' must be a list, got {_json_type(records)}")
    for index, record in enumerate(records):
        event = _s3_record(record, f"Records[{index}]")
        if event is not None:
            yield event


def _s3_record(record: object, where: str) -> ObjectCreated | None:
    record = _object(record, where)
    event_name = _string(record.get("eventName"), f"{where}.eventName")
    s3 = _object(record.get("s3"), f"{where}.s3")
    bucket = _object(s3.get("bucket"), f"{where}.s3.bucket")
    obj = _object(s3.get("object"), f"{where}.s3.object")
    bucket_name = _string(bucket.get("name"), f"{where}.s3.bucket.name")
    key = unquote_plus(_string(obj.get("key"), f"{where}.s3.object.key"))
    size = _optional_size(obj.get("size"), f"{where}.s3.object.size")
    etag = _optional_string(obj.get("eTag"), f"{where}.s3.object.eTag")
    if event_name.removeprefix("s3:") not in S3_CREATED_EVENTS:
        return None
    return ObjectCreated(
        bucket=bucket_name,
        key=key,
        size=size,
        etag=_clean_etag(etag),
        event_time=_event_time(record.get("eventTime")),
    )


def _event_time(value: object) -> datetime | None:
    """An ISO 8601 time with a zone; anything else is no time (never a reason to drop it)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seaweed_event(event: dict[str, object], where: str) -> Iterator[ObjectCreated]:
    event_type = _string(event.get("event_type"), f"{where}.event_type")
    path = _string(event.get("key"), f"{where}.key")
    message = event.get("message")
    if event_type not in SEAWEED_CREATED_EVENTS:
        return
    new_entry = None
    if message is not None:
        new_entry = _object(message, f"{where}.message").get("new_entry")
    if new_entry is None:
        if event_type == "create":
            raise MalformedEvent(f"{where}.message.new_entry is missing from a create event")
        return
    entry = _object(new_entry, f"{where}.message.new_entry")
    is_directory = entry.get("is_directory", False)
    if not isinstance(is_directory, bool):
        raise MalformedEvent(f"{where}.message.new_entry.is_directory must be a boolean")
    attributes = _object(entry.get("attributes", {}), f"{where}.message.new_entry.attributes")
    size = _optional_size(
        attributes.get("file_size"), f"{where}.message.new_entry.attributes.file_size"
    )
    extended = _object(entry.get("extended", {}), f"{where}.message.new_entry.extended")
    etag = _seaweed_etag(
        extended.get(SEAWEED_ETAG_ATTRIBUTE),
        f"{where}.message.new_entry.extended[{SEAWEED_ETAG_ATTRIBUTE!r}]",
    )
    if is_directory or not path.startswith(SEAWEED_BUCKETS_DIR):
        return
    bucket, separator, key = path.removeprefix(SEAWEED_BUCKETS_DIR).partition("/")
    if not separator or not key or key.startswith(SEAWEED_MULTIPART_DIR):
        return
    yield ObjectCreated(bucket=bucket, key=key, size=size, etag=etag)


def _seaweed_etag(value: object, where: str) -> str | None:
    encoded = _optional_string(value, where)
    if encoded is None:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("ascii")
    except ValueError as exc:
        raise MalformedEvent(f"{where} is not base64-encoded ASCII") from exc
    return _clean_etag(decoded)


def _clean_etag(etag: str | None) -> str | None:
    if etag is None:
        return None
    return etag.strip().strip('"') or None


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise MalformedEvent(f"{where} must be an object, got {_json_type(value)}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedEvent(f"{where} must be a string, got {_json_type(value)}")
    return value


def _optional_string(value: object, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _optional_size(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{where} must be a non-negative integer, got {value!r:.40}")
    return value


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
        case _:
            return type(value).__name__
