"""Folder zips (DESIGN §15): a folder downloads as a zip whose names are relative to it, sized
when the folder is small enough to list at once and streamed a page at a time when it is
not; a consumer that goes away stops the work and releases the object it was reading (a
server drops the body when its client disconnects, and the loop's finalizer closes it)."""

import asyncio
import io
import logging
import zipfile

import httpx
import pytest
from fastapi import FastAPI

from domain.folders.archive import folder_zip
from infra.config import Settings
from tests.helpers import Account, upload


async def stored(client: httpx.AsyncClient, account: Account, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        response = await upload(client, account, path, data)
        assert response.status_code == 201, response.text


async def zip_of(client: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    return await client.get(
        "/files/download", params={"path": path, "format": "zip"}, headers=account.headers
    )


def members(response: httpx.Response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


TREE = {
    "/docs/a.txt": b"alpha",
    "/docs/sub/b.bin": bytes(range(256)) * 4000,
    "/docs/sub/deeper/ünïcode name.txt": b"names keep their letters",
    "/docs-other/c.txt": b"not below /docs/",
    "/top.txt": b"top",
}


async def test_a_folder_downloads_as_a_zip_named_relative_to_it(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, TREE)
    response = await zip_of(client, alice, "/docs/")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-length"] == str(len(response.content))
    assert 'filename="docs.zip"' in response.headers["content-disposition"]
    assert members(response) == {
        "a.txt": b"alpha",
        "sub/b.bin": TREE["/docs/sub/b.bin"],
        "sub/deeper/ünïcode name.txt": b"names keep their letters",
    }
    assert members(await zip_of(client, alice, "/docs")) == members(response)
    everything = members(await zip_of(client, alice, "/"))
    assert everything == {path.lstrip("/"): data for path, data in TREE.items()}
    head = await client.head(
        "/files/download", params={"path": "/docs/", "format": "zip"}, headers=alice.headers
    )
    assert head.status_code == 200
    assert head.headers["content-length"] == response.headers["content-length"]
    assert head.content == b""


async def test_an_empty_folder_is_an_empty_zip(client: httpx.AsyncClient, alice: Account) -> None:
    made = await client.post("/folders", json={"path": "/void/"}, headers=alice.headers)
    assert made.status_code == 201, made.text
    response = await zip_of(client, alice, "/void/")
    assert response.status_code == 200
    assert members(response) == {}


async def test_a_folder_too_big_to_size_streams_a_page_at_a_time(
    client: httpx.AsyncClient, alice: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"/many/{index:02}.txt": f"file {index}".encode() for index in range(7)}
    await stored(client, alice, files)
    monkeypatch.setattr(settings.files, "zip_page_files", 3)
    response = await zip_of(client, alice, "/many/")
    assert response.status_code == 200, response.text
    assert "content-length" not in response.headers
    assert members(response) == {path.removeprefix("/many/"): data for path, data in files.items()}


async def test_zip_errors(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await stored(client, alice, {"/mine/a.txt": b"a"})
    for path, status, code in [
        ("/nope/", 404, "folder_not_found"),
        ("/mine/a.txt/", 404, "folder_not_found"),
        ("mine/", 400, "invalid_path"),
    ]:
        response = await zip_of(client, alice, path)
        assert (response.status_code, response.json()["error"]) == (status, code), path
    assert (await zip_of(client, bob, "/mine/")).status_code == 404
    assert members(await zip_of(client, bob, "/")) == {}
    anonymous = await client.get("/files/download", params={"path": "/mine/", "format": "zip"})
    assert anonymous.status_code == 401
    bad = await client.get(
        "/files/download", params={"path": "/mine/", "format": "tar"}, headers=alice.headers
    )
    assert bad.status_code == 422


async def test_a_consumer_that_goes_away_stops_the_zip(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    big = {f"/big/{index}.bin": bytes([index]) * (3 * 1024 * 1024) for index in range(3)}
    await stored(client, alice, big)
    monkeypatch.setattr(settings.files, "stream_chunk_bytes", 64 * 1024)
    user_id = (await client.get("/user/me", headers=alice.headers)).json()["id"]
    archive = await folder_zip(
        app.state.database, app.state.storage, user_id, "/big/", settings.files.zip_page_files
    )
    assert archive.length is not None and archive.length > 9 * 1024 * 1024
    received = 0
    reading = asyncio.Event()

    async def read_slowly() -> None:
        nonlocal received
        async for chunk in archive.body:
            received += len(chunk)
            reading.set()
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.INFO, logger="domain.folders.archive"):
        task = asyncio.create_task(read_slowly())
        await asyncio.wait_for(reading.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # What the event loop's finalizer does once the response lets go of the body.
        await archive.body.aclose()
    assert 0 < received < archive.length
    stopped = [r for r in caplog.records if r.getMessage() == "folder zip stopped"]
    assert len(stopped) == 1
    assert stopped[0].bytes == received  # type: ignore[attr-defined]
