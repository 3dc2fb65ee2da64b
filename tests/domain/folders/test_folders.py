"""Folders (DESIGN §13): every row of the contract with its errors, isolation between users,
shared objects, and concurrent moves, uploads and deletes leaving record and storage
consistent. Every service is real."""

import asyncio
import os
import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from domain.files.repository import FileRepository
from domain.models import File, User
from infra.config import Settings
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


async def view(
    client: httpx.AsyncClient, account: Account, path: str = "/", **params: Any
) -> httpx.Response:
    return await client.get("/folders", params={"path": path, **params}, headers=account.headers)


async def names(client: httpx.AsyncClient, account: Account, path: str = "/") -> list[str]:
    """A folder's children as names, folders with a trailing '/'."""
    response = await view(client, account, path)
    assert response.status_code == 200, response.text
    body = response.json()
    return [f"{folder['name']}/" for folder in body["folders"]] + [
        file["name"] for file in body["files"]
    ]


async def move(
    client: httpx.AsyncClient, account: Account, source: str, to: str, **extra: Any
) -> httpx.Response:
    body = {"from": source, "to": to, **extra}
    return await client.post("/files/move", json=body, headers=account.headers)


async def copy(
    client: httpx.AsyncClient, account: Account, source: str, to: str, **extra: Any
) -> httpx.Response:
    body = {"from": source, "to": to, **extra}
    return await client.post("/files/copy", json=body, headers=account.headers)


async def stored(client: httpx.AsyncClient, account: Account, *paths: str) -> None:
    for path in paths:
        response = await upload(client, account, path, path.encode())
        assert response.status_code == 201, response.text


async def content(client: httpx.AsyncClient, account: Account, path: str) -> bytes:
    response = await client.get(
        "/files/download", params={"path": path, "proxy": "true"}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.content


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


async def test_a_folder_view_holds_its_direct_children_only(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/b.txt", "/a/x.txt", "/a/deep/er/y.txt", "/c/z.txt", "/A.txt")
    assert await names(client, alice) == ["a/", "c/", "A.txt", "b.txt"]
    assert await names(client, alice, "/a/") == ["deep/", "x.txt"]
    assert await names(client, alice, "/a") == ["deep/", "x.txt"]
    body = (await view(client, alice, "/a/deep/")).json()
    assert body["path"] == "/a/deep/"
    assert body["account"] == alice.login
    assert [(f["name"], f["path"]) for f in body["folders"]] == [("er", "/a/deep/er/")]
    assert body["files"] == []
    assert error(await view(client, alice, "/nope/")) == (404, "folder_not_found")
    assert error(await view(client, alice, "/b.txt/")) == (404, "folder_not_found")
    assert error(await view(client, alice, "relative")) == (400, "invalid_path")
    # The seed's listing keeps its shape and meaning: every file, recursively.
    assert len(await listed(client, alice)) == 5


async def test_a_folder_view_pages_through_folders_then_files(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/f1/a", "/f2/a", "/f3/a", "/g1", "/g2", "/g3")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await view(client, alice, "/", **params)).json()
        seen += [f["path"] for f in body["folders"]] + [f["path"] for f in body["files"]]
        assert len(body["folders"]) + len(body["files"]) <= 2
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["/f1/", "/f2/", "/f3/", "/g1", "/g2", "/g3"]
    assert error(await view(client, alice, "/", cursor="bm90LWpzb24")) == (400, "invalid_cursor")
    assert error(await view(client, alice, "/", limit=0))[0] == 422


async def test_new_folders_are_listed_while_empty(
    client: httpx.AsyncClient, alice: Account
) -> None:
    made = await client.post("/folders", json={"path": "/work/empty/"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    assert made.json()["path"] == "/work/empty/"
    assert made.json()["name"] == "empty"
    again = await client.post("/folders", json={"path": "/work/empty/"}, headers=alice.headers)
    assert again.status_code == 200
    assert await names(client, alice) == ["work/"]
    assert await names(client, alice, "/work/") == ["empty/"]
    await stored(client, alice, "/f.txt")
    taken = await client.post("/folders", json={"path": "/f.txt/"}, headers=alice.headers)
    assert error(taken) == (409, "path_taken")
    below = await client.post("/folders", json={"path": "/f.txt/sub/"}, headers=alice.headers)
    assert error(below) == (409, "path_taken")
    no_slash = await client.post("/folders", json={"path": "/x"}, headers=alice.headers)
    assert error(no_slash) == (400, "invalid_path")
    # A path naming the (empty) folder is that folder: the file goes inside it.
    response = await upload(client, alice, "/work/empty", b"in", filename="in.txt")
    assert response.json()["path"] == "/work/empty/in.txt"
    # Deleting the file leaves the explicit folder, not the implicit ones of deleted files.
    await stored(client, alice, "/gone/only.txt")
    await client.delete("/files", params={"path": "/work/empty/in.txt"}, headers=alice.headers)
    await client.delete("/files", params={"path": "/gone/only.txt"}, headers=alice.headers)
    assert await names(client, alice) == ["work/", "f.txt"]
    assert await names(client, alice, "/work/") == ["empty/"]


async def test_a_file_moves_and_keeps_its_id_dates_and_content(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a/one.txt", "/b/keep.txt")
    before = {f["path"]: f for f in await listed(client, alice)}["/a/one.txt"]
    renamed = await move(client, alice, "/a/one.txt", "/a/two.txt")
    assert renamed.status_code == 200, renamed.text
    moved = renamed.json()
    assert (moved["id"], moved["created_ad"], moved["name"]) == (
        before["id"],
        before["created_ad"],
        "two.txt",
    )
    # Into a folder path (trailing '/') or a path naming a folder: the name is kept.
    assert (await move(client, alice, before["id"], "/b/")).json()["path"] == "/b/two.txt"
    assert (await move(client, alice, "/b/two.txt", "/new")).json()["path"] == "/new"
    assert (await move(client, alice, "/new", "/b")).json()["path"] == "/b/new"
    assert await content(client, alice, "/b/new") == b"/a/one.txt"
    assert await names(client, alice) == ["b/"]  # "/a/" held nothing more
    missing = await client.get(
        "/files/download", params={"path": "/a/one.txt"}, headers=alice.headers
    )
    assert missing.status_code == 404


async def test_a_move_that_would_overwrite_moves_nothing_unless_asked(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/x.txt", "/y.txt", "/dir/z.txt")
    assert error(await move(client, alice, "/x.txt", "/y.txt")) == (409, "path_taken")
    assert error(await move(client, alice, "/x.txt", "/y.txt/inner")) == (409, "path_taken")
    assert error(await move(client, alice, "/x.txt", "/dir/z.txt/")) == (409, "path_taken")
    assert error(await move(client, alice, "/nope.txt", "/q")) == (404, "file_not_found")
    assert error(await move(client, alice, "/nope/", "/q")) == (404, "folder_not_found")
    assert error(await move(client, alice, "/x.txt", "rel")) == (400, "invalid_path")
    bad = await client.post("/files/move", json={"from": "/x.txt"}, headers=alice.headers)
    assert bad.status_code == 422
    assert sorted(f["path"] for f in await listed(client, alice)) == [
        "/dir/z.txt",
        "/x.txt",
        "/y.txt",
    ]
    replaced = await move(client, alice, "/x.txt", "/y.txt", overwrite=True)
    assert replaced.status_code == 200, replaced.text
    assert await content(client, alice, "/y.txt") == b"/x.txt"
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_folder_moves_whole_in_one_step(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/p/a.txt", "/p/q/b.txt", "/p/q/r/c.txt", "/other/o.txt")
    await client.post("/folders", json={"path": "/p/empty/"}, headers=alice.headers)
    ids = {f["path"]: f["id"] for f in await listed(client, alice)}
    moved = await move(client, alice, "/p/", "/other/")
    assert moved.json() == {"moved": 3, "path": "/other/p/"}
    after = {f["path"]: f["id"] for f in await listed(client, alice)}
    assert after == {
        path.replace("/p/", "/other/p/", 1) if path.startswith("/p/") else path: i
        for path, i in ids.items()
    }
    assert await names(client, alice, "/other/p/") == ["empty/", "q/", "a.txt"]
    renamed = await move(client, alice, "/other/p/", "/renamed")
    assert renamed.json() == {"moved": 3, "path": "/renamed/"}
    assert await names(client, alice) == ["other/", "renamed/"]
    assert error(await move(client, alice, "/renamed/", "/renamed/q/")) == (400, "invalid_move")
    assert error(await move(client, alice, "/renamed/", "/other/o.txt")) == (409, "path_taken")
    await stored(client, alice, "/x/renamed/clash.txt")
    assert error(await move(client, alice, "/renamed/", "/x/")) == (409, "path_taken")
    assert error(await move(client, alice, "/", "/x/")) == (400, "invalid_path")
    assert await content(client, alice, "/renamed/q/r/c.txt") == b"/p/q/r/c.txt"
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_pending_upload_follows_its_moved_file(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/inbox/here.txt")
    ticket = await ticket_for(client, alice, path="/inbox/late.bin", size=5)
    assert error(await move(client, alice, "/inbox/late.bin", "/x")) == (404, "file_not_found")
    moved = await move(client, alice, "/inbox/", "/archive/")
    assert moved.json() == {"moved": 1, "path": "/archive/inbox/"}
    assert (await put(ticket, b"hello")).status_code == 200
    assert (await complete(client, alice, ticket["id"])).json()["status"] == "completed"
    assert sorted(f["path"] for f in await listed(client, alice)) == [
        "/archive/inbox/here.txt",
        "/archive/inbox/late.bin",
    ]
    await run_worker()
    await assert_consistent(app, bucket, alice)


@pytest.mark.usefixtures("final_deletes")
async def test_a_copy_shares_the_object_until_its_last_reference_goes(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/orig.txt")
    copied = await copy(client, alice, "/orig.txt", "/copies/")
    assert copied.status_code == 201, copied.text
    assert copied.json()["path"] == "/copies/orig.txt"
    original = {f["path"]: f for f in await listed(client, alice)}["/orig.txt"]
    assert copied.json()["id"] != original["id"]
    async with app.state.sessionmaker() as session:
        keys = (await session.execute(select(File.object_key))).scalars().all()
        used = (await session.execute(select(User.used_bytes))).scalar_one()
    assert len(set(keys)) == 1  # no storage round trip: the same object
    assert used == 2 * len(b"/orig.txt")
    assert error(await copy(client, alice, "/orig.txt", "/orig.txt")) == (409, "path_taken")
    await client.delete("/files", params={"path": "/orig.txt"}, headers=alice.headers)
    await run_worker()
    assert await content(client, alice, "/copies/orig.txt") == b"/orig.txt"
    await assert_consistent(app, bucket, alice)
    await client.delete("/files", params={"path": "/copies/orig.txt"}, headers=alice.headers)
    await run_worker()
    assert await bucket.keys(f"uploads/{alice.id}/") == set()
    await assert_consistent(app, bucket, alice)


async def test_a_folder_copy_and_the_quota(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    run_worker: RunWorker,
    settings: Settings,
) -> None:
    await stored(client, alice, "/src/a.txt", "/src/deep/b.txt")
    await client.post("/folders", json={"path": "/src/void/"}, headers=alice.headers)
    copied = await copy(client, alice, "/src/", "/dst")
    assert copied.json() == {"copied": 2, "path": "/dst/"}
    assert await names(client, alice, "/dst/") == ["deep/", "void/", "a.txt"]
    assert error(await copy(client, alice, "/src/", "/src/deep/")) == (400, "invalid_move")
    assert error(await copy(client, alice, "/src/", "/")) == (409, "path_taken")
    nested = await copy(client, alice, "/src/deep/", "/dst/deep")
    assert nested.json()["path"] == "/dst/deep/deep/"
    async with app.state.sessionmaker() as session:
        used = (await session.execute(select(User.used_bytes))).scalar_one()
        await session.execute(update(User).values(used_bytes=settings.uploads.user_quota_bytes - 5))
        await session.commit()
    try:
        assert error(await copy(client, alice, "/src/", "/third/")) == (413, "quota_exceeded")
        assert error(await copy(client, alice, "/src/a.txt", "/third.txt")) == (
            413,
            "quota_exceeded",
        )
        assert await names(client, alice) == ["dst/", "src/"]
    finally:
        async with app.state.sessionmaker() as session:
            await session.execute(update(User).values(used_bytes=used))
            await session.commit()
    await client.delete("/files", params={"path": "/src/"}, headers=alice.headers)
    await run_worker()
    assert await content(client, alice, "/dst/deep/b.txt") == b"/src/deep/b.txt"
    await assert_consistent(app, bucket, alice)


async def test_a_folder_delete_takes_everything_below_it(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    await stored(client, alice, "/t/a", "/t/b/c", "/t/b/d/e", "/tx", "/keep/k")
    await client.post("/folders", json={"path": "/t/void/"}, headers=alice.headers)
    deleted = await client.delete("/files", params={"path": "/t/"}, headers=alice.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": 3}
    assert await names(client, alice) == ["keep/", "tx"]
    again = await client.delete("/files", params={"path": "/t/"}, headers=alice.headers)
    assert error(again) == (404, "folder_not_found")
    root = await client.delete("/files", params={"path": "/"}, headers=alice.headers)
    assert error(root) == (400, "invalid_path")
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_search_finds_names_case_insensitively(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/Photos/Beach-2024.JPG", "/docs/beach notes.txt", "/b/x_y%z")
    await stored(client, alice, "/docs/other.txt", "/beachfolder/plain.txt")

    async def found(q: str, **params: Any) -> list[str]:
        response = await client.get(
            "/files/search", params={"q": q, **params}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        return [f["path"] for f in response.json()["files"]]

    assert await found("BEACH") == ["/Photos/Beach-2024.JPG", "/docs/beach notes.txt"]
    assert await found("beach", path="/docs/") == ["/docs/beach notes.txt"]
    assert await found("%") == ["/b/x_y%z"]
    assert await found("_") == ["/b/x_y%z"]
    assert await found("nothing-like-it") == []
    first = (
        await client.get("/files/search", params={"q": "e", "limit": 2}, headers=alice.headers)
    ).json()
    rest = await found("e", cursor=first["next_cursor"])
    assert [f["path"] for f in first["files"]] + rest == await found("e")
    for bad in ({"q": ""}, {"q": "x" * 201}, {}):
        response = await client.get("/files/search", params=bad, headers=alice.headers)
        assert response.status_code == 422, bad


async def test_users_never_reach_each_others_folders(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await stored(client, alice, "/secret/plan.txt")
    assert error(await view(client, bob, "/secret/")) == (404, "folder_not_found")
    assert await names(client, bob) == []
    assert error(await move(client, bob, "/secret/", "/mine/")) == (404, "folder_not_found")
    assert error(await copy(client, bob, "/secret/plan.txt", "/p")) == (404, "file_not_found")
    alice_id = (await listed(client, alice))[0]["id"]
    assert error(await move(client, bob, alice_id, "/p")) == (404, "file_not_found")
    gone = await client.delete("/files", params={"path": "/secret/"}, headers=bob.headers)
    assert error(gone) == (404, "folder_not_found")
    searched = await client.get("/files/search", params={"q": "plan"}, headers=bob.headers)
    assert searched.json()["files"] == []
    # Bob's own folder of the same name is his, and Alice's stays hers.
    await stored(client, bob, "/secret/his.txt")
    assert await names(client, alice, "/secret/") == ["plan.txt"]


async def test_folder_routes_need_a_token(client: httpx.AsyncClient) -> None:
    calls = [
        client.get("/folders"),
        client.post("/folders", json={"path": "/a/"}),
        client.post("/files/move", json={"from": "/a", "to": "/b"}),
        client.post("/files/copy", json={"from": "/a", "to": "/b"}),
        client.get("/files/search", params={"q": "a"}),
        client.delete("/files", params={"path": "/a/"}),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 401


async def test_moves_uploads_and_deletes_of_one_folder_stay_consistent(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, bucket: Bucket, run_worker: RunWorker
) -> None:
    """Concurrent folder moves, uploads into it, copies out of it and folder deletes: every
    answer is a 2xx or an expected 4xx, and record and storage agree afterwards."""
    rng = random.Random(19)
    await stored(client, alice, "/w/seed.txt")

    async def actor(number: int) -> list[int]:
        statuses = []
        for step in range(8):
            roll = rng.random()
            where = rng.choice(["/w/", "/v/"])
            if roll < 0.4:
                response = await upload(
                    client, alice, f"{where}f{number}-{step}", os.urandom(rng.randint(1, 2048))
                )
            elif roll < 0.6:
                response = await move(client, alice, where, "/v/" if where == "/w/" else "/w/")
            elif roll < 0.75:
                response = await copy(client, alice, f"{where}", f"/copy-{number}-{step}/")
            elif roll < 0.85:
                response = await client.delete(
                    "/files", params={"path": where}, headers=alice.headers
                )
            else:
                response = await view(client, alice, where)
            statuses.append(response.status_code)
        return statuses

    results = await asyncio.gather(*(actor(n) for n in range(6)))
    statuses = [status for result in results for status in result]
    assert set(statuses) <= {200, 201, 404, 409}, statuses
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_reused_put_url_rewrites_every_copy_of_its_object(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    bucket: Bucket,
    run_worker: RunWorker,
    settings: Settings,
) -> None:
    """The object is one: a presigned PUT used again after its upload was confirmed changes
    it under the file and under its copies, and both record the new size and etag."""
    ticket = await ticket_for(client, alice, path="/r.bin")
    assert (await put(ticket, b"1")).status_code == 200
    assert (await complete(client, alice, ticket["id"])).json()["status"] == "completed"
    assert (await copy(client, alice, "/r.bin", "/r-copy.bin")).status_code == 201
    assert (await put(ticket, b"longer content")).status_code == 200
    counts = await tasks.reconcile_uploads(worker_ctx(app, settings))
    assert counts["rechecked"] == 1
    await run_worker()
    sizes = {f["path"]: f["size"] for f in await listed(client, alice)}
    assert sizes == {"/r.bin": 14, "/r-copy.bin": 14}
    await assert_consistent(app, bucket, alice)


@pytest.mark.parametrize("target", ["/", "/deep/er/"])
async def test_moving_a_file_to_a_folder_path_keeps_its_name(
    client: httpx.AsyncClient, alice: Account, target: str
) -> None:
    await stored(client, alice, "/src/name.txt")
    moved = await move(client, alice, "/src/name.txt", target)
    assert moved.json()["path"] == f"{target}name.txt"


@pytest.mark.parametrize("scan_rows", [1, 3, 1000])
async def test_search_answers_the_same_from_either_plan(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, scan_rows: int
) -> None:
    """Every plan gives the same page: the walk in path order (when it fills the page within
    ``scan_rows`` files), every match sorted (``scan_rows`` 3: at most that many match), and
    the walk without a row bound (``scan_rows`` 1: more match)."""
    await stored(client, alice, "/a/hit-1", "/a/miss", "/b/miss", "/c/HIT-2", "/d/hit-3")
    async with app.state.sessionmaker() as session:
        files = FileRepository(session, alice.id)
        first = await files.search("hit", None, None, 2, scan_rows)
        rest = await files.search("hit", None, first[-1].path, 2, scan_rows)
        below = await files.search("hit", "/c/", None, 2, scan_rows)
    assert [f.path for f in first] == ["/a/hit-1", "/c/HIT-2"]
    assert [f.path for f in rest] == ["/d/hit-3"]
    assert [f.path for f in below] == ["/c/HIT-2"]
