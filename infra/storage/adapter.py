"""Storage adapter: the only module that speaks S3 (aiobotocore; the hot PUTs, the parts of a
proxied upload and HEAD through ``infra.storage.s3_requests``)."""

import asyncio
import base64
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from infra.config import Settings
from infra.storage.s3_requests import MAX_ATTEMPTS, Piece, S3Requests, no_such_bucket
from infra.storage.signer import SignedPost, SigV4Presigner

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef
else:
    S3Client = Any
    CompletedPartTypeDef = dict

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 60
MAX_POOL_CONNECTIONS = 64
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
# S3 answers at most this many keys (or multipart uploads) per listing request.
MAX_LIST_PAGE = 1000


PROXIED_KEY_MARKER = "proxied-"


def is_proxied_key(key: str) -> bool:
    """The object was written by the API itself, for a proxied upload its request confirms: a
    notification of it has nothing to do (older proxied keys lack the marker; the worker tells
    them by their upload row)."""
    return key.rpartition("/")[2].startswith(PROXIED_KEY_MARKER)


class RangeRefused(Exception):
    """Storage answered 416: the requested range lies outside the object."""


class LimitExceeded(Exception):
    """A stream was longer than the byte limit it was given; nothing of it was kept."""


class MultipartGone(Exception):
    """Storage no longer holds the multipart upload (aborted, or completed already)."""


class PartsRefused(Exception):
    """Storage refused a part list (a part it does not hold, a wrong etag, a small part)."""


@dataclass(frozen=True, slots=True)
class StoredPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None = None
    # Hex SHA-256 of the whole object, when storage keeps one (uploaded with a checksum).
    sha256: str | None = None

    @classmethod
    def of(cls, response: Mapping[str, Any]) -> "ObjectInfo":
        """From a HeadObject or GetObject answer."""
        checksum = response.get("ChecksumSHA256")
        sha256 = None
        if checksum and "-" not in checksum:  # a composite (per-part) checksum is not the file's
            with contextlib.suppress(ValueError):
                sha256 = base64.b64decode(checksum, validate=True).hex()
        return cls(
            size=response["ContentLength"],
            etag=_strip_etag(response["ETag"]),
            content_type=response.get("ContentType"),
            last_modified=response.get("LastModified"),
            sha256=sha256,
        )


@dataclass(frozen=True, slots=True)
class PresignedPut:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ObjectStream:
    info: ObjectInfo
    content_range: str | None
    body: AsyncIterator[bytes]
    # Releases the connection without reading the body (a HEAD needs only ``info``).
    close: Callable[[], None]


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """One page of a listing in key order. ``storage_time`` is storage's clock when it answered
    (its ``Date`` header), the clock ``last_modified`` was written with."""

    objects: tuple[ListedObject, ...]
    truncated: bool  # more keys follow the last one
    storage_time: datetime | None


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class MultipartMarker:
    """Where a multipart listing resumes: storage's own ``KeyMarker`` / ``UploadIdMarker``."""

    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class MultipartPage:
    uploads: tuple[MultipartUpload, ...]
    next: MultipartMarker | None  # None once the listing is exhausted
    storage_time: datetime | None  # storage's clock at the first answer, as in ``ObjectPage``


def _storage_time(response: Any) -> datetime | None:
    """The response's ``Date`` header: storage's clock, comparable with the times it records."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING_CODES


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def _client_config(settings: Settings) -> AioConfig:
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path", "payload_signing_enabled": settings.storage.sign_payload},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


class Storage:
    def __init__(
        self,
        client: S3Client,
        signer: SigV4Presigner,
        settings: Settings,
        requests: S3Requests | None = None,
    ) -> None:
        self._client = client
        self._signer = signer
        self._settings = settings
        self.bucket = settings.storage.bucket
        # PUTs, a proxied upload's parts and HEAD without botocore, when given (``open_storage``).
        self._requests = requests

    def object_key(self, owner_id: object, upload_id: object, *, proxied: bool = False) -> str:
        """Where an upload's bytes go. The API names every key (a client never chooses one),
        so a proxied upload's marker is proof that the API wrote it (``is_proxied_key``)."""
        name = f"{PROXIED_KEY_MARKER}{upload_id}" if proxied else str(upload_id)
        return f"{self._settings.storage.key_prefix}/{owner_id}/{name}"

    async def ping(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if is_missing(error):  # a HEAD's 404 has no body to say which bucket
                raise no_such_bucket("HeadBucket", self.bucket) from None
            raise

    async def ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                await self._client.create_bucket(Bucket=self.bucket)
            except ClientError as error:  # created meanwhile (SeaweedFS's -bucket flag)
                code = error.response.get("Error", {}).get("Code")
                if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    async def create_bucket(self) -> bool:
        """Create the bucket in the settings' region; False when it is ours already."""
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self._settings.storage.region != "us-east-1":
            # AWS refuses a CreateBucket outside us-east-1 that does not name its region.
            params["CreateBucketConfiguration"] = {
                "LocationConstraint": self._settings.storage.region
            }
        try:
            await self._client.create_bucket(**params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
                return False
            raise
        return True

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's facts; ``None`` when the bucket holds no such object.

        A HEAD's 404 has no body: the object is missing, or the whole bucket is. A HeadBucket
        tells them apart (one more request per miss), so a missing bucket fails as the outage
        it is (``infra.transient``) and is never read as "never uploaded": reconcile would close
        every pending upload."""
        if self._requests is not None:
            found = await self._requests.head(key)
            if found is None:
                await self.ping()
                return None
            return ObjectInfo.of(found)
        try:
            response = await self._client.head_object(
                Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"
            )
        except ClientError as error:
            if is_missing(error):
                await self.ping()
                return None
            raise
        return ObjectInfo.of(response)

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def _put_object(self, key: str, pieces: list[Piece], content_type: str) -> str:
        if self._requests is not None:
            return await self._requests.put(key, pieces, content_type)
        stored = await self._client.put_object(
            Bucket=self.bucket, Key=key, Body=b"".join(pieces), ContentType=content_type
        )
        return stored["ETag"]

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        limit: int,
        on_multipart: Callable[[str], Awaitable[None]] | None = None,
    ) -> ObjectInfo:
        """Store a stream under ``key`` in bounded memory; returns what was stored.

        Bodies under the multipart threshold go up in one PUT; larger ones as a multipart
        upload, parts in flight while the next is read (``FILESTORE_S3_PARTS_IN_FLIGHT``).
        Past ``limit`` bytes the upload is aborted and ``LimitExceeded`` raised; an error from
        ``chunks`` aborts it too, so nothing is left behind. A part is the chunks read for it,
        sent as they are: never copied into a buffer or joined. ``on_multipart`` learns the
        storage upload id before the first part is sent (a record that outlives this process).
        """
        part_size = self._settings.storage.part_size_bytes
        threshold = self._settings.storage.multipart_threshold_bytes
        pending: list[Piece] = []
        buffered = total = 0
        writer: _PartWriter | None = None
        try:
            async for chunk in chunks:
                total += len(chunk)
                if total > limit:
                    raise LimitExceeded()
                pending.append(chunk)
                buffered += len(chunk)
                if writer is None and buffered >= threshold:
                    writer = await _PartWriter.start(self, key, content_type)
                    if on_multipart is not None:
                        await on_multipart(writer.upload_id)
                while writer is not None and buffered >= part_size:
                    # The last piece is cut (a view, no copy) where the part ends.
                    over = buffered - part_size
                    last = memoryview(pending[-1])
                    cut = len(last) - over
                    await writer.send([*pending[:-1], last[:cut]])
                    pending, buffered = ([last[cut:]] if over else []), over
            if writer is None:
                etag = await self._put_object(key, pending, content_type)
                return ObjectInfo(total, _strip_etag(etag), content_type)
            if pending:
                await writer.send(pending)
            return ObjectInfo(total, await writer.finish(), content_type)
        except BaseException:
            if writer is not None:
                await writer.abort()
            raise

    async def _upload_part(self, key: str, upload_id: str, number: int, pieces: list[Piece]) -> str:
        if self._requests is not None:
            return await self._requests.upload_part(key, upload_id, number, pieces)
        response = await self._client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=b"".join(pieces),
        )
        return response["ETag"]

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.shield(
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            )
        except (ClientError, BotoCoreError):
            log.warning("multipart abort failed", extra={"object_key": key}, exc_info=True)

    async def open(self, key: str, byte_range: str | None = None) -> ObjectStream | None:
        """Open the object for reading; ``None`` when it is gone."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            params["Range"] = byte_range
        try:
            response = await self._client.get_object(**params)
        except ClientError as error:
            if is_missing(error):
                return None
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                raise RangeRefused() from None
            raise
        body = response["Body"]
        chunk_size = self._settings.files.stream_chunk_bytes

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in body.iter_chunks(chunk_size):
                    yield chunk
            finally:
                body.close()

        return ObjectStream(
            ObjectInfo.of(response), response.get("ContentRange"), chunks(), body.close
        )

    def presign_get(self, key: str, disposition: str, content_type: str | None) -> str:
        params = {"response-content-disposition": disposition}
        if content_type:
            params["response-content-type"] = content_type
        return self._signer.presign_url(
            "GET", self.bucket, key, self._settings.files.download_url_ttl_seconds, params=params
        )

    def presign_put(
        self, key: str, content_type: str, size: int | None, sha256_b64: str | None
    ) -> PresignedPut:
        """A PUT URL and the exact headers it signs (the client must send them all)."""
        headers = {"Content-Type": content_type}
        if size is not None:
            headers["Content-Length"] = str(size)
        if sha256_b64 is not None:
            headers["x-amz-checksum-sha256"] = sha256_b64
        url = self._signer.presign_url(
            "PUT", self.bucket, key, self._settings.uploads.upload_url_ttl_seconds, headers=headers
        )
        return PresignedPut(url, headers)

    def presign_post(
        self, key: str, content_type: str, max_size: int, min_size: int = 1
    ) -> SignedPost:
        """A browser form upload of ``min_size..max_size`` bytes (storage refuses others)."""
        return self._signer.presign_post(
            self.bucket,
            key,
            self._settings.uploads.upload_url_ttl_seconds,
            fields={"Content-Type": content_type},
            conditions=[["content-length-range", min_size, max_size]],
        )

    async def list_objects(self, prefix: str, start_after: str | None, limit: int) -> ObjectPage:
        """One request: up to ``limit`` (capped at S3's page of 1000) keys under ``prefix``
        that sort after ``start_after``, in key order."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": prefix,
            "MaxKeys": max(0, min(limit, MAX_LIST_PAGE)),
        }
        if start_after:
            params["StartAfter"] = start_after
        response = await self._client.list_objects_v2(**params)
        objects = tuple(
            ListedObject(item["Key"], item["Size"], item["LastModified"])
            for item in response.get("Contents", [])
        )
        return ObjectPage(objects, bool(response.get("IsTruncated")), _storage_time(response))

    async def list_multipart_uploads(
        self, prefix: str, limit: int, after: MultipartMarker | None = None
    ) -> MultipartPage:
        """In-progress multipart uploads under ``prefix``, at most ``limit``, following storage's
        pages from ``after`` (in storage's order: by key on AWS and MinIO, not on SeaweedFS)."""
        uploads: list[MultipartUpload] = []
        marker = after
        storage_time: datetime | None = None
        while len(uploads) < limit:
            params: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": prefix,
                "MaxUploads": min(limit - len(uploads), MAX_LIST_PAGE),
            }
            if marker is not None and marker.key:
                params["KeyMarker"] = marker.key
            if marker is not None and marker.upload_id:
                params["UploadIdMarker"] = marker.upload_id
            response = await self._client.list_multipart_uploads(**params)
            storage_time = storage_time or _storage_time(response)
            page = [
                MultipartUpload(item["Key"], item["UploadId"], item["Initiated"])
                for item in response.get("Uploads", [])
            ]
            uploads += page
            if not response.get("IsTruncated") or not page:
                return MultipartPage(tuple(uploads), None, storage_time)
            # AWS names both markers; SeaweedFS only the upload id. Neither: resume after the last.
            marker = MultipartMarker(
                response.get("NextKeyMarker", ""), response.get("NextUploadIdMarker", "")
            )
            if not marker.key and not marker.upload_id:
                marker = MultipartMarker(page[-1].key, page[-1].upload_id)
        return MultipartPage(tuple(uploads), marker, storage_time)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload; one already aborted or completed counts as done."""
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except ClientError as error:
            if not is_missing(error):
                raise

    async def put_bucket_cors(self, configuration: Mapping[str, Any]) -> None:
        """Replace the bucket's CORS rules (what browsers may do with presigned URLs)."""
        await self._client.put_bucket_cors(
            Bucket=self.bucket,
            CORSConfiguration=configuration,  # type: ignore[arg-type]
        )

    # Presigned multipart uploads: the client sends the parts, the API opens and closes.

    async def create_multipart_upload(self, key: str, content_type: str) -> str:
        """Open a multipart upload for ``key``; its object will carry ``content_type``."""
        created = await self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        return created["UploadId"]

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part storage holds for the upload, through every ListParts page."""
        parts: list[StoredPart] = []
        marker = 0
        while True:
            try:
                response = await self._client.list_parts(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                    MaxParts=MAX_LIST_PAGE,
                )
            except ClientError as error:
                if is_missing(error):
                    raise MultipartGone() from None
                raise
            page = [
                StoredPart(item["PartNumber"], item["Size"], _strip_etag(item["ETag"]))
                for item in response.get("Parts", [])
            ]
            parts += page
            next_marker = int(response.get("NextPartNumberMarker") or 0)
            if not response.get("IsTruncated") or not page or next_marker <= marker:
                return sorted(parts, key=lambda part: part.number)
            marker = next_marker

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> str:
        """Assemble the object from ``(number, etag)`` pairs in order; returns its etag."""
        listed: list[CompletedPartTypeDef] = [
            {"PartNumber": number, "ETag": f'"{etag}"'} for number, etag in parts
        ]
        try:
            completed = await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )
        except ClientError as error:
            if is_missing(error):
                raise MultipartGone() from None
            code = str(error.response.get("Error", {}).get("Code"))
            if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
                message = error.response.get("Error", {}).get("Message") or code
                raise PartsRefused(f"{code}: {message}") from None
            raise
        return _strip_etag(completed.get("ETag", ""))

    def presign_part(
        self, key: str, upload_id: str, number: int, size: int | None, sha256_b64: str | None
    ) -> PresignedPut:
        """An UploadPart URL and the headers it signs: the part's exact length when known, and
        its checksum when given, so storage refuses any other bytes."""
        headers: dict[str, str] = {}
        if size is not None:
            headers["Content-Length"] = str(size)
        if sha256_b64 is not None:
            headers["x-amz-checksum-sha256"] = sha256_b64
        params = {"partNumber": str(number), "uploadId": upload_id}
        return PresignedPut(self.presign_request("PUT", key, params, headers), headers)

    def presign_request(
        self,
        method: str,
        key: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Any S3 request on ``key`` (query ``params`` and ``headers`` signed as given), valid
        for ``upload_url_ttl_seconds``."""
        return self._signer.presign_url(
            method,
            self.bucket,
            key,
            self._settings.uploads.upload_url_ttl_seconds,
            headers=dict(headers or {}),
            params=dict(params or {}),
        )


@contextlib.asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    session = get_session()
    config = _client_config(settings)

    def client_for(endpoint_url: str) -> Any:
        return session.create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=settings.storage.region,
            aws_access_key_id=settings.storage.access_key,
            aws_secret_access_key=settings.storage.secret_key.get_secret_value(),
            config=config,
        )

    timeout = aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=MAX_POOL_CONNECTIONS)
    async with (
        client_for(settings.storage.endpoint_url) as client,
        aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as http,
    ):
        # The hot requests go without botocore, unless payloads must be signed (a presigned
        # request leaves its payload unsigned).
        internal = signer_for(settings, settings.storage.endpoint_url)
        requests = S3Requests(http, internal, settings.storage.bucket)
        signer = signer_for(settings, settings.storage.presign_endpoint_url)
        yield Storage(client, signer, settings, None if settings.storage.sign_payload else requests)


def signer_for(settings: Settings, endpoint_url: str) -> SigV4Presigner:
    """A SigV4 signer with the settings' credentials for requests to ``endpoint_url``."""
    return SigV4Presigner(
        endpoint_url,
        settings.storage.region,
        settings.storage.access_key,
        settings.storage.secret_key.get_secret_value(),
    )


class _PartWriter:
    """One multipart upload of ``put_stream``, its parts sent with a bounded number in flight."""

    def __init__(self, storage: Storage, key: str, upload_id: str) -> None:
        self._storage, self._key, self._upload_id = storage, key, upload_id
        self._depth = storage._settings.storage.parts_in_flight
        self._in_flight: collections.deque[asyncio.Task[None]] = collections.deque()
        self._parts: list[CompletedPartTypeDef] = []
        self._sent = 0  # parts handed to a task: the next one's number follows

    @property
    def upload_id(self) -> str:
        return self._upload_id

    @classmethod
    async def start(cls, storage: Storage, key: str, content_type: str) -> "_PartWriter":
        created = await storage._client.create_multipart_upload(
            Bucket=storage.bucket, Key=key, ContentType=content_type
        )
        return cls(storage, key, created["UploadId"])

    async def send(self, pieces: list[Piece]) -> None:
        """Start sending ``pieces`` as the next part, once fewer than the limit are in flight."""
        while len(self._in_flight) >= self._depth:
            await self._in_flight.popleft()
        self._sent += 1
        self._in_flight.append(asyncio.create_task(self._send(self._sent, pieces)))

    async def _send(self, number: int, pieces: list[Piece]) -> None:
        etag = await self._storage._upload_part(self._key, self._upload_id, number, pieces)
        self._parts.append({"PartNumber": number, "ETag": etag})

    async def finish(self) -> str:
        """Wait for the parts in flight and complete the upload; its ETag, unquoted."""
        while self._in_flight:
            await self._in_flight.popleft()
        self._parts.sort(key=lambda part: int(part["PartNumber"]))
        completed = await self._storage._client.complete_multipart_upload(
            Bucket=self._storage.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        return _strip_etag(completed["ETag"])

    async def abort(self) -> None:
        for task in self._in_flight:
            task.cancel()
        for task in self._in_flight:
            with contextlib.suppress(BaseException):
                await task
        self._in_flight.clear()
        await self._storage._abort(self._key, self._upload_id)
