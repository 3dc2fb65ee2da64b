"""The purge (a worker task): trash entries past their retention, versions beyond the limit, and
share links long dead.

Bounded per run (``FILESTORE_PURGE_BATCH_SIZE`` entries, as many files' versions, as many
shares), trash and versions in one transaction, shares in one of their own; rows another
transaction holds are skipped and left to the next run. The objects go through the outbox,
whose drain deletes each once nothing references it.
"""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from domain.shares.service import purge_dead
from domain.trash.service import purge_due
from domain.versions.service import trim_over_limit
from infra import metrics
from infra.config import Settings
from infra.db import Database

log = logging.getLogger(__name__)


async def purge(database: Database, settings: Settings) -> dict[str, int]:
    async def work(session: AsyncSession) -> dict[str, int]:
        entries = await purge_due(session, settings.retention.purge_batch_size)
        versions = await trim_over_limit(
            session, settings.retention.versions_kept, settings.retention.purge_batch_size
        )
        return {"trash_entries": entries, "versions": versions}

    counts = await database.transaction(work)
    counts["shares"] = await purge_dead(database, settings)
    metrics.purged(counts)
    if any(counts.values()):
        log.info("purge ran", extra=counts)
    return counts
