"""The PUT and HEAD sent without botocore answer as botocore would, and fail as botocore would
(a refusal is a permanent ``ClientError``, a 5xx is retried, a lost server is transient)."""

import base64
import hashlib
import itertools
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import ClientError
from pydantic import SecretStr

from infra.config import Settings
from infra.storage.adapter import ObjectInfo, Storage, open_storage, signer_for
from infra.storage.s3_requests import Piece, S3Requests
from infra.storage.signer import SigV4Presigner
from infra.transient import Backend, classify
from scripts.seaweed import free_port
from tests.helpers import Bucket


def _signer(endpoint: str, settings: Settings, secret: str | None = None) -> SigV4Presigner:
    if secret is not None:
        settings = settings.with_changes(**{"s3_secret_key": SecretStr(secret)})
    return signer_for(settings, endpoint)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_put_and_head_answer_as_botocore_does(
    http: aiohttp.ClientSession, settings: Settings, storage: Storage, bucket: Bucket
) -> None:
    requests = S3Requests(
        http, _signer(settings.storage.endpoint_url, settings), settings.storage.bucket
    )
    body = b"sent without botocore" * 100
    etag = await requests.put("tests/plain.bin", body, "text/plain")
    assert etag.strip('"') == hashlib.md5(body).hexdigest()

    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    await bucket.client.put_object(
        Bucket=settings.storage.bucket,
        Key="tests/summed.bin",
        Body=body,
        ContentType="application/x-summed",
        ChecksumSHA256=checksum,
    )
    for key in ("tests/plain.bin", "tests/summed.bin"):
        ours = await requests.head(key)
        assert ours is not None
        theirs = await bucket.client.head_object(
            Bucket=settings.storage.bucket, Key=key, ChecksumMode="ENABLED"
        )
        assert ObjectInfo.of(ours) == ObjectInfo.of(theirs)
    summed = await storage.head("tests/summed.bin")
    assert summed is not None and summed.sha256 == hashlib.sha256(body).hexdigest()
    assert await requests.head("tests/nothing-here") is None


async def test_a_body_in_pieces_is_stored_whole(
    http: aiohttp.ClientSession, settings: Settings, bucket: Bucket
) -> None:
    """Over a MiB, in pieces (one a view): sent as a stream with its length, never joined."""
    requests = S3Requests(
        http, _signer(settings.storage.endpoint_url, settings), settings.storage.bucket
    )
    body = bytes(range(256)) * 12_000
    pieces: list[Piece] = [body[:1000], memoryview(body)[1000:2_000_000], body[2_000_000:]]
    etag = await requests.put("tests/pieces.bin", pieces, "application/x-pieces")
    assert etag.strip('"') == hashlib.md5(body).hexdigest()
    stored = await bucket.client.get_object(Bucket=settings.storage.bucket, Key="tests/pieces.bin")
    async with stored["Body"] as stream:
        assert await stream.read() == body
    assert stored["ContentType"] == "application/x-pieces"


@pytest.mark.parametrize("in_flight", [1, 3])
async def test_a_stream_goes_up_whole_with_parts_in_flight(
    settings: Settings, bucket: Bucket, in_flight: int
) -> None:
    """Chunks of uneven sizes, parts cut across them, several parts on their way at once: the
    object is the stream, and every part keeps its own number."""
    tuned = settings.with_changes(
        **{
            "s3_parts_in_flight": in_flight,
            "s3_part_size_bytes": 5 * 1024 * 1024,
            "s3_multipart_threshold_bytes": 5 * 1024 * 1024,
        }
    )
    body = os.urandom(27 * 1024 * 1024 + 77)
    sizes = itertools.cycle([700_001, 65_536, 1_234_567, 9])

    async def chunks() -> AsyncIterator[bytes]:
        start = 0
        while start < len(body):
            end = start + next(sizes)
            yield body[start:end]
            start = end

    key = f"tests/streamed-{in_flight}.bin"
    async with open_storage(tuned) as storage:
        stored = await storage.put_stream(key, chunks(), "application/x-streamed", len(body))
    assert stored.size == len(body)
    assert stored.etag.endswith("-6")  # five parts of 5 MiB and the rest
    fetched = await bucket.client.get_object(Bucket=settings.storage.bucket, Key=key)
    async with fetched["Body"] as stream:
        assert hashlib.sha256(await stream.read()).digest() == hashlib.sha256(body).digest()


async def test_a_refusal_is_a_permanent_client_error(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    forged = S3Requests(
        http,
        _signer(settings.storage.endpoint_url, settings, "not-the-secret"),
        settings.storage.bucket,
    )
    with pytest.raises(ClientError) as refused:
        await forged.put("tests/forged.bin", b"x", "application/octet-stream")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert classify(refused.value) is None


async def test_a_5xx_is_retried_and_a_lasting_one_is_transient(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    answers = [503, 500, 200, 503, 503, 503]
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(request.method)
        status = answers.pop(0)
        if status == 200:
            return web.Response(status=200, headers={"ETag": '"abc"'})
        body = "<Error><Code>SlowDown</Code><Message>later</Message></Error>"
        return web.Response(status=status, text=body)

    server = web.Application()
    server.router.add_route("PUT", "/{tail:.*}", flaky)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        requests = S3Requests(http, _signer(f"http://127.0.0.1:{port}", settings), "b")
        assert await requests.put("k", b"body", "text/plain") == '"abc"'
        with pytest.raises(ClientError) as lasting:
            await requests.put("k", b"body", "text/plain")
    finally:
        await runner.cleanup()
    assert seen == ["PUT"] * 6
    assert lasting.value.response["Error"]["Code"] == "SlowDown"
    assert classify(lasting.value) is Backend.storage


async def test_a_server_that_is_gone_is_a_network_error(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    requests = S3Requests(http, _signer(f"http://127.0.0.1:{free_port()}", settings), "b")
    with pytest.raises(ConnectionError, match="HeadObject k") as lost:
        await requests.head("k")
    assert classify(lost.value) is Backend.network
