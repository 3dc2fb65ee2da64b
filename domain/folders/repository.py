"""Queries on one owner's folders and on the files below a folder (a subtree).

A subtree is a byte range of paths (``domain.files.paths.subtree``), so every statement here is a
range of a ``(owner_id, path)`` index, and a move, copy or delete of a folder is one statement
per table whatever its size. Callers hold the owner's path lock (``FileRepository.lock_paths``).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.files.paths import subtree
from domain.files.repository import CONTENTLESS
from domain.models import File, Folder

Column = ColumnElement[str] | InstrumentedAttribute[str]


@dataclass(frozen=True, slots=True)
class Subtree:
    """What a statement did to a subtree's files: how many (with content) and their bytes."""

    files: int
    bytes: int


def below(path_column: Column, folder: str) -> ColumnElement[bool]:
    low, high = subtree(folder)
    return (path_column >= low) & (path_column < high)


def rebased(path_column: Column, old: str, new: str) -> ColumnElement[str]:
    """``path_column`` with its prefix ``old`` replaced by ``new``."""
    return literal(new, Text) + func.substr(path_column, len(old) + 1)


def _listed(folder: type[Folder]) -> ColumnElement[bool]:
    """A folder row is listed when explicit or when something below it is: a file with content
    or an explicit folder (implicit rows left by uploads that never completed are not)."""
    high = func.left(folder.path, -1) + "0"
    content = (
        select(File.id)
        .where(
            File.owner_id == folder.owner_id,
            File.path >= folder.path,
            File.path < high,
            File.object_key.is_not(None),
        )
        .exists()
    )
    inner = Folder.__table__.alias("inner_folder")
    explicit_below = (
        select(inner.c.id)
        .where(
            inner.c.owner_id == folder.owner_id,
            inner.c.path > folder.path,
            inner.c.path < high,
            inner.c.explicit,
        )
        .exists()
    )
    return folder.explicit | content | explicit_below


class FolderRepository:
    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    async def ensure(self, paths: Sequence[str]) -> None:
        """Make the (implicit) folders ``paths`` exist and mark them modified now."""
        if not paths:
            return
        rows = (
            func.unnest(bindparam("paths", list(paths), type_=ARRAY(Text)))
            .table_valued("path")
            .render_derived(name="wanted")
        )
        statement = upsert(Folder).from_select(
            ["owner_id", "path"],
            select(literal(self.owner_id), rows.c.path),
            include_defaults=False,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Folder.owner_id, Folder.path], set_={"modified_at": func.now()}
        )
        await self.session.execute(statement)

    async def make_explicit(self, path: str) -> Folder:
        statement = (
            upsert(Folder)
            .values(owner_id=self.owner_id, path=path, explicit=True)
            .on_conflict_do_update(
                index_elements=[Folder.owner_id, Folder.path], set_={"explicit": True}
            )
            .returning(Folder)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def find_listed(self, path: str) -> Folder | None:
        query = select(Folder).where(
            Folder.owner_id == self.owner_id, Folder.path == path, _listed(Folder)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def holds_anything(self, folder: str) -> bool:
        """Whether any file row (with content or an upload pending) or folder lies below."""
        files = select(File.id).where(File.owner_id == self.owner_id, below(File.path, folder))
        folders = select(Folder.id).where(
            Folder.owner_id == self.owner_id, below(Folder.path, folder)
        )
        row = (await self.session.execute(select(files.exists(), folders.exists()))).one()
        return bool(row[0] or row[1])

    async def child_folders(self, parent: str, after: str | None, limit: int) -> Sequence[Folder]:
        query = select(Folder).where(
            Folder.owner_id == self.owner_id, Folder.parent == parent, _listed(Folder)
        )
        if after is not None:
            query = query.where(Folder.name > after)
        query = query.order_by(Folder.name).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def child_files(self, parent: str, after: str | None, limit: int) -> Sequence[File]:
        name = File.name.collate("C")
        query = select(File).where(
            File.owner_id == self.owner_id, File.parent == parent, File.object_key.is_not(None)
        )
        if after is not None:
            query = query.where(name > after)
        query = query.order_by(name).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def prune(self, paths: Sequence[str]) -> None:
        """Remove those of the implicit folders ``paths`` that nothing lies below any more."""
        if not paths:
            return
        high = func.left(Folder.path, -1) + "0"
        file_below = (
            select(File.id)
            .where(File.owner_id == Folder.owner_id, File.path >= Folder.path, File.path < high)
            .exists()
        )
        inner = Folder.__table__.alias("inner_folder")
        explicit_below = (
            select(inner.c.id)
            .where(
                inner.c.owner_id == Folder.owner_id,
                inner.c.path > Folder.path,
                inner.c.path < high,
                inner.c.explicit,
            )
            .exists()
        )
        await self.session.execute(
            delete(Folder).where(
                Folder.owner_id == self.owner_id,
                Folder.path.in_(paths),
                ~Folder.explicit,
                ~file_below,
                ~explicit_below,
            )
        )

    async def clear(self, folder: str) -> None:
        """Drop what is left below ``folder`` once nothing there is live or explicit: file rows
        that hold nothing and wait for nothing, and the implicit folders they left."""
        await self.session.execute(
            delete(File).where(
                File.owner_id == self.owner_id, below(File.path, folder), CONTENTLESS
            )
        )
        await self.session.execute(
            delete(Folder).where(Folder.owner_id == self.owner_id, below(Folder.path, folder))
        )

    async def move(self, old: str, new: str) -> int:
        """Rebase every file row and folder below ``old`` onto ``new``; the listed files moved.
        File rows without content move too: their pending uploads follow them."""
        moved = (
            update(File)
            .where(File.owner_id == self.owner_id, below(File.path, old))
            .values(path=rebased(File.path, old, new))
            .returning(File.object_key)
            .cte("moved")
        )
        count = select(func.count(moved.c.object_key))
        files = int((await self.session.execute(count)).scalar_one())
        await self.session.execute(
            update(Folder)
            .where(Folder.owner_id == self.owner_id, below(Folder.path, old))
            .values(path=rebased(Folder.path, old, new), modified_at=func.now())
            .execution_options(synchronize_session=False)
        )
        return files

    async def copy(self, old: str, new: str) -> Subtree:
        """Copy the files with content and the folders below ``old`` to ``new``: new rows, the
        same objects (immutable, shared), locked against a concurrent delete while copied."""
        source = (
            select(File)
            .where(
                File.owner_id == self.owner_id,
                below(File.path, old),
                File.object_key.is_not(None),
            )
            .with_for_update(read=True)
            .subquery()
        )
        columns = ["owner_id", "path", "name", "object_key", "size", "etag"]
        columns += ["content_type", "sha256", "modified_at"]
        copied = (
            insert(File)
            .from_select(
                ["id", *columns],
                select(
                    func.gen_random_uuid(),
                    source.c.owner_id,
                    rebased(source.c.path, old, new),
                    *(source.c[name] for name in columns[2:]),
                ),
                include_defaults=False,
            )
            .returning(File.size)
            .cte("copied")
        )
        totals = select(func.count(), func.coalesce(func.sum(copied.c.size), 0))
        files, size = (await self.session.execute(totals)).one()
        folders = (
            select(Folder)
            .where(Folder.owner_id == self.owner_id, below(Folder.path, old))
            .subquery()
        )
        await self.session.execute(
            insert(Folder).from_select(
                ["owner_id", "path", "explicit"],
                select(folders.c.owner_id, rebased(folders.c.path, old, new), folders.c.explicit),
                include_defaults=False,
            )
        )
        return Subtree(int(files), int(size))

    async def drop(self, folder: str) -> None:
        """Remove the folder rows of ``folder`` and below (its files are the caller's)."""
        await self.session.execute(
            delete(Folder).where(Folder.owner_id == self.owner_id, below(Folder.path, folder))
        )
