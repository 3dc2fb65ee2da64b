"""Metrics move where the state changes: uploads, rejections, confirmations, jobs, bytes."""

import contextlib
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import Retry
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update

from api.main import create_app
from domain.models import TrashEntry, Upload, User
from domain.storage_events.parser import parse_events
from infra.config import Settings
from infra.storage.adapter import Storage
from scripts.seaweed import free_port
from tests.domain.uploads.test_direct_uploads import FIXTURES, _minio_event, _reconcile
from tests.helpers import (
    Account,
    Bucket,
    RunWorker,
    complete,
    intent,
    put,
    upload,
    webhook_headers,
    worker_ctx,
)
from worker import metrics as worker_metrics
from worker import tasks
from worker.metrics import instrumented

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("http://test/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


HTTP_COUNT = "http_server_request_duration_seconds_count"


async def test_an_upload_a_rejection_and_a_confirmation_move_the_metrics(
    client: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    before = await scrape(client)

    # A proxied upload and its proxied download: issued, confirmed, bytes in and out.
    content = os.urandom(3000)
    assert (await upload(client, alice, "/m/p.bin", content)).status_code == 201
    download = await client.get(
        "/files/download", params={"path": "/m/p.bin", "proxy": "true"}, headers=alice.headers
    )
    assert download.content == content

    # A direct upload confirmed through a notification carrying the event time.
    ticket = (await intent(client, alice, path="/m/d.txt")).json()["upload"]
    assert (await put(ticket, b"direct bytes")).status_code == 200
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    event: Any = _minio_event(
        settings.storage.bucket, key, hashlib.md5(b"direct bytes").hexdigest()
    )
    landed = datetime.now(UTC) - timedelta(seconds=0.2)
    event["Records"][0]["eventTime"] = landed.isoformat()
    notified = await client.post("/storage/events", json=event, headers=webhook_headers(settings))
    assert notified.status_code == 204

    # A rejection: more bytes than the intent declared.
    declared = (await intent(client, alice, path="/m/r.bin", size=5)).json()["upload"]
    declared_key = declared["url"].split("?")[0].split(f"/{storage.bucket}/", 1)[1]
    await bucket.put(declared_key, b"123456")
    assert (await complete(client, alice, declared["id"])).status_code == 409

    queued = await scrape(client)
    assert value(queued, "filestore_queue_depth") == 1
    assert value(queued, "filestore_outbox_depth") >= 1
    assert value(queued, "filestore_uploads_pending") == 1  # the notified one, not yet confirmed
    await run_worker()
    after = await scrape(client)

    assert moved(before, after, "filestore_uploads_issued_total", kind="proxied") == 1
    assert moved(before, after, "filestore_uploads_issued_total", kind="direct") == 2
    assert moved(before, after, "filestore_uploads_confirmed_total", kind="proxied") == 1
    assert moved(before, after, "filestore_uploads_confirmed_total", kind="direct") == 1
    assert moved(before, after, "filestore_uploads_rejected_total", reason="declared_size") == 1
    assert moved(before, after, "filestore_proxied_bytes_total", direction="in") == len(content)
    assert moved(before, after, "filestore_proxied_bytes_total", direction="out") == len(content)
    # Only the direct upload is timed, from the event's time: at least the 0.2 s it predates.
    assert moved(before, after, "filestore_upload_confirmation_seconds_count") == 1
    latency = moved(before, after, "filestore_upload_confirmation_seconds_sum")
    assert 0.2 <= latency < 30
    assert moved(before, after, "filestore_job_runs_total", job="confirm_upload") == 1
    assert moved(before, after, "filestore_job_failures_total", job="confirm_upload") == 0
    assert moved(before, after, "filestore_outbox_objects_deleted_total") >= 1
    assert value(after, "filestore_queue_depth") == 0
    assert value(after, "filestore_outbox_depth") == 0
    assert value(after, "filestore_uploads_pending") == 0

    # Requests by route template and status, never by raw path.
    upload_route = {"http_request_method": "POST", "http_route": "/api/v1/files/upload"}
    assert moved(before, after, HTTP_COUNT, **upload_route, http_response_status_code="201") == 3
    complete_route = "/api/v1/files/uploads/{upload_id}/complete"
    assert (
        moved(
            before,
            after,
            HTTP_COUNT,
            http_request_method="POST",
            http_route=complete_route,
            http_response_status_code="409",
        )
        == 1
    )
    labels = {label for (_, pairs) in after for _, label in pairs}
    assert not any("/m/" in label or declared["id"] in label for label in labels)
    bounds = {
        float(dict(pairs)["le"])
        for (name, pairs) in after
        if name == "http_server_request_duration_seconds_bucket"
    }
    assert min(bounds) == 0.005
    assert max(bounds - {float("inf")}) == 10.0


async def test_unmatched_routes_share_one_label(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for _ in range(2):
        assert (await client.get(f"/nothing/{uuid.uuid4()}")).status_code == 404
    after = await scrape(client)
    labels = {"http_request_method": "GET", "http_route": "unmatched"}
    assert moved(before, after, HTTP_COUNT, **labels, http_response_status_code="404") == 2


async def test_failed_expired_and_aborted_uploads_are_counted(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
) -> None:
    before = await scrape(client)
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User).values(used_bytes=settings.uploads.user_quota_bytes - 10)
        )
        await session.commit()
    assert (await upload(client, alice, "/big.bin", os.urandom(100))).status_code == 413
    ticket = (await intent(client, alice, path="/never.txt")).json()["upload"]
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == uuid.UUID(ticket["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert (await _reconcile(app, settings, storage))["expired"] == 1
    given_up = (await intent(client, alice, path="/given-up.txt")).json()["upload"]
    aborted = await client.delete(f"/files/uploads/{given_up['id']}", headers=alice.headers)
    assert aborted.status_code == 204
    after = await scrape(client)
    assert moved(before, after, "filestore_uploads_failed_total", reason="too_large") == 1
    assert moved(before, after, "filestore_uploads_expired_total") == 1
    assert moved(before, after, "filestore_uploads_aborted_total") == 1
    assert moved(before, after, "filestore_uploads_issued_total", kind="direct") == 2
    assert moved(before, after, "filestore_uploads_issued_total", kind="proxied") == 1
    assert moved(before, after, "filestore_uploads_confirmed_total", kind="proxied") == 0


async def test_job_retries_and_failures_are_counted(client: httpx.AsyncClient) -> None:
    @instrumented
    async def flaky_job(ctx: dict[str, Any]) -> None:
        raise Retry(defer=1)

    @instrumented
    async def broken_job(ctx: dict[str, Any]) -> None:
        raise ValueError("broken")

    before = await scrape(client)
    with pytest.raises(Retry):
        await flaky_job({})
    with pytest.raises(ValueError, match="broken"):
        await broken_job({})
    after = await scrape(client)
    assert moved(before, after, "filestore_job_runs_total", job="flaky_job") == 1
    assert moved(before, after, "filestore_job_retries_total", job="flaky_job") == 1
    assert moved(before, after, "filestore_job_failures_total", job="flaky_job") == 0
    assert moved(before, after, "filestore_job_runs_total", job="broken_job") == 1
    assert moved(before, after, "filestore_job_failures_total", job="broken_job") == 1


async def test_access_off_open_or_token(settings: Settings, app: FastAPI) -> None:
    off = create_app(settings.with_changes(**{"metrics_access": "off"}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=off), base_url="http://test"
    ) as http:
        assert (await http.get("/metrics")).status_code == 404

    token = "metrics-token-0123456789"
    guarded = create_app(
        settings.with_changes(**{"metrics_access": "token", "metrics_token": SecretStr(token)})
    )
    async with guarded.router.lifespan_context(guarded):
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.get("/metrics")).status_code == 401
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.json()["error"] == "not_authenticated"
            samples = await scrape(http, Authorization=f"Bearer {token}")
            assert ("filestore_queue_depth", frozenset()) in samples

    with pytest.raises(ValueError, match="FILESTORE_METRICS_TOKEN"):
        Settings(metrics_access="token")
    with pytest.raises(ValueError, match="FILESTORE_METRICS_TOKEN"):
        Settings(metrics_access="token", metrics_token="short")


def test_s3_events_carry_their_time_seaweed_events_none() -> None:
    minio = json.loads((FIXTURES / "minio-put-event.json").read_text())
    [event] = parse_events(minio, "uploads", "users")
    assert event.event_time == datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
    minio["Records"][0]["eventTime"] = "yesterday"
    assert parse_events(minio, "uploads", "users")[0].event_time is None
    seaweed = json.loads((FIXTURES / "seaweedfs-filer-events.json").read_text())
    assert all(event.event_time is None for event in parse_events(seaweed, "filestore", "uploads"))


async def test_the_worker_serves_its_metrics_on_its_port(settings: Settings) -> None:
    port, token = free_port(), "worker-metrics-token-0123"
    worker_settings = settings.with_changes(
        **{
            "worker_metrics_port": port,
            "metrics_access": "token",
            "metrics_token": SecretStr(token),
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        worker_metrics.start(worker_settings, stack)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/metrics")).status_code == 401
            served = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert served.status_code == 200
            assert "filestore_job_runs_total" in served.text
    with pytest.raises(httpx.ConnectError):  # stopped with the worker
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_the_purge_is_counted(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for body in (b"1", b"22", b"333"):
        await upload(client, alice, "/v.txt", body)
    await upload(client, alice, "/gone.txt", b"x")
    assert (
        await client.delete("/files", params={"path": "/gone.txt"}, headers=alice.headers)
    ).status_code == 204
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(TrashEntry).values(purge_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    monkeypatch.setattr(settings.retention, "versions_kept", 1)
    before = await scrape(client)
    counts = await tasks.purge(worker_ctx(app, settings))
    assert counts == {"trash_entries": 1, "versions": 1, "shares": 0}
    after = await scrape(client)
    assert moved(before, after, "filestore_purged_total", what="trash_entries") == 1
    assert moved(before, after, "filestore_purged_total", what="versions") == 1
