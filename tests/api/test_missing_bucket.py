"""A bucket storage does not have (deleted, not created yet, a wrong ``FILESTORE_S3_BUCKET``) is
an outage: every route that reaches storage answers 503 ``storage_unavailable`` with
``Retry-After``, a log line names the bucket, nothing stays pending, and the worker retries.

The test SeaweedFS refuses writes to a missing bucket as AWS does (``-s3.autoCreateBucket=false``
in ``scripts/seaweed.py``), so each test's app points at a bucket name of its own that no one
created.
"""

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from arq import Retry
from fastapi import FastAPI
from sqlalchemy import select

from api.main import create_app
from domain.models import Upload, UploadStatus
from infra.config import Settings
from tests.helpers import Account, intent, listed, ticket_for, upload, worker_ctx
from worker.tasks import confirm_upload, reconcile_uploads

MIB = 1024 * 1024


@dataclass
class Missing:
    """An app of its own on the shared database and Redis, configured with a missing bucket."""

    app: FastAPI
    client: httpx.AsyncClient
    bucket: str


@pytest.fixture
async def missing(settings: Settings, app: FastAPI) -> AsyncIterator[Missing]:
    bucket = f"missing-{secrets.token_hex(4)}"
    other = create_app(settings.with_changes(**{"s3_bucket": bucket}))
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            yield Missing(other, http, bucket)


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "storage_unavailable"
    assert response.headers["retry-after"] == "1"


def _names_bucket(caplog: pytest.LogCaptureFixture, bucket: str, message: str) -> None:
    found = [r for r in caplog.records if r.getMessage() == message]
    assert found, [r.getMessage() for r in caplog.records]
    assert all(getattr(r, "bucket", None) == bucket for r in found)
    assert all(getattr(r, "s3_code", None) == "NoSuchBucket" for r in found)
    assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]


async def _uploads(app: FastAPI) -> list[Upload]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Upload))).all())


@pytest.mark.parametrize("size", [5, 9 * MIB], ids=["one-put", "multipart"])
async def test_a_proxied_upload_answers_503_and_ends_failed(
    missing: Missing,
    alice: Account,
    caplog: pytest.LogCaptureFixture,
    size: int,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await upload(missing.client, alice, "/docs/a.bin", b"x" * size)
    _unavailable(response)
    _names_bucket(caplog, missing.bucket, "storage bucket missing")
    uploads = await _uploads(missing.app)
    assert [u.status for u in uploads] == [UploadStatus.failed]
    assert await listed(missing.client, alice) == []


async def test_a_multipart_intent_answers_503_and_records_nothing(
    missing: Missing, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await intent(
            missing.client, alice, path="/big.img", size=10 * MIB, multipart=True
        )
    _unavailable(response)  # CreateMultipartUpload was refused: the transaction rolled back
    _names_bucket(caplog, missing.bucket, "storage bucket missing")
    assert await _uploads(missing.app) == []


async def test_downloads_parts_and_complete_answer_503(
    missing: Missing, client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    # Made through the app whose bucket exists; read through the one whose bucket does not.
    assert (await upload(client, alice, "/kept.txt", b"kept")).status_code == 201
    multipart = await ticket_for(client, alice, path="/big.img", size=10 * MIB, multipart=True)
    single = await ticket_for(missing.client, alice, path="/one.txt", size=3)  # signs only

    with caplog.at_level(logging.WARNING):
        download = await missing.client.get(
            "/files/download", params={"path": "/kept.txt", "proxy": "true"}, headers=alice.headers
        )
        parts = await missing.client.get(
            f"/files/uploads/{multipart['id']}/parts", headers=alice.headers
        )
        completed = await missing.client.post(
            f"/files/uploads/{multipart['id']}/complete", headers=alice.headers
        )
        # A HEAD's 404 cannot say the bucket is missing: it is not taken for "not uploaded yet".
        not_yet = await missing.client.post(
            f"/files/uploads/{single['id']}/complete", headers=alice.headers
        )
    for response in (download, parts, completed, not_yet):
        _unavailable(response)
    _names_bucket(caplog, missing.bucket, "storage bucket missing")
    states = {u.id.hex: u.status for u in await _uploads(missing.app)}
    assert states[multipart["id"].replace("-", "")] == UploadStatus.pending  # nothing changed


async def test_readyz_fails_and_names_the_bucket(
    missing: Missing, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        ready = await missing.client.get("http://test/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["s3"]
    _names_bucket(caplog, missing.bucket, "ping failed")


async def test_the_worker_retries_and_reconcile_closes_nothing(
    missing: Missing, settings: Settings, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = await ticket_for(missing.client, alice, path="/one.txt", size=3)
    key = ticket["url"].split("?")[0].split(f"/{missing.bucket}/", 1)[1]
    elsewhere = settings.with_changes(
        **{"s3_bucket": missing.bucket, "transaction_retry_seconds": 0}
    )
    ctx = worker_ctx(missing.app, elsewhere, job_try=1)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(Retry):
            await confirm_upload(ctx, key)
        async with _expired(missing.app):
            assert await reconcile_uploads(ctx) == {"skipped": 1}
    _names_bucket(caplog, missing.bucket, "transient failure; retrying")
    _names_bucket(caplog, missing.bucket, "periodic job skipped: a backing service is unavailable")
    assert [u.status for u in await _uploads(missing.app)] == [UploadStatus.pending]


@contextlib.asynccontextmanager
async def _expired(app: FastAPI) -> AsyncIterator[None]:
    """Every pending upload past its expiry and grace, as reconcile finds abandoned ones."""
    async with app.state.engine.begin() as connection:
        await connection.exec_driver_sql(
            "UPDATE uploads SET expires_at = now() - interval '1 day' WHERE status = 'pending'"
        )
    yield
