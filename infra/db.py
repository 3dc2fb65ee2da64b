"""Database engine and sessions, and transactions retried while they fail transiently."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
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
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=settings.database_pool_pre_ping,
        pool_recycle=settings.database_pool_recycle_seconds,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def run_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    retry_seconds: float,
) -> T:
    """Run ``work`` in a transaction and commit it, again and again while it fails transiently
    (a deadlock, a restarting database), for up to ``retry_seconds``; ``work`` must be
    idempotent, since a commit whose answer was lost may have landed."""
    deadline = time.monotonic() + retry_seconds
    delay = FIRST_RETRY_DELAY_SECONDS
    while True:
        try:
            async with sessionmaker() as session:
                result = await work(session)
                await session.commit()
                return result
        except Exception as error:
            if not is_transient(error) or time.monotonic() + delay > deadline:
                raise
            log.warning("transient failure; retrying the transaction", extra={"error": repr(error)})
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
