"""Listing: a user with many files, seeded straight into PostgreSQL (one INSERT ... SELECT)."""

import asyncio
import base64
import json
import random
import uuid
from pathlib import Path

import asyncpg

SEED_SQL = """
INSERT INTO files (id, owner_id, path, name, object_key, size, etag, content_type,
                   created_at, modified_at)
SELECT gen_random_uuid(), $1::uuid, '/bulk/' || lpad(i::text, 7, '0') || '.bin',
       lpad(i::text, 7, '0') || '.bin', 'bench-seed/' || $1::text || '/' || i, 1024,
       md5(i::text), 'application/octet-stream', now(), now()
FROM generate_series(1, $2) AS i
"""


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(database_url: str, owner_id: uuid.UUID, count: int) -> list[str]:
    """Insert ``count`` files for the owner; returns their paths in listing order."""
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(SEED_SQL, owner_id, count)
            await connection.execute(
                "UPDATE users SET generation = generation + 1, used_bytes = used_bytes + $2 "
                "WHERE id = $1",
                owner_id,
                count * 1024,
            )
        rows = await connection.fetch(
            "SELECT path FROM files WHERE owner_id = $1 AND path LIKE '/bulk/%' ORDER BY path",
            owner_id,
        )
        await connection.execute("ANALYZE files")
    finally:
        await connection.close()
    return [row["path"] for row in rows]


async def remove_user(database_url: str, owner_id: uuid.UUID) -> None:
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        await connection.execute("DELETE FROM users WHERE id = $1", owner_id)
    finally:
        await connection.close()


def write_cursors(paths: list[str], destination: Path, count: int) -> Path:
    """Cursors after randomly chosen files, each once: every page asked is a cache miss."""
    chosen = random.Random(7).sample(paths[:-100], min(count, len(paths) - 100))
    lines = [
        base64.urlsafe_b64encode(json.dumps({"after": path}).encode()).decode() for path in chosen
    ]
    destination.write_text("\n".join(lines) + "\n")
    return destination


def seed_sync(database_url: str, owner_id: uuid.UUID, count: int) -> list[str]:
    return asyncio.run(seed(database_url, owner_id, count))
