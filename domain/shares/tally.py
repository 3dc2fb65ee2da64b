"""Downloads of shares without a limit, added up in memory and written in batches.

A share with ``max_downloads`` has its count checked and bumped in one statement on every
click, so concurrent downloads never pass the limit; that statement holds the share's row until
it commits, and every other download of the link waits for it. A share without a limit only
reports the number, so each API process adds its clicks up here and writes them every
``share_count_flush_seconds`` in one transaction; ``GET /shares`` adds what this process has
not written yet. A process that dies loses at most that interval's counts, never a limit.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator

from domain.shares import repository
from infra.db import Database

log = logging.getLogger(__name__)


class DownloadTally:
    def __init__(self) -> None:
        self._pending: Counter[uuid.UUID] = Counter()

    def add(self, share_id: uuid.UUID) -> int:
        """Count one download; how many this process has not written yet for the share."""
        self._pending[share_id] += 1
        return self._pending[share_id]

    def pending(self, share_id: uuid.UUID) -> int:
        return self._pending.get(share_id, 0)

    async def flush(self, database: Database) -> None:
        """Write what was counted; on failure keep it for the next flush."""
        if not self._pending:
            return
        batch, self._pending = self._pending, Counter()
        try:
            await database.transaction(lambda session: repository.add_downloads(session, batch))
        except Exception as error:
            self._pending.update(batch)
            log.warning(
                "share download counts not written; kept for the next flush",
                extra={"shares": len(batch), "error": repr(error)},
            )

    async def _run(self, database: Database, interval_seconds: float) -> None:
        try:
            while True:
                await asyncio.sleep(interval_seconds)
                await self.flush(database)
        finally:
            await self.flush(database)


@contextlib.asynccontextmanager
async def running_tally(
    database: Database, interval_seconds: float
) -> AsyncIterator[DownloadTally]:
    """A tally flushed every ``interval_seconds`` while the block runs, and once at its end."""
    tally = DownloadTally()
    flushing = asyncio.create_task(tally._run(database, interval_seconds))
    try:
        yield tally
    finally:
        flushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flushing
