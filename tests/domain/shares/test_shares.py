"""Share links (DESIGN §15): every route and error, isolation between users, links that follow
moves and die with their target, expiry, used up and revoked links, paths that try to leave
the shared folder, passwords (the cookie, the throttle) and a folder share's zip. Every
service is real."""

import asyncio
import hashlib
import io
import logging
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from domain.models import Share
from infra.config import Settings
from infra.logging import JsonFormatter
from tests.domain.folders.test_folders import move, stored
from tests.helpers import Account, upload

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


async def make_share(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post("/shares", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def shares(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/shares", headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["shares"]
    return found


def link(share: dict[str, Any], tail: str = "") -> str:
    """The share's public URL (or one of its routes), as the test client reaches it."""
    return str(share["url"]) + tail


async def fetch(location: str) -> bytes:
    """What a presigned URL serves: the test's own client, straight to storage."""
    async with httpx.AsyncClient() as plain:
        response = await plain.get(location)
    assert response.status_code == 200, response.text
    return response.content


def error(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["cache-control"] == "no-store", response.headers
    return response.status_code, response.json()["error"]


async def downloaded(client: httpx.AsyncClient, url: str, **params: str) -> bytes:
    # An empty params would drop a query written into the URL.
    response = await client.get(url, headers=JSON, params=params or None)
    assert response.status_code == 307, response.text
    assert response.headers["cache-control"] == "no-store"
    return await fetch(response.headers["location"])


async def expire(app: FastAPI, share_id: str) -> None:
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Share)
            .where(Share.id == share_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


# -- making, listing and revoking -------------------------------------------------------------


async def test_a_file_share_shows_the_file_and_redirects_to_its_content(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await upload(client, alice, "/docs/a.txt", b"hello")
    share = await make_share(client, alice, path="/docs/a.txt")
    assert {
        k: share[k] for k in ("path", "kind", "has_password", "max_downloads", "downloads")
    } == {
        "path": "/docs/a.txt",
        "kind": "file",
        "has_password": False,
        "max_downloads": None,
        "downloads": 0,
    }
    parts = urlsplit(share["url"])
    assert (parts.scheme, parts.netloc) == ("http", "test")
    token = parts.path.removeprefix("/s/")
    assert len(token) == 43  # 32 random bytes
    lifetime = datetime.fromisoformat(share["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=7) - timedelta(minutes=1) < lifetime <= timedelta(days=7)

    shown = await client.get(link(share), headers=JSON)
    assert shown.status_code == 200, shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert shown.json() == {"kind": "file", "name": "a.txt", "size": 5, "has_password": False}

    assert await downloaded(client, link(share, "/download")) == b"hello"
    [listed] = await shares(client, alice)
    assert listed["downloads"] == 1
    assert listed["url"] is None  # shown once: only the token's hash is kept
    assert listed["id"] == share["id"]

    # Only the hash is stored, and the lookup goes by it.
    async with app.state.sessionmaker() as session:
        stored_hash = (await session.execute(select(Share.token_hash))).scalar_one()
    assert stored_hash == hashlib.sha256(token.encode()).digest()


async def test_a_file_share_by_id_and_a_folder_named_without_its_slash(
    client: httpx.AsyncClient, alice: Account
) -> None:
    created = (await upload(client, alice, "/a.txt", b"x")).json()
    await stored(client, alice, "/docs/b.txt")
    by_id = await make_share(client, alice, path=created["id"])
    assert (by_id["path"], by_id["kind"]) == ("/a.txt", "file")
    folder = await make_share(client, alice, path="/docs")
    assert (folder["path"], folder["kind"]) == ("/docs/", "folder")


async def test_the_page_is_html_escaped_and_styled_like_the_app(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await upload(client, alice, '/<b>"x"&.txt', b"12345")
    share = await make_share(client, alice, path='/<b>"x"&.txt')
    page = await client.get(link(share), headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "&lt;b&gt;&quot;x&quot;&amp;.txt" in page.text
    assert "<b>" not in page.text
    assert "/static/web/style.css" in page.text
    assert "5 bytes" in page.text
    assert f'href="{urlsplit(share["url"]).path}/download"' in page.text
    # curl's */* gets the page too: JSON only when asked for.
    assert (await client.get(link(share))).headers["content-type"].startswith("text/html")


async def test_options_and_their_limits(
    client: httpx.AsyncClient, alice: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", expires_in=60, max_downloads=3)
    lifetime = datetime.fromisoformat(share["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=50) < lifetime <= timedelta(seconds=60)
    assert share["max_downloads"] == 3

    too_long = await client.post(
        "/shares",
        json={"path": "/a.txt", "expires_in": settings.shares.max_seconds + 1},
        headers=alice.headers,
    )
    assert too_long.status_code == 422
    assert str(settings.shares.max_seconds) in too_long.json()["detail"]
    for body in (
        {"path": "/a.txt", "expires_in": 0},
        {"path": "/a.txt", "max_downloads": 0},
        {"path": "/a.txt", "password": ""},
        {"path": "/a.txt", "owner": "someone"},
        {},
    ):
        response = await client.post("/shares", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation_error"

    monkeypatch.setattr(settings.shares, "public_url", "https://files.example.com")
    public = await make_share(client, alice, path="/a.txt")
    assert public["url"].startswith("https://files.example.com/s/")


async def test_the_owner_routes_answer_their_errors(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt")
    assert (await client.post("/shares", json={"path": "/a.txt"})).status_code == 401
    assert (await client.get("/shares")).status_code == 401
    cases = {
        "/missing.txt": (404, "file_not_found"),
        "/missing/": (404, "folder_not_found"),
        "/": (400, "invalid_path"),
        "relative.txt": (400, "invalid_path"),
        "/a/../b.txt": (400, "invalid_path"),
    }
    for path, expected in cases.items():
        response = await client.post("/shares", json={"path": path}, headers=alice.headers)
        assert (response.status_code, response.json()["error"]) == expected, path
    unknown = await client.delete(
        "/shares/00000000-0000-0000-0000-000000000000", headers=alice.headers
    )
    assert (unknown.status_code, unknown.json()["error"]) == (404, "share_not_found")


async def test_users_see_and_revoke_only_their_own_shares(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await stored(client, alice, "/a.txt")
    await stored(client, bob, "/a.txt")
    mine = await make_share(client, alice, path="/a.txt")
    assert await shares(client, bob) == []
    theirs = await client.delete(f"/shares/{mine['id']}", headers=bob.headers)
    assert (theirs.status_code, theirs.json()["error"]) == (404, "share_not_found")
    assert (await client.get(link(mine), headers=JSON)).status_code == 200
    # Bob's own link reaches Bob's file, never Alice's of the same path.
    bobs = await make_share(client, bob, path="/a.txt")
    assert await downloaded(client, link(bobs, "/download")) == b"/a.txt"
    assert [share["id"] for share in await shares(client, alice)] == [mine["id"]]


async def test_a_revoked_share_is_gone_at_once(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/a.txt", "/b.txt")
    share = await make_share(client, alice, path="/a.txt")
    other = await make_share(client, alice, path="/b.txt")
    assert (await client.get(link(share), headers=JSON)).status_code == 200
    revoked = await client.delete(f"/shares/{share['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    for tail in ("", "/download"):
        assert error(await client.get(link(share, tail), headers=JSON)) == (
            404,
            "share_not_found",
        )
    page = await client.get(link(share), headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert [found["id"] for found in await shares(client, alice)] == [other["id"]]
    again = await client.delete(f"/shares/{share['id']}", headers=alice.headers)
    assert again.status_code == 404


async def test_dead_links_all_look_the_same(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt")
    token = urlsplit(share["url"]).path.removeprefix("/s/")
    for forged in ("x", token[:-1] + ("A" if token[-1] != "A" else "B"), token + "A", "%00"):
        for tail in ("", "/download", "/zip"):
            response = await client.get(f"http://test/s/{forged}{tail}", headers=JSON)
            assert error(response) == (404, "share_not_found"), (forged, tail)
    unlock = await client.post(
        f"http://test/s/{token[::-1]}/unlock", json={"password": "x"}, headers=JSON
    )
    assert error(unlock) == (404, "share_not_found")


# -- following the target ---------------------------------------------------------------------


async def test_a_file_share_follows_its_file_through_a_move(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt")
    assert (await move(client, alice, "/a.txt", "/moved/renamed.txt")).status_code == 200
    [listed] = await shares(client, alice)
    assert listed["path"] == "/moved/renamed.txt"
    shown = (await client.get(link(share), headers=JSON)).json()
    assert shown["name"] == "renamed.txt"
    assert await downloaded(client, link(share, "/download")) == b"/a.txt"
    # An overwrite keeps the file (and its share): the link serves the new content.
    await upload(client, alice, "/moved/renamed.txt", b"new")
    assert await downloaded(client, link(share, "/download")) == b"new"


async def test_a_folder_share_follows_its_folder_through_a_move(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/p/1.txt", "/p/sub/2.txt")
    share = await make_share(client, alice, path="/p/")
    assert (await move(client, alice, "/p/", "/archive/q")).status_code == 200
    [listed] = await shares(client, alice)
    assert listed["path"] == "/archive/q/"
    shown = (await client.get(link(share), headers=JSON)).json()
    assert shown["name"] == "q"
    assert [file["path"] for file in shown["files"]] == ["1.txt", "sub/2.txt"]
    assert await downloaded(client, link(share, "/download"), path="sub/2.txt") == b"/p/sub/2.txt"


async def test_deleting_the_target_ends_the_share(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt", "/p/1.txt")
    file_share = await make_share(client, alice, path="/a.txt")
    folder_share = await make_share(client, alice, path="/p/")
    assert (
        await client.delete("/files", params={"path": "/a.txt"}, headers=alice.headers)
    ).status_code == 204
    assert (
        await client.delete("/files", params={"path": "/p/"}, headers=alice.headers)
    ).status_code == 200
    for share in (file_share, folder_share):
        assert error(await client.get(link(share), headers=JSON)) == (404, "share_not_found")
    assert await shares(client, alice) == []
    # A restore from the trash brings the file back, not the link.
    [entry, _] = (await client.get("/trash", headers=alice.headers)).json()["entries"]
    restored = await client.post(f"/trash/{entry['id']}/restore", headers=alice.headers)
    assert restored.status_code == 200
    assert error(await client.get(link(file_share), headers=JSON)) == (404, "share_not_found")


# -- expiry and download counts ---------------------------------------------------------------


async def test_an_expired_share_is_not_found(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", expires_in=60)
    assert (await client.get(link(share), headers=JSON)).status_code == 200
    await expire(app, share["id"])
    for tail in ("", "/download"):
        assert error(await client.get(link(share, tail), headers=JSON)) == (404, "share_not_found")
    [listed] = await shares(client, alice)  # the owner still sees it, and can revoke it
    assert datetime.fromisoformat(listed["expires_at"]) < datetime.now(UTC)


async def test_an_expiry_of_a_second_runs_out(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", expires_in=1)
    await asyncio.sleep(1.2)
    assert error(await client.get(link(share), headers=JSON)) == (404, "share_not_found")


async def test_a_used_up_share_is_not_found(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", max_downloads=2)
    head = await client.head(link(share, "/download"))  # checks, never counts
    assert head.status_code == 307
    assert await downloaded(client, link(share, "/download")) == b"/a.txt"
    assert (await client.get(link(share), headers=JSON)).status_code == 200  # views do not count
    assert await downloaded(client, link(share, "/download")) == b"/a.txt"
    for tail in ("", "/download"):
        assert error(await client.get(link(share, tail), headers=JSON)) == (404, "share_not_found")
    page = await client.get(link(share, "/download"), headers=HTML)  # a browser gets the page
    assert (page.status_code, page.headers["content-type"].split(";")[0]) == (404, "text/html")
    [listed] = await shares(client, alice)
    assert listed["downloads"] == 2


async def test_concurrent_downloads_never_pass_the_limit(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", max_downloads=3)
    answers = await asyncio.gather(
        *(client.get(link(share, "/download"), headers=JSON) for _ in range(10))
    )
    assert sorted(response.status_code for response in answers) == [307] * 3 + [404] * 7
    assert (await shares(client, alice))[0]["downloads"] == 3
    # Browsers racing past the limit each get the 404 page, whichever step saw it used up.
    second = await make_share(client, alice, path="/a.txt", max_downloads=3)
    answers = await asyncio.gather(
        *(client.get(link(second, "/download"), headers=HTML) for _ in range(10))
    )
    refused = [response for response in answers if response.status_code != 307]
    assert len(refused) == 7
    assert {r.headers["content-type"].split(";")[0] for r in refused} == {"text/html"}


async def test_downloads_of_an_unlimited_share_are_counted_without_a_write_each(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    await stored(client, alice, "/a.txt", "/d/b.txt")
    file_share = await make_share(client, alice, path="/a.txt")
    folder = await make_share(client, alice, path="/d/")
    answers = await asyncio.gather(
        *(client.get(link(file_share, "/download")) for _ in range(20)),
        *(client.get(link(folder, "/download"), params={"path": "b.txt"}) for _ in range(3)),
        client.get(link(folder, "/zip")),
    )
    assert [response.status_code for response in answers] == [307] * 23 + [200]
    listed = {share["path"]: share["downloads"] for share in await shares(client, alice)}
    assert listed == {"/a.txt": 20, "/d/": 4}

    async def stored_counts() -> dict[str, int]:
        async with app.state.database.reading() as session:
            rows = await session.execute(select(Share.id, Share.downloads))
        return {str(share_id): downloads for share_id, downloads in rows}

    tally = app.state.download_tally
    assert (
        tally.pending(uuid.UUID(file_share["id"])) + (await stored_counts())[file_share["id"]] == 20
    )
    await tally.flush(app.state.database)
    assert await stored_counts() == {file_share["id"]: 20, folder["id"]: 4}
    assert tally.pending(uuid.UUID(file_share["id"])) == 0
    listed = {share["path"]: share["downloads"] for share in await shares(client, alice)}
    assert listed == {"/a.txt": 20, "/d/": 4}


# -- a folder share reaches its folder and nothing else ---------------------------------------


@pytest.fixture
async def folder_share(client: httpx.AsyncClient, alice: Account) -> dict[str, Any]:
    await stored(client, alice, "/p/1.txt", "/p/sub/2.txt", "/p2/x.txt", "/secret.txt")
    await stored(client, alice, "/p/%2e%2e/odd.txt")  # a real (odd) name, below the folder
    return await make_share(client, alice, path="/p/")


async def test_a_folder_share_lists_its_files_relative_and_paged(
    client: httpx.AsyncClient, folder_share: dict[str, Any]
) -> None:
    shown = (await client.get(link(folder_share), headers=JSON)).json()
    assert shown["kind"] == "folder"
    assert shown["name"] == "p"
    assert shown["files"] == [
        {"path": "%2e%2e/odd.txt", "name": "odd.txt", "size": len("/p/%2e%2e/odd.txt")},
        {"path": "1.txt", "name": "1.txt", "size": len("/p/1.txt")},
        {"path": "sub/2.txt", "name": "2.txt", "size": len("/p/sub/2.txt")},
    ]
    assert shown["next_cursor"] is None
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(link(folder_share), params=params, headers=JSON)).json()
        seen += [file["path"] for file in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert "/p/" not in cursor  # relative: says nothing of the owner's tree
    assert seen == [file["path"] for file in shown["files"]]
    html = (await client.get(link(folder_share), headers=HTML)).text
    assert "sub/2.txt" in html
    assert "/download?path=sub%2F2.txt" in html
    assert f"{urlsplit(folder_share['url']).path}/zip" in html
    assert "secret" not in html and "p2" not in html


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "../p2/x.txt",
        "sub/../../secret.txt",
        "sub/../2.txt",
        "./1.txt",
        "/etc/passwd",
        "/secret.txt",
        "/p/1.txt",
        "..\\secret.txt",
        "sub\\2.txt",
        "sub/",
        "",
        "1.txt\x00",
        "..",
    ],
)
async def test_paths_that_leave_the_folder_are_refused(
    client: httpx.AsyncClient, folder_share: dict[str, Any], path: str
) -> None:
    response = await client.get(
        link(folder_share, "/download"), params={"path": path}, headers=JSON
    )
    assert error(response) == (400, "invalid_path"), path


async def test_encoded_tricks_are_refused_or_stay_inside(
    client: httpx.AsyncClient, folder_share: dict[str, Any]
) -> None:
    base = link(folder_share, "/download")
    for raw in (
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "sub%2F..%2F..%2Fsecret.txt",
        "%5csecret.txt",
    ):
        response = await client.get(f"{base}?path={raw}", headers=JSON)
        assert error(response) == (400, "invalid_path"), raw
    # Encoded twice, it is decoded once: a literal name, looked for below the folder only.
    response = await client.get(f"{base}?path=%252e%252e/secret.txt", headers=JSON)
    assert error(response) == (404, "file_not_found")
    assert await downloaded(client, f"{base}?path=%252e%252e/odd.txt") == b"/p/%2e%2e/odd.txt"
    # Valid paths, normalised by the paths' rules.
    assert await downloaded(client, base, path="sub//2.txt") == b"/p/sub/2.txt"
    assert await downloaded(client, base, path="1.txt") == b"/p/1.txt"
    # The path is a query value: a tricked URL path is another route, or the same share.
    token_path = urlsplit(folder_share["url"]).path
    sneaky = await client.get(f"http://test{token_path}/download/../../secret.txt", headers=JSON)
    assert sneaky.status_code in {400, 404}
    missing = await client.get(base, headers=JSON)
    assert error(missing) == (400, "invalid_path")  # a folder share needs a path (or zip)
    forged = await client.get(link(folder_share), params={"cursor": "bm90IGpzb24"}, headers=JSON)
    assert error(forged) == (400, "invalid_cursor")


async def test_a_file_share_takes_no_path(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/a.txt", "/b.txt")
    share = await make_share(client, alice, path="/a.txt")
    for path in ("b.txt", "../b.txt", "a.txt"):
        response = await client.get(link(share, "/download"), params={"path": path}, headers=JSON)
        assert error(response) == (400, "invalid_path")
    assert error(await client.get(link(share, "/zip"), headers=JSON)) == (400, "invalid_path")


async def test_a_folder_share_zips_exactly_its_folder(
    client: httpx.AsyncClient, alice: Account, folder_share: dict[str, Any]
) -> None:
    response = await client.get(link(folder_share, "/zip"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="p.zip"' in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["%2e%2e/odd.txt", "1.txt", "sub/2.txt"]
        assert archive.read("sub/2.txt") == b"/p/sub/2.txt"
        assert archive.read("1.txt") == b"/p/1.txt"
    assert (await shares(client, alice))[0]["downloads"] == 1  # a zip is one download
    head = await client.head(link(folder_share, "/zip"))
    assert head.status_code == 200
    assert (await shares(client, alice))[0]["downloads"] == 1


# -- passwords --------------------------------------------------------------------------------


async def unlock(
    client: httpx.AsyncClient, share: dict[str, Any], password: str, **extra: Any
) -> httpx.Response:
    return await client.post(link(share, "/unlock"), json={"password": password}, **extra)


async def test_a_password_share_is_locked_until_unlocked(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await stored(client, alice, "/p/1.txt")
    share = await make_share(client, alice, path="/p/", password="open sesame")
    assert share["has_password"] is True
    async with app.state.sessionmaker() as session:
        password_hash = (await session.execute(select(Share.password_hash))).scalar_one()
    assert password_hash.startswith("$argon2")

    for tail, params in (("", {}), ("/download", {"path": "1.txt"}), ("/zip", {})):
        locked = await client.get(link(share, tail), params=params, headers=JSON)
        assert error(locked) == (401, "share_locked"), tail
        page = await client.get(link(share, tail), params=params, headers=HTML)
        assert page.status_code == 401
        assert '<form method="post"' in page.text
        assert "1.txt" not in page.text  # nothing shown while locked

    wrong = await unlock(client, share, "wrong")
    assert error(wrong) == (401, "wrong_share_password")
    assert "set-cookie" not in wrong.headers

    right = await unlock(client, share, "open sesame")
    assert right.status_code == 204, right.text
    cookie = right.headers["set-cookie"]
    token_path = urlsplit(share["url"]).path
    assert f"Path={token_path}" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=3600" in cookie
    assert "open sesame" not in cookie

    shown = await client.get(link(share), headers=JSON)  # the client keeps the cookie
    assert shown.status_code == 200, shown.text
    assert shown.json()["has_password"] is True
    assert await downloaded(client, link(share, "/download"), path="1.txt") == b"/p/1.txt"
    assert (await client.get(link(share, "/zip"))).status_code == 200


async def test_the_page_form_unlocks_and_goes_back_to_the_share(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", password="pw")
    wrong = await client.post(link(share, "/unlock"), data={"password": "nope"}, headers=HTML)
    assert wrong.status_code == 401
    assert "Wrong password" in wrong.text
    right = await client.post(link(share, "/unlock"), data={"password": "pw"}, headers=HTML)
    assert right.status_code == 303
    assert right.headers["location"] == urlsplit(share["url"]).path
    page = await client.get(link(share), headers=HTML)
    assert page.status_code == 200
    assert "a.txt" in page.text


async def test_an_unlock_cookie_opens_its_own_share_only(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await stored(client, alice, "/a.txt", "/b.txt")
    first = await make_share(client, alice, path="/a.txt", password="same")
    second = await make_share(client, alice, path="/b.txt", password="same")
    right = await unlock(client, first, "same")
    proof = right.cookies["fs_share_unlock"]
    client.cookies.clear()
    with_first = {**JSON, "Cookie": f"fs_share_unlock={proof}"}
    assert (await client.get(link(first), headers=with_first)).status_code == 200
    assert error(await client.get(link(second), headers=with_first)) == (401, "share_locked")
    assert (await client.get(link(first, "/download"), headers=with_first)).status_code == 307
    refused = await client.get(link(second, "/download"), headers=with_first)
    assert error(refused) == (401, "share_locked")
    share_id, expiry, mac = proof.split(".")
    second_id = uuid.UUID(second["id"]).hex
    for value in (
        f"{share_id}.{int(expiry) + 10_000}.{mac}",
        f"{share_id}.{expiry}.{'0' * 64}",
        f"{second_id}.{expiry}.{mac}",
        f"{expiry}.{mac}",
        f"{'z' * 32}.{expiry}.{mac}",
    ):
        forged = {**JSON, "Cookie": f"fs_share_unlock={value}"}
        assert error(await client.get(link(first), headers=forged)) == (401, "share_locked")
        downloaded = await client.get(link(first, "/download"), headers=forged)
        assert error(downloaded) == (401, "share_locked")


async def test_wrong_passwords_are_throttled(
    client: httpx.AsyncClient, alice: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings.auth, "max_failures_per_login", 3)
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt", password="right")
    other = await make_share(client, alice, path="/a.txt", password="right")
    for _ in range(3):
        assert error(await unlock(client, share, "wrong")) == (401, "wrong_share_password")
    throttled = await unlock(client, share, "right")  # even the right one, for the window
    assert error(throttled) == (429, "too_many_attempts")
    assert int(throttled.headers["retry-after"]) >= 1
    page = await client.post(link(share, "/unlock"), data={"password": "right"}, headers=HTML)
    assert page.status_code == 429
    assert "retry-after" in page.headers
    assert (await unlock(client, other, "right")).status_code == 204  # per share


async def test_an_unlock_without_a_password_or_with_a_bad_body(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/a.txt")
    open_share = await make_share(client, alice, path="/a.txt")
    nothing = await unlock(client, open_share, "anything")
    assert nothing.status_code == 204
    assert "set-cookie" not in nothing.headers
    locked = await make_share(client, alice, path="/a.txt", password="pw")
    for body in ({}, {"password": ""}, {"password": "pw", "extra": 1}):
        response = await client.post(link(locked, "/unlock"), json=body)
        assert error(response) == (422, "validation_error"), body
    malformed = await client.post(
        link(locked, "/unlock"), content=b"{", headers={"Content-Type": "application/json"}
    )
    assert error(malformed) == (400, "malformed_json")


async def test_shares_go_with_their_owner(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await stored(client, alice, "/a.txt")
    share = await make_share(client, alice, path="/a.txt")
    async with app.state.sessionmaker() as session:
        await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": alice.id})
        await session.commit()
    assert error(await client.get(link(share), headers=JSON)) == (404, "share_not_found")


async def test_state_changes_are_logged_without_the_token(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    await stored(client, alice, "/a.txt")
    with caplog.at_level(logging.INFO):
        share = await make_share(client, alice, path="/a.txt", password="pw")
        await unlock(client, share, "wrong")
        await unlock(client, share, "pw")
        download = await client.get(link(share, "/download"), headers=JSON)
        assert download.status_code == 307
        await client.delete(f"/shares/{share['id']}", headers=alice.headers)
    token = urlsplit(share["url"]).path.removeprefix("/s/")
    ours = [record for record in caplog.records if record.name != "httpx"]  # the test's client
    messages = [record.getMessage() for record in ours]
    for event in ("share created", "share unlock failed", "share unlocked", "share downloaded"):
        assert event in messages
    assert "share revoked" in messages
    logged = "\n".join(JsonFormatter().format(record) for record in ours)
    assert token not in logged
    assert token[:6] + "…" in logged  # the access line keeps a prefix to tell links apart
    assert download.headers["location"].split("?")[1] not in logged
    assert share["id"] in logged
