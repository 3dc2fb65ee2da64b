"""The invariants, checked once the load has stopped and maintenance ran to completion.

The database is read directly (asyncpg) and the bucket listed with our own S3 client; what the
clients saw is compared with what the API serves now (``candidates``).
"""

import asyncio
import contextlib
import hashlib
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from soak.candidates import judge
from soak.faults import windows
from soak.load import Account
from soak.model import Answer, Fault, Op, Violation
from soak.stack import BUCKET, KEY_PREFIX, Stack

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

READ_ATTEMPTS = 5
READ_TIMEOUT = httpx.Timeout(60.0, connect=3.0)
# A 503 this far from every fault window is not explained by any fault.
FAR_FROM_FAULT_SECONDS = 30.0
# The clients' folder trees (``soak.load.tree_prefix``).
TREE_PATH = re.compile(r"^/t\d+/")


@contextlib.asynccontextmanager
async def open_bucket(stack: Stack) -> AsyncIterator[S3Client]:
    client = get_session().create_client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=stack.access_key,
        aws_secret_access_key=stack.secret_key,
    )
    async with client as s3:
        yield s3


def _violations(*found: Violation | None) -> list[Violation]:
    return [violation for violation in found if violation is not None]


async def check_state(
    stack: Stack, quota: int, purged_at: datetime | None = None
) -> tuple[list[Violation], dict[str, Any]]:
    """Database and bucket agree, and nothing is left over. ``purged_at``: when the final purge
    started (every trash entry due then must be gone)."""
    timings = stack.timings
    connection = await asyncpg.connect(stack.database_dsn)
    try:
        files = await connection.fetch(
            "SELECT f.id::text AS id, u.login, f.path, f.object_key, f.size, f.etag"
            " FROM files f JOIN users u ON u.id = f.owner_id ORDER BY u.login, f.path"
        )
        pending = await connection.fetch(
            "SELECT id::text AS id, object_key FROM uploads WHERE status = 'pending'"
        )
        statuses = await connection.fetch(
            "SELECT status::text AS status, count(*) AS n FROM uploads GROUP BY status"
        )
        stale = await connection.fetch(
            "SELECT id::text AS id, object_key, expires_at::text AS expires_at, now()::text AS now"
            " FROM uploads WHERE status = 'pending'"
            " AND expires_at + make_interval(secs => $1) < now() ORDER BY expires_at",
            float(timings.upload_grace_seconds),
        )
        contentless = await connection.fetch(
            "SELECT f.id::text AS id, u.login, f.path"
            " FROM files f JOIN users u ON u.id = f.owner_id WHERE f.object_key IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM uploads p"
            " WHERE p.file_id = f.id AND p.status = 'pending')"
        )
        versions = await connection.fetch(
            "SELECT v.id::text AS id, u.login, v.file_id::text AS file_id, v.object_key, v.size,"
            " v.etag FROM file_versions v JOIN users u ON u.id = v.owner_id ORDER BY v.id"
        )
        trashed = await connection.fetch(
            "SELECT t.id::text AS id, u.login, t.path, t.object_key, t.size, t.etag"
            " FROM trashed_files t JOIN users u ON u.id = t.owner_id ORDER BY t.id"
        )
        usage = await connection.fetch(
            "SELECT u.login, u.used_bytes, u.version_bytes, u.trash_bytes,"
            " (SELECT COALESCE(SUM(f.size), 0) FROM files f"
            "  WHERE f.owner_id = u.id AND f.object_key IS NOT NULL)::bigint AS files,"
            " (SELECT COALESCE(SUM(v.size), 0) FROM file_versions v"
            "  WHERE v.owner_id = u.id)::bigint AS versions,"
            " (SELECT COALESCE(SUM(t.size), 0) FROM trashed_files t"
            "  WHERE t.owner_id = u.id)::bigint AS trash"
            " FROM users u ORDER BY u.login"
        )
        too_many_versions = await connection.fetch(
            "SELECT v.file_id::text AS file_id, count(*) AS versions FROM file_versions v"
            " GROUP BY v.file_id HAVING count(*) > $1",
            timings.versions_kept,
        )
        stray_versions = await connection.fetch(
            "SELECT v.id::text AS id, v.file_id::text AS file_id, v.object_key FROM file_versions v"
            " WHERE NOT EXISTS (SELECT 1 FROM files f"
            "  WHERE f.id = v.file_id AND f.object_key IS NOT NULL)"
            " AND NOT EXISTS (SELECT 1 FROM trashed_files t WHERE t.id = v.file_id)"
        )
        entry_totals = await connection.fetch(
            "SELECT e.id::text AS id, e.path, e.files, e.size,"
            " count(t.id) AS counted_files, COALESCE(SUM(t.size), 0)::bigint AS counted_size"
            " FROM trash_entries e LEFT JOIN trashed_files t ON t.entry_id = e.id"
            " GROUP BY e.id HAVING e.files <> count(t.id) OR e.size <> COALESCE(SUM(t.size), 0)"
        )
        entries = await connection.fetch(
            "SELECT e.id::text AS id, e.path, e.purge_at, e.deleted_at FROM trash_entries e"
        )
        reservations = await connection.fetch(
            "SELECT u.login, u.reserved_bytes, u.open_uploads,"
            " COALESCE(SUM(p.reserved_bytes), 0)::bigint AS pending_bytes,"
            " COUNT(p.id) AS pending_count"
            " FROM users u LEFT JOIN uploads p ON p.owner_id = u.id AND p.status = 'pending'"
            " GROUP BY u.id, u.login ORDER BY u.login"
        )
        outbox_missing = None
        outbox: list[asyncpg.Record] = []
        try:
            outbox = await connection.fetch(
                "SELECT id, object_key, reason, attempts, last_error::text AS last_error"
                " FROM object_deletions ORDER BY id"
            )
        except asyncpg.UndefinedTableError:
            outbox_missing = Violation("outbox table object_deletions missing", 1, [])
    finally:
        await connection.close()

    kept = [("version", row) for row in versions] + [("trashed file", row) for row in trashed]
    async with open_bucket(stack) as s3:
        objects: dict[str, dict[str, Any]] = {}
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=BUCKET, Prefix=f"{KEY_PREFIX}/"):
            for item in page.get("Contents", []):
                objects[item["Key"]] = {"size": item["Size"], "modified": item["LastModified"]}
        multipart: list[dict[str, Any]] = []
        uploads_pages = s3.get_paginator("list_multipart_uploads")
        async for mpage in uploads_pages.paginate(Bucket=BUCKET, Prefix=f"{KEY_PREFIX}/"):
            multipart += [
                {"key": item.get("Key"), "initiated": str(item.get("Initiated"))}
                for item in mpage.get("Uploads", [])
            ]
        heads = await asyncio.gather(
            *(_head(s3, row["object_key"]) for row in files if row["object_key"])
        )
        kept_heads = await asyncio.gather(*(_head(s3, row["object_key"]) for _, row in kept))

    missing, diverged, no_metadata = [], [], []
    kept_missing: list[dict[str, Any]] = []
    kept_diverged: list[dict[str, Any]] = []
    for (held_by, row), head in zip(kept, kept_heads, strict=True):
        where = {"held_by": held_by, "id": row["id"], "login": row["login"]}
        where["object_key"] = row["object_key"]
        if head is None:
            kept_missing.append(where)
        elif (head["size"], head["etag"]) != (row["size"], row["etag"]):
            record, stored = [row["size"], row["etag"]], [head["size"], head["etag"]]
            kept_diverged.append({**where, "record": record, "object": stored})
    for row, head in zip((r for r in files if r["object_key"]), heads, strict=True):
        where = {"login": row["login"], "path": row["path"], "object_key": row["object_key"]}
        if row["size"] is None or row["etag"] is None:
            no_metadata.append({**where, "size": row["size"], "etag": row["etag"]})
        if head is None:
            missing.append(where)
        elif (head["size"], head["etag"]) != (row["size"], row["etag"]):
            record, stored = [row["size"], row["etag"]], [head["size"], head["etag"]]
            diverged.append({**where, "record": record, "object": stored})
    referenced = {row["object_key"] for row in files if row["object_key"]}
    referenced |= {row["object_key"] for row in pending}
    referenced |= {row["object_key"] for row in [*versions, *trashed]}
    old = datetime.now(UTC) - timedelta(seconds=timings.sweep_grace_seconds)
    orphans = [
        {"object_key": key, "size": info["size"], "last_modified": str(info["modified"])}
        for key, info in sorted(objects.items())
        if key not in referenced and info["modified"] < old
    ]
    wrong_usage = [
        {
            "login": r["login"],
            "used_bytes": r["used_bytes"],
            "version_bytes": r["version_bytes"],
            "trash_bytes": r["trash_bytes"],
            "files": r["files"],
            "versions": r["versions"],
            "trash": r["trash"],
        }
        for r in usage
        if (r["used_bytes"], r["version_bytes"], r["trash_bytes"])
        != (r["files"] + r["versions"] + r["trash"], r["versions"], r["trash"])
    ]
    overdue = [
        {"id": r["id"], "path": r["path"], "purge_at": str(r["purge_at"])}
        for r in entries
        if purged_at is not None and r["purge_at"] <= purged_at
    ]
    wrong_reservations = [
        dict(r)
        for r in reservations
        if (r["reserved_bytes"], r["open_uploads"]) != (r["pending_bytes"], r["pending_count"])
    ]
    over_quota = [
        {"login": r["login"], "kept": r["files"] + r["versions"] + r["trash"], "quota": quota}
        for r in usage
        if r["files"] + r["versions"] + r["trash"] > quota
    ]
    violations = _violations(
        Violation.of("file object missing in storage", missing),
        Violation.of("file record and object diverge (size, etag)", diverged),
        Violation.of("file with content but no size or etag", no_metadata),
        Violation.of("orphan object older than the sweep grace", orphans),
        Violation.of("version or trashed file object missing in storage", kept_missing),
        Violation.of("version or trashed file record and object diverge", kept_diverged),
        Violation.of(
            "used_bytes differs from files + versions + trash (or its parts from theirs)",
            wrong_usage,
        ),
        Violation.of(
            f"a file with more than {timings.versions_kept} versions after the purge",
            [dict(r) for r in too_many_versions],
        ),
        Violation.of("version of no live or trashed file", [dict(r) for r in stray_versions]),
        Violation.of(
            "trash entry's files or size differ from its trashed files'",
            [dict(r) for r in entry_totals],
        ),
        Violation.of("trash entry past its retention after the final purge", overdue),
        Violation.of("user over quota", over_quota),
        Violation.of(
            "reserved_bytes or open_uploads differ from the pending uploads'", wrong_reservations
        ),
        Violation.of(
            "upload pending past expires_at + grace",
            [dict(r) for r in stale],
        ),
        Violation.of("content-less file row with nothing pending", [dict(r) for r in contentless]),
        Violation.of("storage-side multipart upload left", multipart),
        outbox_missing,
        Violation.of("outbox not empty after the final drain", [dict(r) for r in outbox]),
    )
    facts = {
        "files": len(files),
        "files_with_content": sum(1 for row in files if row["object_key"]),
        "objects": len(objects),
        "uploads_by_status": {r["status"]: r["n"] for r in statuses},
        "used_bytes": {r["login"]: r["used_bytes"] for r in usage},
        "versions": len(versions),
        "trash_entries": len(entries),
        "trashed_files": len(trashed),
        "version_bytes": sum(r["versions"] for r in usage),
        "trash_bytes": sum(r["trash"] for r in usage),
    }
    return violations, facts


async def _head(s3: S3Client, key: str) -> dict[str, Any] | None:
    try:
        response = await s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    return {"size": response["ContentLength"], "etag": response["ETag"].strip('"')}


async def _get(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | None:
    """A read that retries what a settled service should not say (503, no answer)."""
    for attempt in range(READ_ATTEMPTS):
        try:
            response = await http.get(url, **kwargs)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code != 503:
            return response
        await asyncio.sleep(0.5 * 2**attempt)
    return response


async def check_client_view(
    api_url: str, accounts: list[Account], ops: list[Op], database_dsn: str
) -> tuple[list[Violation], dict[str, Any]]:
    """What the API serves now against what the clients saw (and against the database)."""
    by_path: defaultdict[tuple[str, str], list[Op]] = defaultdict(list)
    # Content in a folder tree moves and is copied: there it must be something the user wrote.
    sent: defaultdict[str, set[str]] = defaultdict(set)
    for op in ops:
        if op.path is not None and (op.is_write or op.is_delete):
            by_path[(op.login, op.path)].append(op)
        if op.sha256 is not None:
            sent[op.login].add(op.sha256)
    problems: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    judged = 0
    connection = await asyncpg.connect(database_dsn)
    try:
        rows = await connection.fetch(
            "SELECT u.login, f.path FROM files f JOIN users u ON u.id = f.owner_id"
            " WHERE f.object_key IS NOT NULL"
        )
    finally:
        await connection.close()
    in_database = {(row["login"], row["path"]) for row in rows}
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", timeout=READ_TIMEOUT) as http:
        for account in accounts:
            listed: dict[str, dict[str, Any]] = {}
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = await _get(http, "/files", params=params, headers=account.headers)
                if page is None or page.status_code != 200:
                    problems["final listing failed"].append(
                        {"login": account.login, "status": page and page.status_code}
                    )
                    break
                body = page.json()
                listed.update({entry["path"]: entry for entry in body["files"]})
                cursor = body.get("next_cursor")
                if not cursor:
                    break
            touched = {path for login, path in by_path if login == account.login}
            for path in sorted(touched | set(listed)):
                key = (account.login, path)
                response = await _get(
                    http,
                    "/files/download",
                    params={"path": path, "proxy": "true"},
                    headers=account.headers,
                )
                if response is None or response.status_code not in {200, 404}:
                    problems["final download failed"].append(
                        {
                            "login": account.login,
                            "path": path,
                            "status": response and response.status_code,
                        }
                    )
                    continue
                final = None
                if response.status_code == 200:
                    final = hashlib.sha256(response.content).hexdigest()
                entry = listed.get(path)
                where = {"login": account.login, "path": path}
                if (entry is not None) != (final is not None):
                    problems["listing and download disagree"].append(
                        {**where, "listed": entry is not None, "downloaded": final is not None}
                    )
                elif entry is not None and entry.get("size") != len(response.content):
                    problems["listed size differs from the content"].append(
                        {**where, "listed": entry.get("size"), "downloaded": len(response.content)}
                    )
                if (key in in_database) != (final is not None):
                    problems["API and database disagree"].append(
                        {**where, "in_database": key in in_database, "served": final is not None}
                    )
                if TREE_PATH.match(path):
                    if final is not None and final not in sent[account.login]:
                        problems["moved or copied content never written by the user"].append(
                            {**where, "final_sha256": final}
                        )
                    judged += 1
                    continue
                verdict = judge(by_path.get(key, []), final)
                judged += 1
                if verdict.problem is not None:
                    problems[verdict.problem].append({**where, **verdict.detail})
    violations = [Violation(name, len(items), items[:5]) for name, items in problems.items()]
    return violations, {"paths_judged": judged}


def check_answers(
    server_errors: list[Answer], faults: list[Fault], settle: float
) -> tuple[list[Violation], dict[str, Any]]:
    """5xx answers of the API: 503 is expected during a dependency outage (and ``settle``
    seconds after); anything else is a violation, and so is a 503 far from every fault."""
    spans = windows(faults, settle)
    everything = [(f.start, f.end if f.end is not None else f.start) for f in faults]

    def overlaps(answer: Answer, ranges: list[tuple[float, float]], margin: float) -> bool:
        return any(
            answer.start <= end + margin and answer.end >= start - margin for start, end in ranges
        )

    api = [answer for answer in server_errors if answer.target == "api"]
    unexpected = [a for a in api if a.status != 503]
    unavailable = [a for a in api if a.status == 503]
    inside = [a for a in unavailable if overlaps(a, spans, 0.0)]
    outside = [a for a in unavailable if not overlaps(a, spans, 0.0)]
    far = [a for a in outside if not overlaps(a, everything, FAR_FROM_FAULT_SECONDS)]

    def show(answer: Answer) -> dict[str, Any]:
        return {
            "route": answer.route,
            "status": answer.status,
            "api": answer.server,
            "at": answer.start,
            "body": answer.body,
        }

    violations = _violations(
        Violation.of("unexpected 5xx (not 503)", map(show, unexpected), limit=20),
        Violation.of("503 far from any fault", map(show, far)),
    )
    storage = [a for a in server_errors if a.target == "storage"]
    facts = {
        "503_in_fault_windows": len(inside),
        "503_outside_fault_windows": len(outside),
        "503_outside_examples": [show(a) for a in outside[:5]],
        "unexpected_5xx": [show(a) for a in unexpected],
        "storage_5xx": len(storage),
    }
    return violations, facts
