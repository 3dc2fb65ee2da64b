"""Database engine and sessions, and transactions retried while they fail transiently."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from infra.config import Settings
from infra.transient import is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_RETRY_DELAY_SECONDS = 0.05
MAX_RETRY_DELAY_SECONDS = 1.0


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database.url,
        pool_size=settings.database.pool_size,
        pool_pre_ping=settings.database.pool_pre_ping,
        pool_recycle=settings.database.pool_recycle_seconds,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """The one owner of transactions, for requests, the proxied upload's phases and jobs alike.

    ``transaction(work)`` commits what ``work`` did, running it again while it fails
    transiently; ``reading()`` opens a session that never commits. Everything else takes a
    session and only flushes: nothing below this class commits.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], retry_seconds: float):
        self.sessionmaker = sessionmaker
        self.retry_seconds = retry_seconds

    def reading(self) -> AsyncSession:
        """A session for reads: closing it rolls back whatever it did."""
        return self.sessionmaker()

    @contextlib.asynccontextmanager
    async def single_read(self) -> AsyncIterator[AsyncSession]:
        """A session for one read statement, run outside a transaction: no BEGIN and no
        ROLLBACK around it, two round trips fewer (a hot lookup that is one statement)."""
        async with self.sessionmaker() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session

    async def transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction and commit it, again and again while it fails
        transiently (a deadlock, a restarting database), for up to ``retry_seconds``; ``work``
        must be idempotent, since a commit whose answer was lost may have landed."""
        deadline = time.monotonic() + self.retry_seconds
        delay = FIRST_RETRY_DELAY_SECONDS
        while True:
            try:
                async with self.sessionmaker() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            except Exception as error:
                if not is_transient(error) or time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "transient failure; retrying the transaction", extra={"error": repr(error)}
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)


def open_database(settings: Settings) -> tuple[AsyncEngine, Database]:
    """The engine (the caller disposes of it) and the transaction owner over it."""
    engine = create_engine(settings)
    return engine, Database(
        create_sessionmaker(engine), settings.database.transaction_retry_seconds
    )
