"""PostgreSQL stops and comes back: the API answers 503 meanwhile and recovers by itself.

The database is a PostgreSQL instance of this test's own on a spare port (initdb as the
postgres user), never the machine's shared server.
"""

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig

from api.main import create_app
from infra.config import Settings
from scripts.postgres import PG_BIN, OwnPostgres
from scripts.seaweed import free_port
from tests.helpers import ROOT, make_account


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not PG_BIN or not shutil.which("runuser"):
        pytest.fail("PostgreSQL server binaries are needed for the outage test")
    directory = Path(f"/tmp/filestore-pg-{free_port()}")
    server = OwnPostgres(directory, free_port())
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def outage_client(
    own_postgres: OwnPostgres, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{own_postgres.port}/postgres"
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    app = create_app(settings.with_changes(**{"database_url": url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            yield http


async def test_database_restart_is_survived(
    outage_client: httpx.AsyncClient, own_postgres: OwnPostgres
) -> None:
    account = await make_account(outage_client)
    assert (await outage_client.get("/files", headers=account.headers)).status_code == 200
    own_postgres.stop()
    down = await outage_client.get("/files", headers=account.headers)
    assert down.status_code == 503
    assert down.json()["error"] == "database_unavailable"
    own_postgres.start()
    deadline = time.monotonic() + 10
    statuses = []
    while True:
        response = await outage_client.get("/files", headers=account.headers)
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, statuses
        await asyncio.sleep(0.1)
    assert len(statuses) <= 3, statuses  # a broken pooled connection fails at most briefly
