"""The stack under test, all of it ours: PostgreSQL, Redis, SeaweedFS, two APIs, two workers.

Every service listens on a spare port of 127.0.0.1 and keeps its data under one run directory
outside the source tree; the machine's shared PostgreSQL and Redis are never touched. The
children run in the run directory (no ``.env`` of the repository applies), are configured only
through ``FILESTORE_*`` variables and write their output to ``logs/<name>.log``.

The service code (``api``, ``worker``, the migrations) is copied into the run directory when the
run starts and every process, restarted ones included, runs that copy: one run tests one version
of the code, even while the working tree is being edited.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import httpx

from api.http_protocol import HTTP
from scripts.postgres import OwnPostgres
from scripts.run import ensure_database
from scripts.seaweed import SeaweedServer, Webhook, die_with_parent, free_port
from soak.model import Clock, ProcessExit

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("soak.stack")

BUCKET = "filestore-soak"
KEY_PREFIX = "uploads"
API_COUNT = 2
WORKER_COUNT = 2
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 15
MIB = 1024 * 1024
# What the services run, copied at the start of the run.
SOURCES = ("api", "worker", "migrations", "alembic.ini")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timings:
    """Short settings, so that every clean-up path runs several times within the run."""

    upload_url_ttl_seconds: int = 20
    upload_grace_seconds: int = 5
    sweep_grace_seconds: int = 15
    proxied_upload_lease_seconds: int = 15
    reconcile_interval_seconds: int = 5
    outbox_drain_interval_seconds: int = 2
    sweep_interval_seconds: int = 10
    # Small enough that one or two large files fill it: quota rejections happen.
    user_quota_bytes: int = 12 * MIB
    # The smallest S3 allows, so 6-20 MiB proxied uploads go up as multipart uploads.
    multipart_bytes: int = 5 * MIB
    # Deletes wait in the trash this long and the purge runs this often, so entries are purged
    # (and restores race the purge) within the run; a few versions a file, so overwrites trim.
    trash_retention_seconds: int = 20
    purge_interval_seconds: int = 5
    versions_kept: int = 3


@dataclass
class Service:
    """A child process the harness may kill and start again; its output goes to a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # False while the harness keeps it down on purpose (a fault, the shutdown).
    wanted: bool = False
    _log: IO[bytes] | None = None

    def spawn(self) -> None:
        """Start it. Called from the event loop's thread only: the child's parent-death signal
        fires when the *thread* that forked it ends, so no pool thread may do this."""
        self._close_log()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, bound before fork
        )
        self.wanted = True

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9, as a crash."""
        self.wanted = False
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    async def terminate(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL after a while."""
        self.wanted = False
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def error_digest(path: Path, limit: int = 8) -> str:
    """The distinct errors of a log (JSON error lines, bare tracebacks), most frequent first."""
    counts: Counter[str] = Counter()
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") not in {"error", "critical"}:
                continue
            exc = str(record.get("exc") or "").strip()
            last = exc.splitlines()[-1] if exc else ""
            counts[f"{record.get('msg')} | {last}"[:300]] += 1
        elif EXCEPTION_LINE.match(line):
            counts[line[:300]] += 1
    return "\n".join(f"{n:>6} x {key}" for key, n in counts.most_common(limit))


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Stack:
    workdir: Path
    clock: Clock
    timings: Timings = field(default_factory=Timings)
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    api_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(API_COUNT)])
    access_key: str = field(default_factory=lambda: f"soak-{secrets.token_hex(4)}")
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    webhook_token: str = field(default_factory=lambda: secrets.token_hex(16))
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    exits: list[ProcessExit] = field(default_factory=list)
    # Off: weed runs without a notification.toml, so storage notifies nothing and confirmation
    # comes only from clients' ``complete`` and from reconcile.
    notifications: bool = True

    def __post_init__(self) -> None:
        self.logs = self.workdir / "logs"
        self.run_dir = self.workdir / "run"  # the children's working directory
        self.source = self.workdir / "src"  # the code they run
        self.postgres = OwnPostgres(self.workdir / "pg", self.pg_port)
        self.seaweed = SeaweedServer(
            workdir=self.workdir / "seaweed",
            access_key=self.access_key,
            secret_key=self.secret_key,
            bucket=BUCKET,
            webhook=Webhook(
                endpoint=f"{self.api_urls[0]}/api/v1/storage/events",
                bearer_token=self.webhook_token,
                path_prefix=f"/buckets/{BUCKET}/{KEY_PREFIX}/",
            )
            if self.notifications
            else None,
        )
        # weed is started and stopped by one long-lived thread (see Service.spawn for why).
        self._weed_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weed")
        self.seaweed_wanted = False
        python = sys.executable
        env = self.service_env()
        self.redis = Service(
            "redis",
            [
                *("redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir / "redis")),
            ],
            env,
            self.run_dir,
            self.logs / "redis.log",
        )
        self.apis = [
            Service(
                f"api-{index + 1}",
                [
                    *(python, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"),
                    *("--port", str(port), "--no-access-log", "--http", HTTP),
                ],
                env,
                self.run_dir,
                self.logs / f"api-{index + 1}.log",
            )
            for index, port in enumerate(self.api_ports)
        ]
        self.workers = [
            Service(
                f"worker-{index + 1}",
                [python, "-m", "worker"],
                env,
                self.run_dir,
                self.logs / f"worker-{index + 1}.log",
            )
            for index in range(WORKER_COUNT)
        ]

    # -- configuration ---------------------------------------------------------------------

    @property
    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    @property
    def database_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/filestore"

    @property
    def s3_endpoint(self) -> str:
        return self.seaweed.endpoint_url

    def settings(self) -> dict[str, str]:
        """Every FILESTORE_ setting the services get (unknown ones are ignored by them)."""
        t = self.timings
        values: dict[str, object] = {
            "environment": "development",
            "log_level": "INFO",
            "database_url": self.database_dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "redis_url": f"redis://127.0.0.1:{self.redis_port}/0",
            "s3_bucket": BUCKET,
            "s3_key_prefix": KEY_PREFIX,
            "s3_access_key": self.access_key,
            "s3_secret_key": self.secret_key,
            "s3_multipart_threshold_bytes": t.multipart_bytes,
            "s3_part_size_bytes": t.multipart_bytes,
            "jwt_secret": self.jwt_secret,
            "webhook_token": self.webhook_token,
            "user_quota_bytes": t.user_quota_bytes,
            "upload_url_ttl_seconds": t.upload_url_ttl_seconds,
            "upload_grace_seconds": t.upload_grace_seconds,
            "sweep_grace_seconds": t.sweep_grace_seconds,
            "proxied_upload_lease_seconds": t.proxied_upload_lease_seconds,
            # The clients share a few accounts, and an API the soak kills keeps its uploads'
            # slots for a lease: room for every client of an account, and then some.
            "proxied_uploads_per_user": 16,
            "reconcile_interval_seconds": t.reconcile_interval_seconds,
            "outbox_drain_interval_seconds": t.outbox_drain_interval_seconds,
            "sweep_interval_seconds": t.sweep_interval_seconds,
            "trash_retention_seconds": t.trash_retention_seconds,
            "purge_interval_seconds": t.purge_interval_seconds,
            "versions_kept": t.versions_kept,
        }
        return {f"FILESTORE_{name.upper()}": str(value) for name, value in values.items()}

    def service_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILESTORE_")}
        env["PYTHONPATH"] = str(self.source)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.settings())
        return env

    def with_s3_endpoint(self) -> None:
        """The S3 port is known once weed has started; the services learn it then."""
        for service in [*self.apis, *self.workers]:
            service.env["FILESTORE_S3_ENDPOINT_URL"] = self.s3_endpoint

    # -- lifecycle -------------------------------------------------------------------------

    async def _in_weed_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._weed_thread, call)

    def snapshot(self) -> None:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in SOURCES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, self.source / name, ignore=ignore)
            else:
                shutil.copy2(ROOT / name, self.source / name)

    async def migrate(self) -> None:
        """``alembic upgrade head`` with the copied migrations, as a child like the others."""
        await ensure_database(self.database_dsn)
        with (self.logs / "migrate.log").open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "alembic",
                "-c",
                str(self.source / "alembic.ini"),
                "upgrade",
                "head",
                cwd=self.run_dir,
                env=self.service_env(),
                stdout=output,
                stderr=output,
            )
            if await process.wait() != 0:
                raise RuntimeError(f"migrations failed:\n{_tail(self.logs / 'migrate.log')}")

    async def start(self) -> None:
        for directory in (self.logs, self.run_dir, self.workdir / "redis"):
            directory.mkdir(parents=True, exist_ok=True)
        self.snapshot()
        self.redis.spawn()
        weed = asyncio.ensure_future(self._in_weed_thread(self.seaweed.start))
        await asyncio.to_thread(self.postgres.init)
        await asyncio.to_thread(self.postgres.start)
        await self.migrate()
        await weed
        self.seaweed_wanted = True
        await self.wait_redis()
        self.with_s3_endpoint()
        for service in [*self.apis, *self.workers]:
            service.spawn()
        await asyncio.gather(*(self.wait_api(index) for index in range(API_COUNT)))

    async def stop(self) -> None:
        """Stop everything, whatever state it is in; never raises."""
        for service in [*self.workers, *self.apis]:
            with contextlib.suppress(Exception):
                await service.terminate()
        self.seaweed_wanted = False
        with contextlib.suppress(Exception):
            await self._in_weed_thread(self.seaweed.stop)
        self._weed_thread.shutdown(wait=True)
        with contextlib.suppress(Exception):
            await self.redis.terminate()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.postgres.stop)

    async def wait_api(self, index: int) -> None:
        service, url = self.apis[index], f"{self.api_urls[index]}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if not service.running:
                    raise RuntimeError(f"{service.name} exited:\n{_tail(service.log_path)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{service.name} did not answer:\n{_tail(service.log_path)}")

    async def wait_redis(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not await asyncio.to_thread(redis_answers, self.redis_port):
            if time.monotonic() > deadline or not self.redis.running:
                raise RuntimeError(f"redis did not start:\n{_tail(self.redis.log_path)}")
            await asyncio.sleep(0.05)

    # -- faults ----------------------------------------------------------------------------

    def kill_api(self, index: int) -> None:
        self.apis[index].kill()

    async def start_api(self, index: int) -> None:
        self.apis[index].spawn()
        await self.wait_api(index)

    def kill_worker(self, index: int) -> None:
        self.workers[index].kill()

    def start_worker(self, index: int) -> None:
        self.workers[index].spawn()

    async def stop_storage(self) -> None:
        self.seaweed_wanted = False
        await self._in_weed_thread(self.seaweed.stop)

    async def start_storage(self) -> None:
        await self._in_weed_thread(self.seaweed.resume)
        self.seaweed_wanted = True

    def kill_redis(self) -> None:
        self.redis.kill()

    async def start_redis(self) -> None:
        """A new, empty Redis on the same port (nothing was saved)."""
        self.redis.spawn()
        await self.wait_redis()

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.stop)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.start)

    async def stop_workers(self) -> None:
        await asyncio.gather(*(worker.terminate() for worker in self.workers))

    # -- supervision -----------------------------------------------------------------------

    async def supervise(self, stop: asyncio.Event) -> None:
        """Like a process manager: a service that dies unasked is recorded and started again."""
        while not stop.is_set():
            for service in [*self.apis, *self.workers, self.redis]:
                process = service.process
                if service.wanted and process is not None and process.poll() is not None:
                    self.exits.append(ProcessExit(service.name, self.clock(), process.returncode))
                    log.warning(
                        "%s exited by itself (%s); restarting", service.name, process.returncode
                    )
                    service.spawn()
            weed = self.seaweed.process
            if self.seaweed_wanted and weed is not None and weed.poll() is not None:
                self.exits.append(ProcessExit("seaweedfs", self.clock(), weed.returncode))
                self.seaweed_wanted = False
                with contextlib.suppress(Exception):
                    await self.start_storage()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    # -- diagnostics -----------------------------------------------------------------------

    def log_files(self) -> list[Path]:
        found = sorted(self.logs.glob("*.log")) if self.logs.exists() else []
        extra = [self.workdir / "pg" / "log", self.workdir / "seaweed" / "weed.log"]
        return found + [path for path in extra if path.exists()]

    def log_tails(self) -> str:
        """Per log: its distinct errors, then its last lines."""
        parts = []
        for path in self.log_files():
            parts.append(f"----- {path.name} ({path}) -----")
            digest = error_digest(path)
            if digest:
                parts.append(f"errors:\n{digest}\nlast lines:")
            parts.append(_tail(path))
        return "\n".join(parts)
