"""Upload links (DESIGN §15, issue 21): a folder anyone with the link may drop files into, for its
owner's account, never overwriting and without seeing what the folder holds. Every service is
real: the intents, the presigned PUTs and parts go to the real S3 server."""

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from domain.models import File, Upload, UploadStatus, User
from infra.config import Settings
from infra.logging import JsonFormatter
from tests.domain.folders.test_folders import content, stored
from tests.domain.shares.test_shares import (
    HTML,
    JSON,
    error,
    expire,
    link,
    make_share,
    unlock,
)
from tests.helpers import Account, intent, listed, put

MIB = 1024 * 1024


async def upload_link(
    client: httpx.AsyncClient, account: Account, path: str = "/inbox/", **body: Any
) -> dict[str, Any]:
    return await make_share(client, account, path=path, upload=True, **body)


async def ask(client: httpx.AsyncClient, share: dict[str, Any], **body: Any) -> httpx.Response:
    """An intent through the link."""
    return await client.post(link(share, "/upload"), json=body, headers=JSON)


async def asked(client: httpx.AsyncClient, share: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await ask(client, share, **body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def finish(
    client: httpx.AsyncClient, share: dict[str, Any], upload_id: str
) -> httpx.Response:
    return await client.post(link(share, f"/uploads/{upload_id}/complete"), headers=JSON)


async def sent(
    client: httpx.AsyncClient, share: dict[str, Any], name: str, body: bytes
) -> dict[str, Any]:
    """A file sent through the link as the page sends it: intent, PUT, complete."""
    ticket = await asked(client, share, name=name, size=len(body))
    assert (await put(ticket["upload"], body)).status_code == 200
    done = await finish(client, share, ticket["upload"]["id"])
    assert done.status_code == 200, done.text
    state: dict[str, Any] = done.json()
    assert state["status"] == "completed"
    return state


async def uploads_and_reservation(app: FastAPI, account: Account) -> tuple[int, int, int]:
    """The owner's pending uploads, reserved bytes and open uploads."""
    async with app.state.sessionmaker() as session:
        rows = await session.scalar(
            select(func.count()).select_from(Upload).where(Upload.status == UploadStatus.pending)
        )
        user = await session.get(User, account.id)
        assert user is not None
        return int(rows or 0), user.reserved_bytes, user.open_uploads


# -- making one -------------------------------------------------------------------------------


async def test_an_upload_link_is_made_for_a_folder_only(
    client: httpx.AsyncClient, alice: Account
) -> None:
    share = await upload_link(client, alice, "/requests/cv/", expires_in=3600, password="pw")
    assert {k: share[k] for k in ("path", "kind", "upload", "has_password", "max_downloads")} == {
        "path": "/requests/cv/",
        "kind": "folder",
        "upload": True,
        "has_password": True,
        "max_downloads": None,
    }
    # The folder is made (explicit: there while empty), and the owner's list says upload.
    folder = await client.get("/folders", params={"path": "/requests/"}, headers=alice.headers)
    assert folder.status_code == 200, folder.text
    assert [f["name"] for f in folder.json()["folders"]] == ["cv"]
    [mine] = (await client.get("/shares", headers=alice.headers)).json()["shares"]
    assert mine["upload"] is True
    plain = await make_share(client, alice, path="/requests/")
    assert plain["upload"] is False

    await stored(client, alice, "/a.txt")
    cases = {
        "/a.txt": (422, "upload_link_needs_folder"),
        "/requests": (422, "upload_link_needs_folder"),  # a folder is named with its '/'
        "/": (400, "invalid_path"),
        "/a/../b/": (400, "invalid_path"),
        "/a.txt/": (409, "path_taken"),
        "/a.txt/below/": (409, "path_taken"),
    }
    for path, expected in cases.items():
        response = await client.post(
            "/shares", json={"path": path, "upload": True}, headers=alice.headers
        )
        assert (response.status_code, response.json()["error"]) == expected, path
    counted = await client.post(
        "/shares",
        json={"path": "/requests/", "upload": True, "max_downloads": 3},
        headers=alice.headers,
    )
    assert (counted.status_code, counted.json()["error"]) == (422, "validation_error")
    assert "max_downloads" in counted.json()["detail"]


# -- what the uploader sees -------------------------------------------------------------------


async def test_the_uploader_sees_nothing_of_the_folder(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/inbox/secret.txt", "/inbox/sub/deeper.txt")
    share = await upload_link(client, alice)

    shown = await client.get(link(share), headers=JSON)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"kind": "upload", "name": "inbox", "has_password": False}
    page = await client.get(link(share), headers=HTML)
    assert page.status_code == 200
    assert "secret" not in page.text and "deeper" not in page.text
    for tail, params in (
        ("/download", {"path": "secret.txt"}),
        ("/download", {"path": "sub/deeper.txt"}),
        ("/download", {}),
        ("/zip", {}),
    ):
        for headers in (JSON, HTML):
            answer = await client.get(link(share, tail), params=params, headers=headers)
            assert answer.status_code == 404, (tail, params)
            assert "secret" not in answer.text
        assert error(await client.get(link(share, tail), params=params, headers=JSON)) == (
            404,
            "share_not_found",
        )
        head = await client.head(link(share, tail), params=params, headers=JSON)
        assert head.status_code == 404

    # An intent's answer names the file relative to the folder, nothing of the owner's tree.
    ticket = await asked(client, share, name="secret.txt", size=3)
    assert (ticket["name"], ticket["path"]) == ("secret (1).txt", "secret (1).txt")
    assert set(ticket) == {"name", "path", "status", "upload"}  # no file id, no owner's path


async def test_a_download_link_takes_no_uploads(client: httpx.AsyncClient, alice: Account) -> None:
    await stored(client, alice, "/docs/a.txt")
    folder = await make_share(client, alice, path="/docs/")
    file = await make_share(client, alice, path="/docs/a.txt")
    for share in (folder, file):
        assert error(await ask(client, share, name="x.txt", size=1)) == (404, "share_not_found")
    assert [f["path"] for f in await listed(client, alice)] == ["/docs/a.txt"]


# -- uploading --------------------------------------------------------------------------------


async def test_an_upload_through_the_link_lands_in_the_owners_folder(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    share = await upload_link(client, alice)
    ticket = await asked(client, share, name="cv.pdf", size=5, content_type="application/pdf")
    assert ticket["status"] == "pending"
    assert ticket["upload"]["method"] == "PUT"
    assert ticket["upload"]["post"] is not None  # the browser form, as for the owner

    # Not there yet: pending, then confirmed by complete.
    early = await finish(client, share, ticket["upload"]["id"])
    assert early.status_code == 202
    assert (await put(ticket["upload"], b"%PDF!")).status_code == 200
    state = (await finish(client, share, ticket["upload"]["id"])).json()
    assert {k: state[k] for k in ("status", "name", "path", "size")} == {
        "status": "completed",
        "name": "cv.pdf",
        "path": "cv.pdf",
        "size": 5,
    }
    files = await listed(client, alice)
    assert [(f["path"], f["size"], f["content_type"]) for f in files] == [
        ("/inbox/cv.pdf", 5, "application/pdf")
    ]
    assert await content(client, alice, "/inbox/cv.pdf") == b"%PDF!"
    async with app.state.sessionmaker() as session:
        row = await session.scalar(select(Upload))
        assert row is not None
        assert (row.owner_id, str(row.share_id)) == (alice.id, share["id"])
    # A relative path makes the folders below.
    await sent(client, share, "2026/may/notes.txt", b"notes")
    assert await content(client, alice, "/inbox/2026/may/notes.txt") == b"notes"


async def test_a_taken_name_gets_a_number_and_nothing_is_overwritten(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await stored(client, alice, "/inbox/report.pdf", "/inbox/photos/a.jpg", "/inbox/.env")
    pending = await intent(client, alice, path="/inbox/notes.txt", size=1)  # pending counts
    assert pending.status_code == 201
    share = await upload_link(client, alice)

    names = [
        (await asked(client, share, name=name, size=2))["name"]
        for name in ("report.pdf", "report.pdf", "notes.txt", "photos", ".env", "archive.tar.gz")
    ]
    assert names == [
        "report (1).pdf",
        "report (2).pdf",
        "notes (1).txt",
        "photos (1)",
        ".env (1)",
        "archive.tar.gz",
    ]
    await sent(client, share, "report.pdf", b"not yours")
    assert await content(client, alice, "/inbox/report.pdf") == b"/inbox/report.pdf"
    assert await content(client, alice, "/inbox/report (3).pdf") == b"not yours"
    # A long name keeps within a segment's 255 bytes.
    long = "é" * 125 + ".txt"  # 254 bytes
    await stored(client, alice, "/inbox/" + long)
    numbered = (await asked(client, share, name=long, size=1))["name"]
    assert numbered.endswith(" (1).txt") and len(numbered.encode()) <= 255


async def test_racing_uploaders_get_distinct_names(
    client: httpx.AsyncClient, alice: Account
) -> None:
    share = await upload_link(client, alice)
    answers = await asyncio.gather(*(ask(client, share, name="same.txt", size=1) for _ in range(6)))
    assert [answer.status_code for answer in answers] == [201] * 6
    names = sorted(answer.json()["name"] for answer in answers)
    assert names == sorted(["same.txt", *(f"same ({n}).txt" for n in range(1, 6))])


async def test_names_that_try_to_leave_the_folder_are_refused(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await stored(client, alice, "/outside.txt")
    share = await upload_link(client, alice)
    for name in (
        "../escape.txt",
        "sub/../../escape.txt",
        "/etc/passwd",
        "..",
        ".",
        "a\\..\\b.txt",
        "sub/",
        "",
        "nul\x00.txt",
        "ctl\x1b.txt",
        "x" * 256,
        "/".join(["d"] * 600),
    ):
        response = await ask(client, share, name=name, size=1)
        assert response.status_code in {400, 422}, (name, response.text)
        assert response.json()["error"] in {"invalid_path", "validation_error"}, name
    assert await uploads_and_reservation(app, alice) == (0, 0, 0)  # nothing written
    assert [f["path"] for f in await listed(client, alice)] == ["/outside.txt"]
    # Encoded dots are no dots in JSON: a literal name, inside the folder.
    ticket = await asked(client, share, name="%2e%2e/x.txt", size=1)
    assert ticket["path"] == "%2e%2e/x.txt"
    # NFC and repeated slashes, as the paths' rules have them.
    ticket = await asked(client, share, name="sub//cafe\u0301.txt", size=1)
    assert ticket["path"] == "sub/caf\u00e9.txt"


async def test_an_upload_link_abused_beyond_quota(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings.uploads, "user_quota_bytes", 1000)
    await stored(client, alice, "/inbox/old.txt")  # 14 bytes kept
    share = await upload_link(client, alice)
    first = await asked(client, share, name="a.bin", size=600)
    assert await uploads_and_reservation(app, alice) == (1, 600, 1)

    # The pending reservation counts: 600 + 14 kept leave 386.
    for size in (400, 387, 10**7):
        over = await ask(client, share, name="b.bin", size=size)
        assert error(over) == (413, "quota_exceeded"), size
        assert "1000" not in over.json()["detail"]  # nothing of the owner's numbers
    assert await uploads_and_reservation(app, alice) == (1, 600, 1)  # nothing written
    async with app.state.sessionmaker() as session:
        paths = (await session.scalars(select(File.path))).all()
    assert sorted(paths) == ["/inbox/a.bin", "/inbox/old.txt"]

    fits = await asked(client, share, name="b.bin", size=386)
    assert await uploads_and_reservation(app, alice) == (2, 986, 2)
    assert error(await ask(client, share, name="c.bin", size=1)) == (413, "quota_exceeded")
    # A confirmed upload holds its bytes as used; the reservation is released exactly.
    assert (await put(first["upload"], b"1" * 600)).status_code == 200
    assert (await finish(client, share, first["upload"]["id"])).status_code == 200
    aborted = await client.delete(link(share, f"/uploads/{fits['upload']['id']}"))
    assert aborted.status_code == 204
    assert await uploads_and_reservation(app, alice) == (0, 0, 0)
    async with app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None and user.used_bytes == 614


async def test_intents_per_link_are_rate_limited(
    client: httpx.AsyncClient, alice: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings.shares, "uploads_per_minute", 3)
    share = await upload_link(client, alice)
    other = await upload_link(client, alice, "/other/")
    for _ in range(3):
        await asked(client, share, name="a.txt", size=1)
    throttled = await ask(client, share, name="a.txt", size=1)
    assert error(throttled) == (429, "share_uploads_throttled")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # Failures count too (a prober gains nothing), and each link counts apart.
    assert (await ask(client, share, name="../x", size=1)).status_code == 429
    await asked(client, other, name="a.txt", size=1)


async def test_a_revoked_or_expired_upload_link_is_not_found(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    share = await upload_link(client, alice)
    ticket = await asked(client, share, name="a.txt", size=1)
    revoked = await client.delete(f"/shares/{share['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    upload_id = ticket["upload"]["id"]
    for response in (
        await ask(client, share, name="b.txt", size=1),
        await finish(client, share, upload_id),
        await client.delete(link(share, f"/uploads/{upload_id}"), headers=JSON),
        await client.get(link(share), headers=JSON),
    ):
        assert error(response) == (404, "share_not_found")
    # The upload stays the owner's: it still confirms.
    assert (await put(ticket["upload"], b"1")).status_code == 200
    done = await client.post(f"/files/uploads/{upload_id}/complete", headers=alice.headers)
    assert done.status_code == 200, done.text
    async with app.state.sessionmaker() as session:
        assert (await session.scalar(select(Upload.share_id))) is None

    expiring = await upload_link(client, alice, "/later/")
    await asked(client, expiring, name="a.txt", size=1)
    await expire(app, expiring["id"])
    assert error(await ask(client, expiring, name="b.txt", size=1)) == (404, "share_not_found")


async def test_follow_ups_reach_only_the_links_own_uploads(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    share = await upload_link(client, alice)
    other = await upload_link(client, alice, "/other/")
    bobs = await upload_link(client, bob)
    own = (await intent(client, alice, path="/inbox/mine.txt", size=1)).json()["upload"]["id"]
    others = (await asked(client, other, name="x.txt", size=1))["upload"]["id"]
    bob_id = (await asked(client, bobs, name="x.txt", size=1))["upload"]["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    for upload_id in (own, others, bob_id, missing):
        for response in (
            await finish(client, share, upload_id),
            await client.delete(link(share, f"/uploads/{upload_id}"), headers=JSON),
            await client.post(
                link(share, f"/uploads/{upload_id}/parts"), json={"parts": [{"number": 1}]}
            ),
            await client.get(link(share, f"/uploads/{upload_id}/parts")),
        ):
            assert error(response) == (404, "upload_not_found"), upload_id
    assert error(await finish(client, share, "not-a-uuid"))[0] == 422

    mine = await asked(client, share, name="y.txt", size=1)
    assert (await client.delete(link(share, f"/uploads/{mine['upload']['id']}"))).status_code == 204
    state = await client.get(f"/files/uploads/{mine['upload']['id']}", headers=alice.headers)
    assert state.json()["status"] == "aborted"
    closed = await finish(client, share, mine["upload"]["id"])
    assert error(closed) == (409, "upload_closed")
    single = await client.post(
        link(share, f"/uploads/{others}/parts"), json={"parts": [{"number": 1}]}
    )
    assert single.status_code == 404


async def test_a_password_upload_link_needs_unlocking(
    client: httpx.AsyncClient, alice: Account
) -> None:
    share = await upload_link(client, alice, password="drop here")
    assert error(await ask(client, share, name="a.txt", size=1)) == (401, "share_locked")
    assert error(await client.get(link(share), headers=JSON)) == (401, "share_locked")
    assert (await unlock(client, share, "drop here")).status_code == 204
    await sent(client, share, "a.txt", b"1")  # the client keeps the cookie
    assert [f["path"] for f in await listed(client, alice)] == ["/inbox/a.txt"]


async def test_multipart_through_the_link_end_to_end(
    client: httpx.AsyncClient, alice: Account
) -> None:
    share = await upload_link(client, alice)
    body = bytes(range(256)) * (6 * MIB // 256) + b"tail"
    ticket = await asked(client, share, name="big.bin", size=len(body), part_size=5 * MIB)
    upload = ticket["upload"]
    assert (upload["method"], upload["part_size"], upload["part_count"]) == (
        "multipart",
        5 * MIB,
        2,
    )
    part_size, count = upload["part_size"], upload["part_count"]
    signed = await client.post(
        link(share, f"/uploads/{upload['id']}/parts"),
        json={"parts": [{"number": n} for n in range(1, count + 1)]},
    )
    assert signed.status_code == 200, signed.text
    async with httpx.AsyncClient() as plain:
        for part in signed.json()["parts"]:
            start = (part["number"] - 1) * part_size
            headers = {k: v for k, v in part["headers"].items() if k != "Content-Length"}
            stored_part = await plain.put(
                part["url"], content=body[start : start + part_size], headers=headers
            )
            assert stored_part.status_code == 200, stored_part.text
    held = await client.get(link(share, f"/uploads/{upload['id']}/parts"))
    assert [p["number"] for p in held.json()["parts"]] == list(range(1, count + 1))
    done = await finish(client, share, upload["id"])
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["size"]) == ("completed", len(body))
    assert await content(client, alice, "/inbox/big.bin") == body


async def test_intents_are_logged_without_the_token_or_urls(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    share = await upload_link(client, alice)
    with caplog.at_level(logging.INFO):
        ticket = await asked(client, share, name="a.txt", size=1)
        await put(ticket["upload"], b"1")
        await finish(client, share, ticket["upload"]["id"])
    token = urlsplit(share["url"]).path.removeprefix("/s/")
    ours = [record for record in caplog.records if record.name != "httpx"]
    messages = [record.getMessage() for record in ours]
    assert "share upload issued" in messages and "share upload completed" in messages
    logged = "\n".join(JsonFormatter().format(record) for record in ours)
    assert token not in logged
    assert ticket["upload"]["url"].split("?")[1] not in logged


# -- the page ---------------------------------------------------------------------------------


async def test_the_upload_page_is_a_form_and_escapes_the_name(
    client: httpx.AsyncClient, alice: Account
) -> None:
    share = await upload_link(client, alice, '/<i>"x"&/')
    page = await client.get(link(share), headers=HTML)
    assert page.status_code == 200
    assert "&lt;i&gt;&quot;x&quot;&amp;/" in page.text and "<i>" not in page.text
    assert '<form id="share-upload"' in page.text
    assert f'data-link="{urlsplit(share["url"]).path}"' in page.text
    assert '<script src="/static/web/share-upload.js" defer></script>' in page.text
    assert "/static/web/style.css" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self' http" in policy
    script = await client.get("http://test/static/web/share-upload.js")
    assert script.status_code == 200
    assert "/upload" in script.text and "innerHTML" not in script.text
