"""The object-deletion outbox: garbage recorded in the transaction that made it, drained later.

A transaction that unreferences an object (replaced, rejected, deleted, late, failed) inserts
its key here before it commits, with the storage-side multipart upload of that key if one may
be open (aborted first); the worker's drain deletes the objects and the rows. Nothing
that matters waits in Redis or in an after-commit callback, so a lost queue or a process killed
between commit and enqueue loses no deletion. The drain is the worker's task
``domain.objects.tasks.drain``.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningDelete

from domain.models import ObjectDeletion

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 300.0


class Outbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        object_key: str,
        reason: str,
        *,
        multipart_upload_id: str | None = None,
        delay_seconds: float = 0,
    ) -> None:
        """Record that ``object_key`` (and the storage multipart upload ``multipart_upload_id``
        of it, if any) must go once this transaction commits, ``delay_seconds`` later."""
        values: dict[str, object] = {
            "object_key": object_key,
            "reason": reason,
            "multipart_upload_id": multipart_upload_id,
        }
        if delay_seconds:
            values["not_before"] = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay_seconds)
        await self.session.execute(insert(ObjectDeletion).values(**values))
        log.info(
            "object deletion recorded",
            extra={
                "object_key": object_key,
                "reason": reason,
                "multipart": multipart_upload_id is not None,
            },
        )

    async def add_many(
        self,
        object_keys: Sequence[str],
        reason: str,
        multipart_upload_ids: Mapping[str, str] | None = None,
    ) -> None:
        """Several keys, each with its multipart upload id if ``multipart_upload_ids`` has one."""
        if object_keys:
            ids = multipart_upload_ids or {}
            rows = [
                {"object_key": key, "reason": reason, "multipart_upload_id": ids.get(key)}
                for key in object_keys
            ]
            await self.session.execute(insert(ObjectDeletion), rows)
            log.info("object deletions recorded", extra={"count": len(rows), "reason": reason})

    async def add_deleted(
        self, deleted: ReturningDelete[*tuple[Any, ...]], reason: str
    ) -> tuple[int, int]:
        """Run ``deleted`` (a DELETE returning ``object_key`` and ``size``) and record every key
        it returned, in one statement; how many rows it deleted with a key, and their bytes."""
        gone = deleted.cte("gone")
        queued = (
            insert(ObjectDeletion)
            .from_select(
                ["object_key", "reason"],
                select(gone.c.object_key, literal(reason)).where(gone.c.object_key.is_not(None)),
                include_defaults=False,
            )
            .cte("queued")
        )
        totals = select(
            func.count(gone.c.object_key), func.coalesce(func.sum(gone.c.size), 0)
        ).add_cte(queued)
        count, size = (await self.session.execute(totals)).one()
        if count:
            log.info("object deletions recorded", extra={"count": int(count), "reason": reason})
        return int(count), int(size)

    async def claim(self, limit: int) -> Sequence[ObjectDeletion]:
        """Due rows, locked for this transaction; rows another drain holds are skipped."""
        query = (
            select(ObjectDeletion)
            .where(ObjectDeletion.not_before <= func.now())
            .order_by(ObjectDeletion.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def remove(self, ids: Sequence[int]) -> None:
        if ids:
            await self.session.execute(delete(ObjectDeletion).where(ObjectDeletion.id.in_(ids)))

    async def defer(self, row: ObjectDeletion, error: BaseException) -> float:
        delay = min(2.0**row.attempts, MAX_RETRY_DELAY_SECONDS)
        await self.session.execute(
            update(ObjectDeletion)
            .where(ObjectDeletion.id == row.id)
            .values(
                attempts=ObjectDeletion.attempts + 1,
                last_error=repr(error)[:500],
                not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay),
            )
        )
        return delay
