"""``make run`` logs JSON only, from every process (two API processes here), and says "running"
only once it is."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from infra.log_config import LOG_CONFIG
from scripts.seaweed import free_port
from tests.conftest import ADMIN_DSN
from tests.helpers import ROOT
from tests.scripts.test_compose import _config as _compose_config

pytestmark = pytest.mark.e2e

STARTUP_SECONDS = 90


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines()


def _records(log: Path) -> Iterator[dict[str, Any]]:
    for line in _lines(log):
        try:
            yield json.loads(line)
        except ValueError:
            continue


async def test_every_line_of_a_start_and_stop_is_json(
    tmp_path: Path, run_id: str, redis_url: str
) -> None:
    port = free_port()
    database = f"filestore_logs_{run_id}"
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    env = {
        **os.environ,
        "FILESTORE_DATABASE_URL": f"{base}/{database}",
        "FILESTORE_REDIS_URL": redis_url,
        "FILESTORE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "FILESTORE_S3_BUCKET": f"logs-{run_id}",
        "FILESTORE_RUN_PORT": str(port),
        "FILESTORE_RUN_DATA_DIR": str(tmp_path / "var"),
        "FILESTORE_LOG_LEVEL": "INFO",
        "FILESTORE_API_PROCESSES": "2",
    }
    env.pop("FILESTORE_METRICS_DIR", None)
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        # stdout and stderr both: nothing any process writes may be anything but JSON.
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not any(r.get("msg") == "filestore running" for r in _records(log)):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the runner never said it was running"
            time.sleep(0.1)
        # Said only once the API answers: it answers now, at once.
        assert httpx.get(f"{api}/healthz", timeout=2).status_code == 200
        assert httpx.get(f"{api}/readyz", timeout=5).status_code == 200
        running = next(r for r in _records(log) if r.get("msg") == "filestore running")
        metrics_dir = Path(running["metrics_dir"])
        assert metrics_dir.is_dir()
        # The worker writes into the shared directory: its startup jobs show in the API's scrape.
        while "filestore_job_runs_total{" not in httpx.get(f"{api}/metrics").text:
            assert time.monotonic() < deadline, "the worker's metrics never showed"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    lines = _lines(log)
    not_json = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            not_json.append(line)
            continue
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= record.keys(), line
    assert not not_json, not_json[:5]
    messages = [record["msg"] for record in map(json.loads, lines)]
    loggers = {record["logger"] for record in map(json.loads, lines)}
    assert {"uvicorn.error", "arq.worker", "filestore.run", "api.main"} <= loggers
    assert any(m.startswith("Starting worker for") for m in messages)  # arq's own first line
    uvicorn_up = next(i for i, m in enumerate(messages) if m.startswith("Uvicorn running on"))
    assert uvicorn_up < messages.index("filestore running")
    # Two API processes behind one socket, each started and stopped cleanly.
    assert messages.count("api started") == 2
    assert sum(m.startswith("Started server process") for m in messages) == 2
    assert sum(m.startswith("Finished server process") for m in messages) == 2
    assert messages[-1] == "filestore stopped"
    assert not metrics_dir.exists()  # the runner made it and removed it


def test_the_images_processes_log_with_the_same_config() -> None:
    services = _compose_config()["services"]
    # python -m api.serve gives uvicorn infra/log_config.json (what make run starts, above).
    assert services["api"]["command"] == ["python", "-m", "api.serve"]
    # python -m worker configures the same JSON formatter before arq writes anything (the
    # make run test above reads every line of the same command).
    assert services["worker"]["command"] == ["python", "-m", "worker"]
    assert LOG_CONFIG["formatters"]["json"]["()"] == "infra.logging.JsonFormatter"
    assert 'CMD ["python", "-m", "api.serve"]' in (ROOT / "Dockerfile").read_text()
