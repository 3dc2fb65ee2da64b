"""Metadata at scale (issue 19): folder views, listing, search, moves and deletes, 10^4-10^6 files.

    python -m bench.metadata            # 10^4, 10^5 and 10^6 files, a few minutes
    python -m bench.metadata --quick    # 10^3 and 10^4 files, under a minute

Everything runs against a database of its own (``filestore_bench_metadata_<random>``, migrated,
dropped at the end) and an API the bench starts on it (``python -m api.serve``, two processes as
``make run`` starts it, on a free port). No storage is needed: these routes never touch it, so
the seeded files carry fake object keys. Per size, one account is seeded in bulk with SQL
(``INSERT ... SELECT generate_series``, never the API) in a tree of 1,000 folders, one very large
folder and two large ones, and names made of words (a rare word in 10 files, a common one in a
fifth of them); then ``VACUUM ANALYZE``. Every timed read is a cache miss: before each request the
bench bumps the user's ``generation`` (one untimed UPDATE), which every cache key embeds.
"""

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from bench.stack import ROOT
from domain.files.repository import FileRepository
from domain.folders.repository import FolderRepository
from domain.trash.service import Retention, remove_folder
from infra.config import FileSettings
from scripts.run import migrate

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RARE = "zanzibar"
# What the API's search walks in path order before it asks the trigram index (its default).
SCAN_ROWS = FileSettings.model_fields["search_scan_rows"].default
COMMON = "report"
# Never a substring of one another, nor of RARE or COMMON.
WORDS = ["invoice", "photo", "notes", "draft", "budget", "summary", "scan", "slides", "letter"]
TOP, SECOND, THIRD = 10, 9, 10  # 10 + 90 + 900 = 1,000 folders in the tree
ROOT_FILES = 50

SEED_FILES = """
INSERT INTO files (id, owner_id, path, name, object_key, size, etag, content_type,
                   created_at, modified_at)
SELECT gen_random_uuid(), $1::uuid, place.folder || named.name, named.name,
       'bench-metadata/' || $1::text || '/' || i, 1024 + (i::bigint * 7919) % 65536, md5(i::text),
       'application/pdf', now() - make_interval(secs => i), now() - make_interval(secs => i)
FROM generate_series(1, $2::int) AS i,
LATERAL (SELECT CASE
    WHEN i % ($2::int / 10) = 3 THEN $6::text
    WHEN i % 5 = 0 THEN $7::text
    ELSE ($8::text[])[1 + (i * 7) % array_length($8::text[], 1)]
  END || '-' || ($8::text[])[1 + (i * 13) % array_length($8::text[], 1)]
  || '-' || lpad(i::text, 7, '0') || '.pdf' AS name) AS named,
LATERAL (SELECT CASE
    WHEN i <= $3 THEN '/big/'
    WHEN i <= $3 + $4 THEN '/large-a/'
    WHEN i <= $3 + 2 * $4 THEN '/large-b/'
    WHEN i <= $3 + 2 * $4 + $5 THEN '/'
    ELSE '/d' || (i % 900) / 90 || '/s' || ((i % 900) / 10) % 9 || '/t' || i % 10 || '/'
  END AS folder) AS place
"""

SEED_FOLDERS = """
INSERT INTO folders (owner_id, path)
SELECT $1::uuid, '/d' || t || '/' FROM generate_series(0, 9) AS t
UNION ALL SELECT $1::uuid, '/d' || t || '/s' || s || '/'
  FROM generate_series(0, 9) AS t, generate_series(0, 8) AS s
UNION ALL SELECT $1::uuid, '/d' || t || '/s' || s || '/t' || u || '/'
  FROM generate_series(0, 9) AS t, generate_series(0, 8) AS s, generate_series(0, 9) AS u
UNION ALL SELECT $1::uuid, unnest(ARRAY['/big/', '/large-a/', '/large-b/'])
"""


@dataclass(frozen=True)
class Tree:
    files: int
    big: int
    large: int

    @property
    def late_word(self) -> str:
        """A term of about 1,000 names (numbers sharing their first digits) that sort late in
        path order, in ``/large-b/``: the walk in path order finds none of them early."""
        return "-" + f"{self.big + 2 * self.large:07d}"[:4]

    @staticmethod
    def of(files: int) -> "Tree":
        # One folder of 100,000 files from 10^6 on; half the files at 10^5; a tenth below.
        big = 100_000 if files >= 1_000_000 else files // 2 if files >= 100_000 else files // 10
        return Tree(files, big, files // 20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(_percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
    }


def _cursor(path: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": path}).encode()).decode()


class Api:
    """The API process the bench starts on its own database."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "FILESTORE_DATABASE_URL": database_url,
            "FILESTORE_RUN_HOST": "127.0.0.1",
            "FILESTORE_RUN_PORT": str(self.port),
            "FILESTORE_USER_QUOTA_BYTES": str(10**15),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the API exited at startup")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise SystemExit("the API did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


class Account:
    def __init__(self, client: httpx.AsyncClient, db: asyncpg.Connection, user_id: uuid.UUID):
        self.client = client
        self.db = db
        self.id = user_id

    @staticmethod
    async def register(api: str, db: asyncpg.Connection) -> "Account":
        credentials = {"login": f"meta_{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
        async with httpx.AsyncClient() as client:
            user = await client.post(f"{api}/user/register", json=credentials)
            user.raise_for_status()
            auth = await client.post(f"{api}/user/auth", json=credentials)
            auth.raise_for_status()
        headers = {"Authorization": f"Bearer {auth.json()['access_token']}"}
        client = httpx.AsyncClient(base_url=api, headers=headers, timeout=120)
        return Account(client, db, uuid.UUID(user.json()["id"]))

    async def cold(self) -> None:
        """Every cached value of this user is unreachable from now on (keys embed it)."""
        await self.db.execute("UPDATE users SET generation = generation + 1 WHERE id = $1", self.id)

    async def timed(self, method: str, url: str, **kwargs: Any) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = await self.client.request(method, url, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return elapsed, response

    async def cold_reads(self, url: str, params: list[dict[str, str]]) -> dict[str, float]:
        times = []
        for query in params:
            await self.cold()
            elapsed, _ = await self.timed("GET", url, params=query)
            times.append(elapsed)
        return _summary(times)


# A delete moves the folder to the trash (the default retention), as the API's does.
TRASH = Retention(trash_seconds=30 * 24 * 3600, versions_kept=10)


async def seed(db: asyncpg.Connection, owner: uuid.UUID, tree: Tree) -> dict[str, Any]:
    started = time.monotonic()
    async with db.transaction():
        await db.execute(SEED_FOLDERS, owner)
        await db.execute(
            SEED_FILES, owner, tree.files, tree.big, tree.large, ROOT_FILES, RARE, COMMON, WORDS
        )
        used = await db.fetchval("SELECT sum(size) FROM files WHERE owner_id = $1", owner)
        await db.execute(
            "UPDATE users SET generation = generation + 1, used_bytes = $2 WHERE id = $1",
            owner,
            used,
        )
    inserted = time.monotonic() - started
    await db.execute("VACUUM ANALYZE files")
    await db.execute("VACUUM ANALYZE folders")
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM files WHERE owner_id = $1) AS files,"
        " (SELECT count(*) FROM folders WHERE owner_id = $1) AS folders,"
        " (SELECT count(*) FROM files WHERE owner_id = $1 AND name ILIKE $2) AS rare,"
        " (SELECT count(*) FROM files WHERE owner_id = $1 AND name ILIKE $3) AS common",
        owner,
        f"%{RARE}%",
        f"%{COMMON}%",
    )
    assert counts is not None
    return {
        **dict(counts),
        "big_folder_files": tree.big,
        "insert_seconds": round(inserted, 1),
        "with_vacuum_seconds": round(time.monotonic() - started, 1),
    }


async def _check(owner: Account, tree: Tree) -> None:
    """The figures measure real answers: the views, the page and the searches hold what the
    seed put there."""

    async def get(url: str, **params: str) -> dict[str, Any]:
        return dict((await owner.timed("GET", url, params=params))[1].json())

    def shape(page: dict[str, Any]) -> tuple[int, int, bool]:
        return len(page.get("folders", [])), len(page["files"]), bool(page["next_cursor"])

    got = [
        shape(await get("/folders", path="/")),
        shape(await get("/folders", path="/big/")),
        shape(await get("/files", limit="100")),
        shape(await get("/files/search", q=RARE)),
        shape(await get("/files/search", q=COMMON)),
    ]
    wanted = [
        (TOP + 3, ROOT_FILES, False),
        (0, min(100, tree.big), tree.big > 100),
        (0, 100, True),
        (0, 10, False),
        (0, 100, True),
    ]
    if got != wanted:
        raise SystemExit(f"unexpected pages (folders, files, more): {got}, wanted {wanted}")


class _Recorder:
    """Stands in for a session: keeps the statements a repository method would execute. Given
    a connection, it also runs them (reads only) so that a method which chooses its next
    statement by an earlier answer (search) takes the branch the API takes."""

    def __init__(self, db: asyncpg.Connection | None = None) -> None:
        self.db = db
        self.statements: list[ClauseElement] = []
        self.rows: list[Any] = []

    async def execute(self, statement: ClauseElement, params: object = None) -> "_Recorder":
        self.statements.append(statement)
        self.rows = await self.db.fetch(_sql(statement)) if self.db is not None else []
        return self

    def scalars(self) -> "_Recorder":
        return self

    def all(self) -> list[object]:
        return list(self.rows)

    def scalar_one(self) -> int:
        return int(self.rows[0][0]) if self.rows else 0

    def scalar_one_or_none(self) -> None:
        return None

    def one(self) -> tuple[int, int]:
        return 0, 0


def _sql(statement: ClauseElement) -> str:
    dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def _statements(
    owner: uuid.UUID, call: Callable[[Any], Awaitable[object]], reads: asyncpg.Connection | None
) -> list[str]:
    """The SQL (binds inlined) of what ``call`` runs on a repository, exactly as the API does;
    ``reads`` runs them too (for read-only calls)."""
    recorder = _Recorder(reads)
    await call(recorder)
    return [_sql(statement) for statement in recorder.statements]


async def explain(
    db: asyncpg.Connection, owner: uuid.UUID, after: str, late_word: str
) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement behind the figures; writes rolled back."""

    def folders(session: Any) -> FolderRepository:
        return FolderRepository(cast(AsyncSession, session), owner)

    def files(session: Any) -> FileRepository:
        return FileRepository(cast(AsyncSession, session), owner)

    async def view(session: Any, path: str) -> None:
        if path != "/":
            await folders(session).find_listed(path)
        await folders(session).child_folders(path, None, 101)
        await folders(session).child_files(path, None, 101)

    calls: dict[str, Callable[[Any], Awaitable[object]]] = {
        "folder_root": lambda s: view(s, "/"),
        "folder_big": lambda s: view(s, "/big/"),
        "list_page": lambda s: files(s).page(None, after, 101),
        "search_rare": lambda s: files(s).search(RARE, None, None, 101, SCAN_ROWS),
        "search_common": lambda s: files(s).search(COMMON, None, None, 101, SCAN_ROWS),
        "search_late": lambda s: files(s).search(late_word, None, None, 101, SCAN_ROWS),
        "move": lambda s: folders(s).move("/big/", "/archive/big/"),
        "delete": lambda s: remove_folder(s, owner, "/big/", TRASH, "folder deleted"),
    }
    plans: dict[str, list[str]] = {}
    for name, call in calls.items():
        plans[name] = []
        # One transaction per call, rolled back: a later statement sees what an earlier wrote
        # (a trash entry before its files), as in the repository's own transaction.
        transaction = db.transaction()
        await transaction.start()
        try:
            reads = db if name.startswith("search") else None
            for sql in await _statements(owner, call, reads):
                rows = await db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plans[name].append("\n".join(row[0] for row in rows))
        finally:
            await transaction.rollback()
    return plans


async def _watch(other: Account, stop: asyncio.Event, times: list[float]) -> None:
    """The second user's cold folder views, back to back, until told to stop."""
    while not stop.is_set():
        await other.cold()
        elapsed, _ = await other.timed("GET", "/folders", params={"path": "/docs/"})
        times.append(elapsed)


async def _while_watched(
    other: Account, work: Coroutine[Any, Any, tuple[float, httpx.Response]]
) -> tuple[float, dict[str, float]]:
    """Time ``work`` (a coroutine of one request) while the other user views folders."""
    stop = asyncio.Event()
    times: list[float] = []
    watcher = asyncio.create_task(_watch(other, stop, times))
    await asyncio.sleep(0.2)
    before = len(times)
    elapsed, _ = await work
    during = times[before:] or times[-1:]
    stop.set()
    await watcher
    return elapsed, _summary(during)


async def measure_size(
    api: str, db: asyncpg.Connection, other: Account, files: int, requests: int
) -> dict[str, Any]:
    tree = Tree.of(files)
    owner = await Account.register(api, db)
    try:
        seeded = await seed(db, owner.id, tree)
        print(f"  seeded {seeded}", file=sys.stderr)
        rng = random.Random(files)
        paths = [
            row["path"]
            for row in await db.fetch(
                "SELECT path FROM files WHERE owner_id = $1 ORDER BY path", owner.id
            )
        ]
        sample = rng.sample(paths, requests + 1)
        cursors = [{"limit": "100", "cursor": _cursor(path)} for path in sample[1:]]
        del paths
        results: dict[str, Any] = {"seed": seeded}
        await _check(owner, tree)
        results["folder_root"] = await owner.cold_reads("/folders", [{"path": "/"}] * requests)
        results["folder_big"] = await owner.cold_reads("/folders", [{"path": "/big/"}] * requests)
        results["folder_leaf"] = await owner.cold_reads(
            "/folders", [{"path": "/d3/s4/t7/"}] * requests
        )
        results["list_page"] = await owner.cold_reads("/files", cursors)
        results["search_rare"] = await owner.cold_reads("/files/search", [{"q": RARE}] * requests)
        results["search_common"] = await owner.cold_reads(
            "/files/search", [{"q": COMMON}] * requests
        )
        results["search_late"] = await owner.cold_reads(
            "/files/search", [{"q": tree.late_word}] * requests
        )
        idle: list[float] = []
        for _ in range(requests):
            await other.cold()
            idle.append((await other.timed("GET", "/folders", params={"path": "/docs/"}))[0])
        results["other_user_idle"] = _summary(idle)
        results["explain"] = await explain(db, owner.id, sample[0], tree.late_word)
        for name, method, url, kwargs in [
            ("move", "POST", "/files/move", {"json": {"from": "/big/", "to": "/archive/"}}),
            ("move_back", "POST", "/files/move", {"json": {"from": "/archive/big/", "to": "/"}}),
            ("copy", "POST", "/files/copy", {"json": {"from": "/big/", "to": "/copy/"}}),
            ("delete_copy", "DELETE", "/files", {"params": {"path": "/copy/"}}),
        ]:
            elapsed, others = await _while_watched(other, owner.timed(method, url, **kwargs))
            results[name] = {"ms": round(elapsed, 1), "files": tree.big, "other_user": others}
            print(f"  {name}: {elapsed:.0f} ms, other user {others}", file=sys.stderr)
        return results
    finally:
        await owner.client.aclose()
        await db.execute("DELETE FROM users WHERE id = $1", owner.id)


async def seed_other(db: asyncpg.Connection, owner: uuid.UUID) -> None:
    await db.execute(
        "INSERT INTO folders (owner_id, path) VALUES ($1, '/docs/') ON CONFLICT DO NOTHING", owner
    )
    await db.execute(
        "INSERT INTO files (id, owner_id, path, name, object_key, size, etag, content_type)"
        " SELECT gen_random_uuid(), $1, '/docs/note-' || i || '.txt', 'note-' || i || '.txt',"
        " 'bench-metadata/other/' || i, 100, md5(i::text), 'text/plain'"
        " FROM generate_series(1, 100) AS i",
        owner,
    )


async def run(sizes: list[int], requests: int) -> dict[str, Any]:
    name = f"filestore_bench_metadata_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    database_url += f"/{name}"
    api_process: Api | None = None
    try:
        await asyncio.to_thread(migrate, database_url)
        api_process = Api(database_url)
        await asyncio.to_thread(api_process.wait)
        api = f"{api_process.base}/api/v1"
        db = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        other = await Account.register(api, db)
        await seed_other(db, other.id)
        results: dict[str, Any] = {
            "database": name,
            "requests_per_figure": requests,
            "machine": {
                "cores": os.cpu_count(),
                "kernel": platform.release(),
                "python": platform.python_version(),
                "postgres": await db.fetchval("SHOW server_version"),
            },
            "sizes": {},
        }
        for files in sizes:
            print(f"{files} files ...", file=sys.stderr)
            results["sizes"][str(files)] = await measure_size(api, db, other, files, requests)
        await other.client.aclose()
        await db.close()
        smallest, largest = (results["sizes"][str(size)] for size in (sizes[0], sizes[-1]))
        results["ratios"] = {
            figure: round(largest[figure]["p50_ms"] / smallest[figure]["p50_ms"], 2)
            for figure in ("folder_root", "folder_big", "folder_leaf", "list_page")
        }
        return results
    finally:
        if api_process is not None:
            api_process.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _table(results: dict[str, Any]) -> str:
    sizes = list(results["sizes"])
    lines = [
        "| figure | " + " | ".join(f"{int(s):,} files" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for figure in (
        "folder_root",
        "folder_big",
        "folder_leaf",
        "list_page",
        "search_rare",
        "search_common",
        "search_late",
        "other_user_idle",
    ):
        cells = [results["sizes"][s][figure] for s in sizes]
        lines.append(
            f"| {figure} | "
            + " | ".join(f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms" for c in cells)
            + " |"
        )
    for figure in ("move", "move_back", "copy", "delete_copy"):
        cells = [results["sizes"][s][figure] for s in sizes]
        lines.append(
            f"| {figure} | "
            + " | ".join(
                f"{c['files']:,} files: {c['ms']} ms; other user p50 "
                f"{c['other_user']['p50_ms']} ms, max {c['other_user']['max_ms']} ms "
                f"(n={c['other_user']['n']})"
                for c in cells
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--requests", type=int)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000])
    requests = args.requests or (20 if args.quick else 200)
    started = time.monotonic()
    results = asyncio.run(run(sizes, requests))
    results["duration_seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(results, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    print(_table(results))
    print("p50 ratios, largest over smallest:", results["ratios"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
