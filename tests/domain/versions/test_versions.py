"""Versions (DESIGN §14): an overwrite keeps what it replaced, up to the limit; listing,
downloading, restoring and deleting versions; the purge trimming to a lowered limit; usage and
quota at the edge. Every service is real."""

import os
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from infra.config import Settings
from tests.domain.folders.test_folders import content, copy, error
from tests.domain.trash.test_trash import delete, only_entry, restore, usage
from tests.domain.uploads.test_integrity import assert_consistent
from tests.helpers import (
    Account,
    Bucket,
    RunWorker,
    complete,
    listed,
    put,
    ticket_for,
    upload,
    worker_ctx,
)
from worker import tasks


async def versions(client: httpx.AsyncClient, account: Account, path: str) -> list[dict[str, Any]]:
    response = await client.get("/files/versions", params={"path": path}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["path"] == path
    found: list[dict[str, Any]] = response.json()["versions"]
    return found


async def version_content(
    client: httpx.AsyncClient, account: Account, path: str, version: str
) -> httpx.Response:
    return await client.get(
        "/files/download",
        params={"path": path, "version": version, "proxy": "true"},
        headers=account.headers,
    )


async def overwrite(client: httpx.AsyncClient, account: Account, path: str, *bodies: bytes) -> None:
    for body in bodies:
        assert (await upload(client, account, path, body)).status_code in {200, 201}


async def test_an_overwrite_keeps_the_replaced_content_as_a_version(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await overwrite(client, alice, "/a.txt", b"one", b"two!")
    listed = await versions(client, alice, "/a.txt")
    assert [(v["size"], v["current"]) for v in listed] == [(4, True), (3, False)]
    current, old = listed
    assert (await version_content(client, alice, "/a.txt", old["id"])).content == b"one"
    assert (await version_content(client, alice, "/a.txt", current["id"])).content == b"two!"
    redirect = await client.get(
        "/files/download", params={"path": "/a.txt", "version": old["id"]}, headers=alice.headers
    )
    assert redirect.status_code == 307
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(redirect.headers["location"])).content == b"one"
    assert (await usage(client, alice))["versions"] == 3
    assert (await usage(client, alice))["files"] == 4
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_direct_upload_overwrite_keeps_a_version_too(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await overwrite(client, alice, "/d.bin", b"proxied first")
    ticket = await ticket_for(client, alice, path="/d.bin", size=6)
    assert (await put(ticket, b"direct")).status_code == 200
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    assert [v["size"] for v in await versions(client, alice, "/d.bin")] == [6, 13]
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_versions_beyond_the_limit_go_and_their_objects_with_them(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings.retention, "versions_kept", 2)
    await overwrite(client, alice, "/a", b"1", b"22", b"333", b"4444", b"55555")
    assert [v["size"] for v in await versions(client, alice, "/a")] == [5, 4, 3]
    assert (await usage(client, alice))["versions"] == 7
    await run_worker()
    await assert_consistent(app, bucket, alice)  # the trimmed objects are gone from storage


async def test_restoring_a_version_makes_it_current_and_keeps_the_replaced_one(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await overwrite(client, alice, "/a", b"first", b"second!")
    file_id = (await versions(client, alice, "/a"))[0]["id"]
    old = (await versions(client, alice, "/a"))[1]
    before = await usage(client, alice)
    restored = await client.post(f"/files/versions/{old['id']}/restore", headers=alice.headers)
    assert restored.status_code == 200, restored.text
    assert (restored.json()["id"], restored.json()["size"]) == (file_id, 5)
    assert await content(client, alice, "/a") == b"first"
    listed = await versions(client, alice, "/a")
    assert [(v["size"], v["current"]) for v in listed] == [(5, True), (7, False)]
    after = await usage(client, alice)
    assert after["files"] + after["versions"] == before["files"] + before["versions"]
    assert error(
        await client.post(f"/files/versions/{old['id']}/restore", headers=alice.headers)
    ) == (404, "version_not_found")
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_deleting_a_version_frees_its_bytes(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await overwrite(client, alice, "/a", b"old bytes", b"new")
    old = (await versions(client, alice, "/a"))[1]
    assert (
        await client.delete(f"/files/versions/{old['id']}", headers=alice.headers)
    ).status_code == 204
    assert [v["current"] for v in await versions(client, alice, "/a")] == [True]
    assert (await usage(client, alice))["versions"] == 0
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_versions_are_private_and_checked(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await overwrite(client, alice, "/a", b"1", b"2")
    await overwrite(client, bob, "/b", b"1")
    old = (await versions(client, alice, "/a"))[1]["id"]
    assert error(await version_content(client, bob, "/b", old)) == (404, "version_not_found")
    assert error(await client.post(f"/files/versions/{old}/restore", headers=bob.headers)) == (
        404,
        "version_not_found",
    )
    assert error(await client.delete(f"/files/versions/{old}", headers=bob.headers)) == (
        404,
        "version_not_found",
    )
    other = (await versions(client, bob, "/b"))[0]["id"]
    assert error(await version_content(client, alice, "/a", other)) == (404, "version_not_found")
    missing = await client.get("/files/versions", params={"path": "/nope"}, headers=alice.headers)
    assert error(missing) == (404, "file_not_found")
    bad = await client.get(
        "/files/download", params={"path": "/a", "version": "x"}, headers=alice.headers
    )
    assert bad.status_code == 422


async def test_a_trashed_file_keeps_its_versions_and_a_purge_takes_them(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await overwrite(client, alice, "/a", b"v1", b"v2", b"v3")
    await delete(client, alice, "/a")
    assert (await usage(client, alice))["versions"] == 4
    entry = await only_entry(client, alice)
    assert (await restore(client, alice, entry["id"])).status_code == 200
    assert [v["size"] for v in await versions(client, alice, "/a")] == [2, 2, 2]
    await delete(client, alice, "/a")
    assert (await client.delete("/trash", headers=alice.headers)).json() == {"purged": 1}
    assert await usage(client, alice) == {
        **(await usage(client, alice)),
        "files": 0,
        "trash": 0,
        "versions": 0,
    }
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_the_purge_trims_versions_to_a_lowered_limit(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await overwrite(client, alice, "/a", b"1", b"22", b"333", b"4444")
    monkeypatch.setattr(settings.retention, "versions_kept", 1)
    assert (await tasks.purge(worker_ctx(app, settings)))["versions"] == 2
    assert [v["size"] for v in await versions(client, alice, "/a")] == [4, 3]
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_an_overwrite_at_the_quota_edge_counts_what_it_keeps(
    client: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Versions count: an overwrite that would keep more than the quota holds is refused and
    says what can be freed; at the version limit, the version it pushes out is freed, so the
    same overwrite fits."""
    monkeypatch.setattr(settings.uploads, "user_quota_bytes", 1000)
    await overwrite(client, alice, "/a", b"x" * 400, b"y" * 400)
    refused = await upload(client, alice, "/a", b"z" * 400)
    assert error(refused) == (413, "quota_exceeded")
    assert "400 bytes in old versions" in refused.json()["detail"]
    monkeypatch.setattr(settings.retention, "versions_kept", 1)
    assert (await upload(client, alice, "/a", b"z" * 200)).status_code == 200
    assert [v["size"] for v in await versions(client, alice, "/a")] == [200, 400]


async def reused(
    client: httpx.AsyncClient, alice: Account, path: str, first: bytes
) -> dict[str, Any]:
    """A direct upload of ``first`` to ``path``, confirmed: its URL can be used again."""
    ticket = await ticket_for(client, alice, path=path)
    assert (await put(ticket, first)).status_code == 200
    assert (await complete(client, alice, ticket["id"])).json()["status"] == "completed"
    return ticket


async def rewrite(
    app: FastAPI, run_worker: RunWorker, ticket: dict[str, Any], body: bytes, settings: Settings
) -> None:
    """``body`` PUT through the confirmed upload's URL again, and reconcile noticing it."""
    assert (await put(ticket, body)).status_code == 200
    assert (await tasks.reconcile_uploads(worker_ctx(app, settings)))["rechecked"] == 1
    await run_worker()


async def assert_no_stray_versions(app: FastAPI) -> None:
    """Every version belongs to a file that is live or in the trash."""
    async with app.state.sessionmaker() as session:
        stray = (
            await session.execute(
                text(
                    "SELECT count(*) FROM file_versions v WHERE NOT EXISTS"
                    " (SELECT 1 FROM files f WHERE f.id = v.file_id AND f.object_key IS NOT NULL)"
                    " AND NOT EXISTS (SELECT 1 FROM trashed_files t WHERE t.id = v.file_id)"
                )
            )
        ).scalar_one()
    assert stray == 0


async def test_a_reused_url_rewriting_a_kept_version_drops_it(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    """The URL of content kept as a version rewrites that object: the version's bytes are gone,
    so the version goes (it must not claim the old size and etag), and its bytes with it."""
    ticket = await reused(client, alice, "/r.bin", b"1")
    await overwrite(client, alice, "/r.bin", b"newer")
    assert [v["size"] for v in await versions(client, alice, "/r.bin")] == [5, 1]
    await rewrite(app, run_worker, ticket, b"rewritten bytes", app.state.settings)
    assert [v["size"] for v in await versions(client, alice, "/r.bin")] == [5]
    assert await content(client, alice, "/r.bin") == b"newer"
    assert (await usage(client, alice))["versions"] == 0
    await assert_consistent(app, bucket, alice)


async def test_a_reused_url_rewriting_a_trashed_file_drops_it(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    """The same for a file in the trash: it goes from its entry, with its versions."""
    await overwrite(client, alice, "/t.bin", b"before")
    ticket = await reused(client, alice, "/t.bin", b"1")
    await delete(client, alice, "/t.bin")
    await rewrite(app, run_worker, ticket, b"rewritten bytes", app.state.settings)
    assert (await client.get("/trash", headers=alice.headers)).json()["entries"] == []
    assert await usage(client, alice) == {**(await usage(client, alice)), "trash": 0, "versions": 0}
    await assert_no_stray_versions(app)
    await assert_consistent(app, bucket, alice)


async def test_a_reused_url_accepted_drops_the_versions_its_bytes_changed(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    """The file takes the new bytes (and its copy with it); a version of the copy that held the
    object's old bytes goes."""
    ticket = await reused(client, alice, "/r.bin", b"1")
    assert (await copy(client, alice, "/r.bin", "/c.bin")).status_code == 201
    assert (await copy(client, alice, "/r.bin", "/d.bin")).status_code == 201
    await overwrite(client, alice, "/c.bin", b"copy's own")
    await rewrite(app, run_worker, ticket, b"rewritten bytes", app.state.settings)
    assert await content(client, alice, "/r.bin") == b"rewritten bytes"
    assert await content(client, alice, "/d.bin") == b"rewritten bytes"
    assert [v["size"] for v in await versions(client, alice, "/c.bin")] == [10]
    assert (await usage(client, alice))["versions"] == 0
    await assert_consistent(app, bucket, alice)


async def test_a_reused_url_refused_takes_the_files_versions_and_the_copies_with_it(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
) -> None:
    """Bytes over the quota rewritten through a confirmed URL are refused: the file and its
    copies lose the content, their versions go with them, and so does a copy's version that
    held the object; nothing is left claiming the old size and etag."""
    await overwrite(client, alice, "/r.bin", b"older")
    ticket = await reused(client, alice, "/r.bin", b"1")
    assert (await copy(client, alice, "/r.bin", "/c.bin")).status_code == 201
    await overwrite(client, alice, "/c.bin", b"copy's own")
    limited = settings.with_changes(**{"user_quota_bytes": 1024 * 1024})
    await rewrite(app, run_worker, ticket, os.urandom(2 * 1024 * 1024), limited)
    assert [f["path"] for f in await listed(client, alice)] == ["/c.bin"]
    assert [v["size"] for v in await versions(client, alice, "/c.bin")] == [10]
    assert (await usage(client, alice))["versions"] == 0
    await assert_no_stray_versions(app)
    await assert_consistent(app, bucket, alice)
