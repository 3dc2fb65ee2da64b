"""Real services for every test: SeaweedFS on free ports, a fresh PostgreSQL database, a Redis db.

Each run creates its own database, Redis db number and bucket and removes them afterwards; each
test starts from empty tables and an empty Redis db. Endpoints other than loopback are refused.
"""

import asyncio
import contextlib
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from aiobotocore.session import get_session
from alembic import command
from alembic.config import Config as AlembicConfig
from arq.worker import Worker
from fastapi import FastAPI
from redis.asyncio import Redis

from api.main import create_app
from infra.config import Settings
from infra.storage.adapter import Storage
from scripts.seaweed import SeaweedServer
from tests.helpers import ROOT, Account, Bucket, OwnRedis, RunWorker, make_account
from worker.context import open_context
from worker.main import worker_options
from worker.tasks import drain_outbox

ADMIN_DSN = os.environ.get(
    "FILESTORE_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_BASE = os.environ.get("FILESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CLAIM_SECONDS = 3600


def create_redis_url(url: str) -> Redis:
    redis: Redis = Redis.from_url(url)
    return redis


def _refuse_remote(*urls: str) -> None:
    for url in urls:
        host = urlsplit(url).hostname
        if host not in LOCAL_HOSTS:
            raise RuntimeError(f"tests only run against local services, not {host}")


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Iterator[SeaweedServer]:
    server = SeaweedServer(
        workdir=tmp_path_factory.mktemp("seaweed"),
        access_key=f"test-{run_id}",
        secret_key=secrets.token_hex(16),
        bucket=f"test-{run_id}",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def database_url(run_id: str) -> AsyncIterator[str]:
    _refuse_remote(ADMIN_DSN)
    name = f"filestore_test_{run_id}"
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(command.upgrade, config, "head")
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


TEST_REDIS_DBS = range(8, 16)
CLAIM_KEY = "filestore:test-run-claim"


@pytest.fixture(scope="session")
async def redis_url(run_id: str) -> AsyncIterator[str]:
    """A Redis db number claimed for this run, so two runs on one machine never share one."""
    _refuse_remote(REDIS_BASE)
    for db in random.sample(TEST_REDIS_DBS, len(TEST_REDIS_DBS)):
        url = f"{REDIS_BASE}/{db}"
        async with create_redis_url(url) as redis:
            if await redis.set(CLAIM_KEY, run_id, nx=True, ex=CLAIM_SECONDS):
                await redis.flushdb()
                await redis.set(CLAIM_KEY, run_id, ex=CLAIM_SECONDS)
                break
    else:
        raise RuntimeError("every test Redis db (8-15) is claimed by another run")
    yield url
    async with create_redis_url(url) as redis:
        await redis.flushdb()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, seaweed: SeaweedServer) -> Settings:
    _refuse_remote(seaweed.endpoint_url)
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        s3_endpoint_url=seaweed.endpoint_url,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        s3_bucket=seaweed.bucket,
        jwt_secret=secrets.token_hex(32),
        webhook_token=secrets.token_hex(16),
        max_upload_bytes=64 * 1024 * 1024,
        user_quota_bytes=256 * 1024 * 1024,
        # Tests race up to 8 proxied uploads of one user (the limit has its own tests).
        proxied_uploads_per_user=16,
        log_level="WARNING",
    )


@pytest.fixture
def final_deletes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deletes and overwrites final (``FILESTORE_TRASH_RETENTION_SECONDS=0``,
    ``FILESTORE_VERSIONS_KEPT=0``), for the API and the worker alike: for tests of what becomes
    of an object once nothing keeps it."""
    monkeypatch.setattr(settings.retention, "trash_retention_seconds", 0)
    monkeypatch.setattr(settings.retention, "versions_kept", 0)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await application.state.storage.ensure_bucket()
        yield application


@pytest.fixture(autouse=True)
async def _clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that touches the services starts with empty tables and an empty Redis db."""
    yield
    if "app" not in request.fixturenames:
        return
    application: FastAPI = request.getfixturevalue("app")
    async with application.state.engine.begin() as connection:
        await connection.exec_driver_sql("TRUNCATE users, files, uploads, object_deletions CASCADE")
    redis = application.state.redis
    claim = await redis.get(CLAIM_KEY)
    await redis.flushdb()
    await redis.set(CLAIM_KEY, claim or b"", ex=CLAIM_SECONDS)


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    """A Redis of this test's own on a spare port (see ``OwnRedis``)."""
    server = OwnRedis(str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
        yield http


@pytest.fixture(scope="session")
async def bucket(settings: Settings) -> AsyncIterator[Bucket]:
    """The tests' own S3 client on the test bucket."""
    client = get_session().create_client(
        "s3",
        endpoint_url=settings.storage.endpoint_url,
        region_name=settings.storage.region,
        aws_access_key_id=settings.storage.access_key,
        aws_secret_access_key=settings.storage.secret_key.get_secret_value(),
    )
    async with client as s3:
        # SeaweedFS runs with -s3.autoCreateBucket=false: a test that needs the bucket before
        # any app (which ensures it) has started finds it here.
        with contextlib.suppress(
            s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists
        ):
            await s3.create_bucket(Bucket=settings.storage.bucket)
        yield Bucket(s3, settings.storage.bucket)


@pytest.fixture
def storage(app: FastAPI) -> Storage:
    result: Storage = app.state.storage
    return result


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await make_account(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await make_account(client)


@pytest.fixture
async def run_worker(app: FastAPI, settings: Settings) -> RunWorker:
    """Runs a real arq worker in burst mode over whatever is queued (jobs run for real), then
    drains the outbox as the worker's periodic job would."""

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            ctx = await open_context(settings, stack)
            worker = Worker(
                functions=worker_options(settings)["functions"],
                redis_pool=ctx["redis"],
                burst=True,
                poll_delay=0,
                ctx=ctx,
                handle_signals=False,
                max_tries=3,
                keep_result=worker_options(settings)["keep_result"],
            )
            try:
                await worker.main()
            finally:
                await worker.close()
            await drain_outbox(ctx)

    return run
