"""The hot S3 calls (PUT, the parts of a proxied upload, HEAD), signed by ``signer`` and sent
with aiohttp: botocore spends about 0.8 ms of CPU building each request (endpoint rules,
event hooks, parameter validation), several times the request itself (``bench/s3_client.py``).

Failures look like botocore's, so that ``infra.transient`` and every caller treat both alike: a
refusal is a ``ClientError`` carrying S3's code and status, a lost connection an ``OSError``.
As botocore's standard mode does, a 5xx or a lost connection is tried again, up to
``MAX_ATTEMPTS`` times in all.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from botocore.exceptions import ClientError
from multidict import CIMultiDict

from infra.storage.signer import SigV4Presigner

MAX_ATTEMPTS = 3
FIRST_RETRY_DELAY_SECONDS = 0.05
# A signed request is used at once; the URL only has to outlive the request.
URL_TTL_SECONDS = 300
# Larger bodies are sent as a stream of their pieces (aiohttp warns about one large bytes body).
WHOLE_BODY_BYTES = 1024 * 1024
_CODE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_BUCKET = re.compile(r"<BucketName>([^<]*)</BucketName>")
MISSING_BUCKET_MESSAGE = "The specified bucket does not exist"

Piece = bytes | memoryview
Body = bytes | Sequence[Piece]
"""A request body: bytes, or its pieces in order (a stream's chunks, sent without joining)."""


def _payload(body: Body, headers: dict[str, str]) -> bytes | AsyncIterator[memoryview]:
    """What aiohttp sends, made anew for each attempt; a stream gets its Content-Length."""
    if isinstance(body, bytes) and len(body) <= WHOLE_BODY_BYTES:
        return body
    pieces = [body] if isinstance(body, bytes) else body
    headers["Content-Length"] = str(sum(len(piece) for piece in pieces))

    async def stream() -> AsyncIterator[memoryview]:
        for piece in pieces:
            with memoryview(piece) as view:
                for start in range(0, len(view), WHOLE_BODY_BYTES):
                    yield view[start : start + WHOLE_BODY_BYTES]

    return stream()


class S3Requests:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        signer: SigV4Presigner,
        bucket: str,
    ) -> None:
        self._http = http
        self._signer = signer
        self._bucket = bucket

    async def put(self, key: str, body: Body, content_type: str) -> str:
        """PutObject; returns the ETag as S3 sent it (quoted)."""
        headers = {"Content-Type": content_type}
        response = await self._send("PUT", "PutObject", key, headers, body)
        return response["ETag"]

    async def upload_part(self, key: str, upload_id: str, number: int, body: Body) -> str:
        """UploadPart; returns the part's ETag as S3 sent it (quoted)."""
        params = {"partNumber": str(number), "uploadId": upload_id}
        response = await self._send("PUT", "UploadPart", key, {}, body, params)
        return response["ETag"]

    async def head(self, key: str) -> Mapping[str, Any] | None:
        """HeadObject with the stored checksum asked for, as botocore's answer would read (the
        fields ``ObjectInfo.of`` uses); ``None`` when there is no such object."""
        headers = {"x-amz-checksum-mode": "ENABLED"}
        try:
            found = await self._send("HEAD", "HeadObject", key, headers, None)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise
        answer: dict[str, Any] = {
            "ContentLength": int(found.get("Content-Length", "0")),
            "ETag": found.get("ETag", ""),
            "ContentType": found.get("Content-Type"),
            "LastModified": (
                parsedate_to_datetime(found["Last-Modified"]) if "Last-Modified" in found else None
            ),
        }
        if "x-amz-checksum-sha256" in found:
            answer["ChecksumSHA256"] = found["x-amz-checksum-sha256"]
        return answer

    async def _send(
        self,
        method: str,
        operation: str,
        key: str,
        headers: dict[str, str],
        body: Body | None,
        params: dict[str, str] | None = None,
    ) -> Mapping[str, str]:
        delay = FIRST_RETRY_DELAY_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            url = self._signer.presign_url(
                method, self._bucket, key, URL_TTL_SECONDS, headers=headers, params=params
            )
            sent = dict(headers)
            data = None if body is None else _payload(body, sent)
            try:
                async with self._http.request(method, url, data=data, headers=sent) as answer:
                    if answer.status < 300:
                        await answer.read()
                        return CIMultiDict(answer.headers)
                    text = await answer.text(errors="replace") if method != "HEAD" else ""
                    error = _client_error(operation, answer.status, text)
                    if answer.status < 500 or attempt == MAX_ATTEMPTS:
                        raise error
            except aiohttp.ClientError as lost:
                if attempt == MAX_ATTEMPTS:
                    raise ConnectionError(f"{operation} {key}: {lost!r}") from lost
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def no_such_bucket(operation: str, bucket: str) -> ClientError:
    """The refusal S3 sends for a bucket it does not have, for an answer that cannot say so
    itself (a HEAD's 404 has no body)."""
    body = f"<Code>NoSuchBucket</Code><Message>{MISSING_BUCKET_MESSAGE}</Message>"
    return _client_error(operation, 404, f"{body}<BucketName>{bucket}</BucketName>")


def _client_error(operation: str, status: int, body: str) -> ClientError:
    code = _CODE.search(body)
    message = _MESSAGE.search(body)
    error: dict[str, str] = {
        "Code": code.group(1) if code else str(status),
        "Message": message.group(1) if message else "",
    }
    bucket = _BUCKET.search(body)
    if bucket:
        error["BucketName"] = bucket.group(1)  # as botocore parses it
    return ClientError(
        {
            "Error": error,  # type: ignore[typeddict-item]
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "HostId": "",
                "RequestId": "",
                "RetryAttempts": 0,
            },
        },
        operation,
    )
