"""``make run``: database, migrations, SeaweedFS, the API and the worker; Ctrl-C stops them all."""

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import asyncpg
from alembic import command
from alembic.config import Config as AlembicConfig

from api.cors import apply_bucket_cors
from infra.config import Settings, get_settings
from infra.logging import configure_logging
from scripts.seaweed import SeaweedServer, Webhook, die_with_parent

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("filestore.run")


async def ensure_database(database_url: str) -> None:
    """Create the database named in the URL if it does not exist yet."""
    parts = urlsplit(database_url.replace("+asyncpg", ""))
    name = parts.path.lstrip("/")
    admin_dsn = parts._replace(path="/postgres").geturl()
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
            log.info("database created", extra={"database": name})
    finally:
        await connection.close()


def migrate(database_url: str) -> None:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def start_seaweed(settings: Settings) -> SeaweedServer:
    s3_port = urlsplit(settings.storage.endpoint_url).port or 8333
    webhook = Webhook(
        endpoint=f"http://{settings.run.host}:{settings.run.port}/api/v1/storage/events",
        bearer_token=settings.auth.webhook_token.get_secret_value(),
        path_prefix=f"/buckets/{settings.storage.bucket}/{settings.storage.key_prefix}/",
    )
    server = SeaweedServer(
        workdir=(ROOT / settings.run.data_dir / "seaweedfs").resolve(),
        access_key=settings.storage.access_key,
        secret_key=settings.storage.secret_key.get_secret_value(),
        bucket=settings.storage.bucket,
        s3_port=s3_port,
        fixed_ports=s3_port == 8333,
        webhook=webhook,
    )
    return server.start()


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only this runner, which stops each child once and in
    # order (a second SIGINT makes uvicorn abandon its graceful shutdown). preexec_fn only makes
    # one prctl call, bound before the fork, so the child still dies with this runner.
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )


def metrics_directory(settings: Settings) -> tuple[Path, bool]:
    """The API's and the worker's shared metrics directory, empty (values left by an earlier
    run would be summed into this one's); True when it is ours to remove at the end."""
    if settings.observability.dir is None:
        return Path(tempfile.mkdtemp(prefix="filestore-metrics-")), True
    directory = Path(settings.observability.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory, False


def api_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> int:
    settings = get_settings()
    configure_logging(settings.observability.log_level)
    asyncio.run(ensure_database(settings.database.url))
    migrate(settings.database.url)
    log.info("migrations applied")
    seaweed = start_seaweed(settings)
    # Browsers PUT to presigned URLs and read parts' ETags only with a bucket CORS rule.
    asyncio.run(apply_bucket_cors(settings))
    python = sys.executable
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    metrics_dir, own_metrics_dir = metrics_directory(settings)
    env = {**os.environ, "FILESTORE_METRICS_DIR": str(metrics_dir)}
    api_url = f"http://{settings.run.host}:{settings.run.port}"
    try:
        # All log JSON from their first line: api.serve gives uvicorn our log config
        # (infra/log_config.py), the worker configures it itself before arq writes anything.
        children.append(spawn([python, "-m", "api.serve"], env))
        children.extend(
            spawn([python, "-m", "worker"], env) for _ in range(settings.worker.processes)
        )
        while not stopping and not api_answers(f"{api_url}/healthz"):
            if any(child.poll() is not None for child in children):
                break
            time.sleep(0.2)
        else:
            if not stopping:
                log.info(
                    "filestore running",
                    extra={
                        "api": api_url,
                        "s3": seaweed.endpoint_url,
                        "metrics": f"{api_url}/metrics",
                        "metrics_dir": str(metrics_dir),
                        "api_processes": settings.run.api_processes,
                        "worker_processes": settings.worker.processes,
                    },
                )
        while not stopping:
            if any(child.poll() is not None for child in children):
                log.error("a child process exited; stopping everything")
                break
            time.sleep(0.2)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        seaweed.stop()
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("filestore stopped")
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
