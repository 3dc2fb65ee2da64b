"""The trash (DESIGN §14): every row of the contract with its errors, isolation between users,
honest usage, the purge, and the races the README decides (a restore whose path a newer file
took, a folder restored under a moved parent, a purge racing a restore, quota at the edge).
Every service is real."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from domain.models import TrashEntry
from infra.config import Settings
from tests.domain.folders.test_folders import content, error, move, names, stored
from tests.domain.uploads.test_integrity import assert_consistent
from tests.helpers import Account, Bucket, RunWorker, listed, upload, worker_ctx
from worker import tasks


async def trash(client: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await client.get("/trash", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def delete(client: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    return await client.delete("/files", params={"path": path}, headers=account.headers)


async def restore(
    client: httpx.AsyncClient, account: Account, entry_id: str, to: str | None = None
) -> httpx.Response:
    url = f"/trash/{entry_id}/restore"
    if to is None:  # no body at all: the entry goes back where it was
        return await client.post(url, headers=account.headers)
    return await client.post(url, json={"to": to}, headers=account.headers)


async def usage(client: httpx.AsyncClient, account: Account) -> dict[str, int]:
    response = await client.get("/user/me", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, int] = response.json()["usage"]
    return found


async def only_entry(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    [entry] = (await trash(client, account))["entries"]
    found: dict[str, Any] = entry
    return found


async def test_a_deleted_file_waits_in_the_trash_and_comes_back_as_it_was(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
) -> None:
    created = (await upload(client, alice, "/docs/a.txt", b"hello")).json()
    assert (await delete(client, alice, "/docs/a.txt")).status_code == 204
    assert await listed(client, alice) == []
    assert (await client.get("/folders", headers=alice.headers)).json()["folders"] == []
    entry = await only_entry(client, alice)
    assert (entry["path"], entry["kind"], entry["files"], entry["size"]) == (
        "/docs/a.txt",
        "file",
        1,
        5,
    )
    deleted = datetime.fromisoformat(entry["deleted_at"])
    purge_at = datetime.fromisoformat(entry["purge_at"])
    assert purge_at - deleted == timedelta(seconds=settings.retention.trash_retention_seconds)
    assert await usage(client, alice) == {
        "files": 0,
        "versions": 0,
        "trash": 5,
        "quota": settings.uploads.user_quota_bytes,
    }
    await run_worker()  # nothing is deleted from storage while in the trash
    await assert_consistent(app, bucket, alice)

    restored = await restore(client, alice, entry["id"])
    assert restored.status_code == 200, restored.text
    assert restored.json() == {"path": "/docs/a.txt", "files": 1}
    [back] = await listed(client, alice)
    assert {k: back[k] for k in ("id", "created_ad", "size", "etag")} == {
        k: created[k] for k in ("id", "created_ad", "size", "etag")
    }
    assert await content(client, alice, "/docs/a.txt") == b"hello"
    assert await names(client, alice) == ["docs/"]
    assert (await trash(client, alice))["entries"] == []
    assert (await usage(client, alice))["trash"] == 0
    assert (await usage(client, alice))["files"] == 5
    await assert_consistent(app, bucket, alice)


async def test_a_deleted_folder_is_one_entry_with_its_files_and_empty_folders(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/p/1.txt", "/p/q/2.txt", "/p/q/r/3.txt", "/keep.txt")
    assert (
        await client.post("/folders", json={"path": "/p/empty/"}, headers=alice.headers)
    ).status_code == 201
    ids = {file["path"]: file["id"] for file in await listed(client, alice)}
    deleted = await delete(client, alice, "/p/")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": 3}
    assert await names(client, alice) == ["keep.txt"]
    entry = await only_entry(client, alice)
    assert (entry["path"], entry["kind"], entry["files"]) == ("/p/", "folder", 3)
    assert entry["size"] == len("/p/1.txt/p/q/2.txt/p/q/r/3.txt")

    assert (await restore(client, alice, entry["id"])).json() == {"path": "/p/", "files": 3}
    assert await names(client, alice, "/p/") == ["empty/", "q/", "1.txt"]
    assert await names(client, alice, "/p/q/") == ["r/", "2.txt"]
    assert {file["path"]: file["id"] for file in await listed(client, alice)} == ids
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_restore_whose_path_a_newer_file_took_is_409_until_given_another_place(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/a.txt")
    await delete(client, alice, "/a.txt")
    await upload(client, alice, "/a.txt", b"newer")
    entry = await only_entry(client, alice)
    assert error(await restore(client, alice, entry["id"])) == (409, "path_taken")
    assert (await only_entry(client, alice))["id"] == entry["id"]  # nothing moved
    assert (await restore(client, alice, entry["id"], "/old/")).json() == {
        "path": "/old/a.txt",
        "files": 1,
    }
    assert await content(client, alice, "/old/a.txt") == b"/a.txt"
    assert await content(client, alice, "/a.txt") == b"newer"
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_folder_restored_under_a_moved_parent_recreates_the_parent(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/p/q/1.txt", "/p/other.txt")
    await delete(client, alice, "/p/q/")
    assert (await move(client, alice, "/p/", "/moved/")).status_code == 200
    entry = await only_entry(client, alice)
    assert (await restore(client, alice, entry["id"])).status_code == 200
    assert await names(client, alice) == ["moved/", "p/"]
    assert await names(client, alice, "/p/") == ["q/"]
    assert await content(client, alice, "/p/q/1.txt") == b"/p/q/1.txt"

    await delete(client, alice, "/p/q/")
    await upload(client, alice, "/p", b"a file where the parent was")
    entry = await only_entry(client, alice)
    assert error(await restore(client, alice, entry["id"])) == (409, "path_taken")
    assert (await restore(client, alice, entry["id"], "/moved/")).json()["path"] == "/moved/q/"
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_purging_an_entry_frees_its_bytes_and_keeps_objects_a_copy_holds(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/a.txt", "/b.txt")
    copied = await client.post(
        "/files/copy", json={"from": "/a.txt", "to": "/c.txt"}, headers=alice.headers
    )
    assert copied.status_code == 201
    await delete(client, alice, "/a.txt")
    await delete(client, alice, "/b.txt")
    entries = (await trash(client, alice))["entries"]
    assert [entry["path"] for entry in entries] == ["/b.txt", "/a.txt"]  # newest first
    purged = await client.delete(f"/trash/{entries[1]['id']}", headers=alice.headers)
    assert purged.json() == {"purged": 1}
    assert error(await client.delete(f"/trash/{entries[1]['id']}", headers=alice.headers)) == (
        404,
        "trash_not_found",
    )
    await run_worker()
    assert await content(client, alice, "/c.txt") == b"/a.txt"  # the copy's object stays
    await assert_consistent(app, bucket, alice)
    assert (await client.delete("/trash", headers=alice.headers)).json() == {"purged": 1}
    await run_worker()
    assert (await trash(client, alice))["entries"] == []
    assert await usage(client, alice) == {**(await usage(client, alice)), "trash": 0}
    await assert_consistent(app, bucket, alice)


async def test_trash_is_paged_and_private(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await stored(client, alice, "/1", "/2", "/3")
    for path in ("/1", "/2", "/3"):
        await delete(client, alice, path)
    first = await trash(client, alice, limit=2)
    second = await trash(client, alice, limit=2, cursor=first["next_cursor"])
    paths = [entry["path"] for entry in first["entries"] + second["entries"]]
    assert paths == ["/3", "/2", "/1"]
    assert second["next_cursor"] is None
    entry_id = first["entries"][0]["id"]
    assert (await trash(client, bob))["entries"] == []
    assert error(await restore(client, bob, entry_id)) == (404, "trash_not_found")
    assert error(await client.delete(f"/trash/{entry_id}", headers=bob.headers)) == (
        404,
        "trash_not_found",
    )
    assert (await client.delete("/trash", headers=bob.headers)).json() == {"purged": 0}
    assert len((await trash(client, alice))["entries"]) == 3
    assert error(await client.get("/trash", params={"cursor": "bm9wZQ=="}, headers=alice.headers))[
        0
    ] in {400, 422}
    assert (await client.get("/trash")).status_code == 401


async def _expire(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(TrashEntry).values(purge_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


async def test_the_worker_purges_what_retention_ended_a_batch_per_run(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await stored(client, alice, "/a", "/b", "/kept")
    await delete(client, alice, "/a")
    await delete(client, alice, "/b")
    ctx = worker_ctx(app, settings)
    assert (await tasks.purge(ctx))["trash_entries"] == 0  # not due yet
    await _expire(app)
    await delete(client, alice, "/kept")  # deleted now: not due
    monkeypatch.setattr(settings.retention, "purge_batch_size", 1)
    assert (await tasks.purge(ctx))["trash_entries"] == 1
    assert (await tasks.purge(ctx))["trash_entries"] == 1
    assert (await tasks.purge(ctx))["trash_entries"] == 0
    assert [entry["path"] for entry in (await trash(client, alice))["entries"]] == ["/kept"]
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_purge_racing_a_restore_leaves_one_winner(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
) -> None:
    ctx = worker_ctx(app, settings)
    outcomes = set()
    for round_ in range(6):
        await stored(client, alice, f"/r{round_}/x.txt")
        await delete(client, alice, f"/r{round_}/")
        entry = await only_entry(client, alice)
        await _expire(app)
        restored, purged = await asyncio.gather(
            restore(client, alice, entry["id"]), tasks.purge(ctx)
        )
        if restored.status_code == 200:
            assert await content(client, alice, f"/r{round_}/x.txt") == f"/r{round_}/x.txt".encode()
            outcomes.add("restored")
        else:
            assert error(restored) == (404, "trash_not_found")
            assert purged["trash_entries"] == 1
            outcomes.add("purged")
        assert (await trash(client, alice))["entries"] == []
        await run_worker()
        await assert_consistent(app, bucket, alice)
    assert outcomes  # which wins is the race's; either leaves record and storage agreeing


async def test_the_trash_counts_against_the_quota_and_the_error_says_what_to_free(
    client: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings.uploads, "user_quota_bytes", 1000)
    assert (await upload(client, alice, "/big", b"x" * 800)).status_code == 201
    await delete(client, alice, "/big")
    refused = await upload(client, alice, "/next", b"y" * 300)
    assert error(refused) == (413, "quota_exceeded")
    assert "800 bytes in the trash" in refused.json()["detail"]
    entry = await only_entry(client, alice)
    assert (await restore(client, alice, entry["id"])).status_code == 200  # needs no quota
    await delete(client, alice, "/big")
    assert (await client.delete("/trash", headers=alice.headers)).json() == {"purged": 1}
    assert (await upload(client, alice, "/next", b"y" * 300)).status_code == 201


async def test_deletes_restores_and_purges_racing_stay_consistent(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    settings: Settings,
    run_worker: RunWorker,
) -> None:
    await stored(client, alice, "/t/a", "/t/b", "/t/c/d")
    ctx = worker_ctx(app, settings)

    async def churn(number: int) -> list[int]:
        codes = []
        for step in range(6):
            target = ["/t/a", "/t/", "/t/c/", "/t/b"][(number + step) % 4]
            codes.append((await delete(client, alice, target)).status_code)
            entries = (await trash(client, alice))["entries"]
            if entries:
                chosen = entries[(number + step) % len(entries)]
                if step % 3 == 2:
                    await _expire(app)
                    await tasks.purge(ctx)
                else:
                    codes.append((await restore(client, alice, chosen["id"])).status_code)
            codes.append((await upload(client, alice, target.rstrip("/") + "x", b"n")).status_code)
        return codes

    results = await asyncio.gather(*(churn(n) for n in range(4)))
    assert {code for codes in results for code in codes} <= {200, 201, 204, 404, 409}
    await run_worker()
    await assert_consistent(app, bucket, alice)
