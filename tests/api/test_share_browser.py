"""Share links in a real Chromium (as in ``test_web_browser``), against ``make run``'s stack.

The owner shares a file (with a password and a download limit) and a folder through the page's
Share dialog, copies the links and finds them in My shares; a separate anonymous context (no
token, no cookie) opens both share pages, gets the password form (a wrong password shows the
error), downloads the file, one file of the folder and the folder's zip; once the owner revokes
them in My shares, the anonymous pages are the 404 page. The server's state is checked through
the API after each step, and neither context reports a Content-Security-Policy violation.
"""

import asyncio
import io
import os
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Download, Page

from tests.api.test_web_browser import PolicyWatch, Service, _shot, browser, running_service

__all__ = ["browser", "running_service"]  # the fixtures: Chromium, make run's stack

DAY = 24 * 3600


async def _account(
    base_url: str, login: str, password: str, files: dict[str, bytes]
) -> httpx.AsyncClient:
    """An account holding ``files`` (uploaded through the API) and a client signed in as it."""
    http = httpx.AsyncClient(base_url=f"{base_url}/api/v1")
    created = await http.post("/user/register", json={"login": login, "password": password})
    assert created.status_code == 201, created.text
    token = await http.post("/user/auth", json={"login": login, "password": password})
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    for path, body in files.items():
        stored = await http.post("/files/upload", data={"path": path}, files={"file": body})
        assert stored.status_code in {200, 201}, stored.text
    return http


async def _shares(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    listed = await http.get("/shares")
    assert listed.status_code == 200, listed.text
    return {share["path"]: share for share in listed.json()["shares"]}


async def _saved(download: Download, tmp_path: Path) -> bytes:
    target = tmp_path / f"{time.time_ns()}-{download.suggested_filename}"
    await download.save_as(target)
    return target.read_bytes()


async def _downloads(
    http: httpx.AsyncClient, expected: dict[str, int], seconds: float = 10.0
) -> dict[str, int]:
    """Each share's ``downloads``, polled until ``expected`` (or ``seconds`` pass): unlimited
    shares count in a per-process tally written every ``FILESTORE_SHARE_COUNT_FLUSH_SECONDS``."""
    deadline = time.monotonic() + seconds
    while True:
        seen = {path: share["downloads"] for path, share in (await _shares(http)).items()}
        if seen == expected or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.25)


def _near(iso: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(iso) - expected) < timedelta(minutes=2)


async def _share_through_the_dialog(
    page: Page, row: str, *, expiry: str, days: str | None = None, **fields: str
) -> str:
    """Open a row's Share dialog, fill it, create the link, copy it; the link from its field."""
    await page.locator(row).get_by_role("button", name="Share").click()
    await page.wait_for_selector("#share-dialog[open] #share-form:not([hidden])")
    await page.select_option("#share-expiry", expiry)
    if days is not None:
        await page.fill("#share-days", days)
    for selector, value in fields.items():
        await page.fill(f"#share-{selector}", value)
    await _shot(page, "9-share-form")
    await page.click("#share-create")
    await page.wait_for_selector("#share-result:not([hidden])")
    url = await page.input_value("#share-url")
    await page.click("#share-copy")
    await page.wait_for_selector("#share-copied:not([hidden])")
    assert await page.evaluate("() => navigator.clipboard.readText()") == url
    return url


async def test_the_page_shares_a_file_and_a_folder_that_an_anonymous_browser_downloads(
    browser: Browser, running_service: Service, tmp_path: Path
) -> None:
    base_url, _, _ = running_service
    login, password = f"share{time.time_ns() % 10**10}", "share-pass-1234"
    report = os.urandom(300 * 1024 + 5)
    http = await _account(
        base_url,
        login,
        password,
        {
            "/report.bin": report,
            "/docs/notes.txt": b"hello",
            "/docs/sub/2.txt": b"two",
            "/inbox/readme.txt": b"send here",
        },
    )
    owner = await browser.new_context(viewport={"width": 1300, "height": 800})
    await owner.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    anonymous = await browser.new_context(
        accept_downloads=True, viewport={"width": 1000, "height": 700}
    )
    owner_watch, anonymous_watch = PolicyWatch(), PolicyWatch()
    await owner_watch.attach(owner)
    await anonymous_watch.attach(anonymous)
    page = await owner.new_page()
    visitor = await anonymous.new_page()
    try:
        await page.goto(f"{base_url}/")
        await page.fill("#login", login)
        await page.fill("#password", password)
        await page.click("#signin-button")
        await page.wait_for_selector('tr[data-path="/report.bin"]')

        # A file: 1 day, a password, at most 5 downloads; no upload-link choice for a file.
        file_share_button = page.locator('tr[data-path="/report.bin"]').get_by_role(
            "button", name="Share"
        )
        await file_share_button.click()
        assert await page.locator("#share-upload-row").is_hidden()
        await page.click("#share-dialog [data-close] >> nth=0")
        file_url = await _share_through_the_dialog(
            page, 'tr[data-path="/report.bin"]', expiry="86400", password="open sesame", max="5"
        )
        assert file_url.startswith(f"{base_url}/s/")
        await _shot(page, "9-share-link")
        await page.click("#share-result [data-close]")
        # A folder: a number of days (3); the upload-link choice is offered, left unticked.
        await page.locator('tr[data-folder="/docs/"]').get_by_role("button", name="Share").click()
        assert await page.locator("#share-upload-row").is_visible()
        assert await page.locator("#share-days-row").is_hidden()
        await page.click("#share-dialog [data-close] >> nth=0")
        folder_url = await _share_through_the_dialog(
            page, 'tr[data-folder="/docs/"]', expiry="days", days="3"
        )
        assert folder_url.startswith(f"{base_url}/s/") and folder_url != file_url
        await page.click("#share-result [data-close]")
        # An upload link: ticking it hides the download limit (an upload link counts none).
        await page.locator('tr[data-folder="/inbox/"]').get_by_role("button", name="Share").click()
        assert await page.locator("#share-max-row").is_visible()
        await page.check("#share-upload")
        assert await page.locator("#share-max-row").is_hidden()
        await page.select_option("#share-expiry", "3600")
        await page.click("#share-create")
        await page.wait_for_selector("#share-result:not([hidden])")
        inbox_url = await page.input_value("#share-url")
        assert inbox_url.startswith(f"{base_url}/s/") and inbox_url not in {file_url, folder_url}
        await page.click("#share-result [data-close]")

        now = datetime.now(UTC)
        shares = await _shares(http)
        assert set(shares) == {"/report.bin", "/docs/", "/inbox/"}
        file_share, folder_share = shares["/report.bin"], shares["/docs/"]
        inbox_share = shares["/inbox/"]
        assert (inbox_share["kind"], inbox_share["upload"], inbox_share["max_downloads"]) == (
            "folder",
            True,
            None,
        )
        assert _near(inbox_share["expires_at"], now + timedelta(hours=1))
        assert not file_share["upload"] and not folder_share["upload"]
        assert (file_share["kind"], file_share["has_password"], file_share["max_downloads"]) == (
            "file",
            True,
            5,
        )
        assert _near(file_share["expires_at"], now + timedelta(days=1))
        assert (folder_share["kind"], folder_share["has_password"]) == ("folder", False)
        assert folder_share["max_downloads"] is None
        assert _near(folder_share["expires_at"], now + timedelta(days=3))

        # My shares: all three, with the links this tab made, their state and Copy link.
        await page.click("#shares-link")
        file_row = page.locator(f'#shares-listing tr[data-share="{file_share["id"]}"]')
        folder_row = page.locator(f'#shares-listing tr[data-share="{folder_share["id"]}"]')
        await file_row.wait_for()
        assert await file_row.locator("input").input_value() == file_url
        assert await folder_row.locator("input").input_value() == folder_url
        cells = await file_row.locator("td").all_text_contents()
        assert (cells[0], cells[3], cells[4]) == ("/report.bin", "yes", "0 / 5")
        assert (await folder_row.locator("td").all_text_contents())[3:5] == ["no", "0"]
        inbox_row = page.locator(f'#shares-listing tr[data-share="{inbox_share["id"]}"]')
        assert await inbox_row.locator("input").input_value() == inbox_url
        assert (await inbox_row.locator("td").first.text_content()) == "/inbox/ (upload link)"
        page.once("dialog", lambda dialog: dialog.accept())  # "Revoke the link to …?"
        await inbox_row.get_by_role("button", name="Revoke").click()
        await inbox_row.wait_for(state="detached")
        assert set(await _shares(http)) == {"/report.bin", "/docs/"}
        gone = await visitor.goto(inbox_url)
        assert gone is not None and gone.status == 404
        await folder_row.get_by_role("button", name="Copy link").click()
        await folder_row.locator("text=Copied.").wait_for()
        assert await page.evaluate("() => navigator.clipboard.readText()") == folder_url
        await _shot(page, "10-my-shares")

        # Anonymous: the password form first; a wrong password is refused on the page.
        opened = await visitor.goto(file_url)
        assert opened is not None and opened.status == 401
        assert (await opened.all_headers())["cache-control"] == "no-store"
        await visitor.fill("input[name=password]", "wrong")
        await visitor.click("button[type=submit]")
        await visitor.wait_for_selector("#error")
        assert await visitor.text_content("#error") == "Wrong password for this share."
        await visitor.fill("input[name=password]", "open sesame")
        await visitor.click("button[type=submit]")
        await visitor.wait_for_selector("h2 >> text=report.bin")
        async with visitor.expect_download() as got:
            await visitor.click("a.button >> text=Download")
        assert (await got.value).suggested_filename == "report.bin"
        assert await _saved(await got.value, tmp_path) == report

        # The folder: its listing, one file, and everything as a zip.
        opened = await visitor.goto(folder_url)
        assert opened is not None and opened.status == 200
        await visitor.wait_for_selector("td >> text=sub/2.txt")
        await _shot(visitor, "11-shared-folder")
        async with visitor.expect_download() as got:
            await visitor.locator("tr", has_text="sub/2.txt").get_by_role("link").click()
        assert (await got.value).suggested_filename == "2.txt"
        assert await _saved(await got.value, tmp_path) == b"two"
        async with visitor.expect_download() as got:
            await visitor.click("text=Download everything (zip)")
        assert (await got.value).suggested_filename == "docs.zip"
        with zipfile.ZipFile(io.BytesIO(await _saved(await got.value, tmp_path))) as archive:
            assert sorted(archive.namelist()) == ["notes.txt", "sub/2.txt"]
            assert archive.read("notes.txt") == b"hello"
            assert archive.read("sub/2.txt") == b"two"
        # The file's limit counts at once; the folder's, unlimited, once its process flushes.
        counted = {"/report.bin": 1, "/docs/": 2}
        assert await _downloads(http, counted) == counted

        # The owner revokes both in My shares; the anonymous pages are the 404 page at once.
        await page.reload()
        await file_row.wait_for()
        assert (await file_row.locator("td").all_text_contents())[4] == "1 / 5"
        page.once("dialog", lambda dialog: dialog.accept())  # "Revoke the link to …?"
        await folder_row.get_by_role("button", name="Revoke").click()
        await folder_row.wait_for(state="detached")
        assert set(await _shares(http)) == {"/report.bin"}
        gone = await visitor.reload()  # the folder's page, still open
        assert gone is not None and gone.status == 404
        assert await visitor.text_content("h2") == "Nothing here"
        await _shot(visitor, "12-revoked")
        page.once("dialog", lambda dialog: dialog.accept())
        await file_row.get_by_role("button", name="Revoke").click()
        await file_row.wait_for(state="detached")
        gone = await visitor.goto(file_url)  # unlocked before: the cookie does not matter
        assert gone is not None and gone.status == 404
        assert await visitor.text_content("h2") == "Nothing here"
        assert await _shares(http) == {}
        await page.wait_for_selector("#shares-empty:not([hidden])")
        for watch, seen in ((owner_watch, page), (anonymous_watch, visitor)):
            assert await watch.events(seen) == [], await watch.events(seen)
            assert watch.console == [], watch.console
    finally:
        await owner.close()
        await anonymous.close()
        await http.aclose()
