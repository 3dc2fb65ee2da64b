"""Two real API processes share a metrics directory: a scrape of either shows both."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.http_protocol import HTTP
from infra.config import Settings
from scripts.seaweed import free_port
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

STARTUP_SECONDS = 60
UVICORN = (sys.executable, "-m", "uvicorn")


@pytest.fixture
def two_apis(tmp_path: Path, settings: Settings, app: FastAPI) -> Iterator[list[str]]:
    """Two uvicorn processes on the test database, Redis and SeaweedFS, one metrics directory."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "FILESTORE_ENVIRONMENT": "test",
        "FILESTORE_DATABASE_URL": settings.database.url,
        "FILESTORE_REDIS_URL": settings.redis.url,
        "FILESTORE_S3_ENDPOINT_URL": settings.storage.endpoint_url,
        "FILESTORE_S3_ACCESS_KEY": settings.storage.access_key,
        "FILESTORE_S3_SECRET_KEY": settings.storage.secret_key.get_secret_value(),
        "FILESTORE_S3_BUCKET": settings.storage.bucket,
        "FILESTORE_JWT_SECRET": settings.auth.jwt_secret.get_secret_value(),
        "FILESTORE_METRICS_DIR": str(metrics_dir),
        "FILESTORE_LOG_LEVEL": "WARNING",
    }
    urls, processes = [], []
    for index in range(2):
        port = free_port()
        with (tmp_path / f"api{index}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [*UVICORN, "api.main:app", "--port", str(port), "--http", HTTP],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, (tmp_path / "api0.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "an API process did not start"
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
        assert list(metrics_dir.glob("*.db")), "no process wrote its metrics"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


HEALTHZ = (
    "http_server_request_duration_seconds_count",
    frozenset(
        {
            ("http_request_method", "GET"),
            ("http_route", "/healthz"),
            ("http_response_status_code", "200"),
        }
    ),
)
ISSUED = ("filestore_uploads_issued_total", frozenset({("kind", "direct")}))


async def test_a_scrape_of_either_process_sums_both(two_apis: list[str]) -> None:
    first, second = two_apis
    before = scrape(first)
    for url, times in ((first, 3), (second, 5)):
        for _ in range(times):
            assert httpx.get(f"{url}/healthz").status_code == 200
    credentials = {"login": "multi", "password": "multi-process-1"}
    assert httpx.post(f"{first}/api/v1/user/register", json=credentials).status_code == 201
    token = httpx.post(f"{second}/api/v1/user/auth", json=credentials).json()["access_token"]
    for url in two_apis:
        issued = httpx.post(
            f"{url}/api/v1/files/upload",
            json={"path": f"/from-{url.rsplit(':', 1)[1]}.txt"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert issued.status_code == 201, issued.text
    from_first, from_second = scrape(first), scrape(second)
    for after in (from_first, from_second):
        assert after.get(HEALTHZ, 0) - before.get(HEALTHZ, 0) == 8
        assert after.get(ISSUED, 0) - before.get(ISSUED, 0) == 2
