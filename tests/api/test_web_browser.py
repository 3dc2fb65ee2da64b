"""The web page at ``/`` and the interactive docs in a real Chromium (Debian's, launched by
``executable_path``; ``scripts/ensure-browser.sh`` installs it), against ``make run``'s stack.

The page registers, uploads two files through its file input (one a multipart upload) straight
to storage, lists them, downloads one (bytes compared), deletes one after the confirmation, and
shows the API's ``detail`` on an error. ``/docs`` and ``/redoc`` load with every request to
anything but the API refused, and Swagger UI's Authorize signs in. Through all of it, no
Content-Security-Policy violation is reported (``securitypolicyviolation`` events and console
messages both), and the token stays out of ``localStorage``. Screenshots of each state go to
``artifacts/screenshots/`` (git-ignored).
"""

import hashlib
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    async_playwright,
)

from tests.api.test_e2e import running_service
from tests.helpers import ROOT

__all__ = ["running_service"]  # the e2e fixture: make run's stack on free ports

pytestmark = pytest.mark.e2e

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MIB = 1024 * 1024
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
Service = tuple[str, int, subprocess.Popen[bytes]]
# Each page records the violations its policy reports (before any of its own scripts run).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class PolicyWatch:
    """The Content-Security-Policy violations a context's pages report, as events and in the
    console (where the browser also says what it blocked)."""

    def __init__(self) -> None:
        self.console: list[str] = []

    async def attach(self, context: BrowserContext) -> None:
        await context.add_init_script(RECORD_VIOLATIONS)
        context.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    @staticmethod
    async def events(page: Page) -> list[str]:
        found: list[str] = await page.evaluate("window.__csp")
        return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        message = "chromium is not installed: run scripts/ensure-browser.sh (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_the_page_signs_in_uploads_lists_downloads_and_deletes(
    browser: Browser, running_service: Service, tmp_path: Path
) -> None:
    base_url, s3_port, _ = running_service
    small, big = tmp_path / "notes.txt", tmp_path / "video.bin"
    small.write_bytes(b"hello from the web page\n" * 40)
    big.write_bytes(os.urandom(20 * MIB + 7))  # above the page's 16 MiB: a multipart upload
    login = f"web{time.time_ns() % 10**10}"

    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 1100, "height": 700}
    )
    watch = PolicyWatch()
    await watch.attach(context)
    page = await context.new_page()
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    try:
        served = await page.goto(f"{base_url}/")
        assert served is not None
        assert "script-src 'self';" in (await served.all_headers())["content-security-policy"]
        await page.wait_for_selector("#auth:not([hidden])")
        await page.fill("#login", login)
        await page.fill("#password", "web-pass-1234")
        await _shot(page, "1-sign-in")
        await page.click("#register")
        await page.wait_for_selector("body[data-signed-in=true] #files:not([hidden])")
        await page.wait_for_selector("#empty:not([hidden])")
        # The token is this tab's: in sessionStorage, never in localStorage.
        assert await page.evaluate("sessionStorage.getItem('filestore.token')")
        assert await page.evaluate("localStorage.getItem('filestore.token')") is None

        await page.fill("#folder-name", "reports")
        await page.click("#newfolder button")
        await page.click('tr[data-folder="/reports/"] a')
        # Predicates as functions: a string one is eval'd in the page, which the policy refuses.
        await page.wait_for_function("() => location.hash === '#/reports/'")
        await page.set_input_files("#picker", [str(small), str(big)])
        await page.wait_for_function(
            "() => window.filestore.uploads.done + window.filestore.uploads.failed >= 2",
            timeout=120_000,
        )
        assert await page.evaluate("window.filestore.uploads.failed") == 0
        await page.wait_for_selector('tr[data-path="/reports/notes.txt"]')
        await page.wait_for_selector('tr[data-path="/reports/video.bin"]')
        await _shot(page, "2-uploaded")

        row = page.locator('tr[data-path="/reports/video.bin"]')
        async with page.expect_download() as download_info:
            await row.get_by_role("button", name="Download").click()
        download = await download_info.value
        saved = tmp_path / "downloaded.bin"
        await download.save_as(saved)
        assert download.suggested_filename == "video.bin"
        assert (
            hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
        )
        # Signed in, uploaded (one PUT and parts), listed, downloaded: nothing was blocked.
        assert await watch.events(page) == [], await watch.events(page)
        assert watch.console == [], watch.console

        page.once("dialog", lambda dialog: dialog.accept())  # "Move … to the trash?"
        await (
            page.locator('tr[data-path="/reports/notes.txt"]')
            .get_by_role("button", name="Delete")
            .click()
        )
        await page.wait_for_selector('tr[data-path="/reports/notes.txt"]', state="detached")
        await page.click("#crumbs a >> text=Home")
        folder_row = page.locator('tr[data-folder="/reports/"]')
        await folder_row.wait_for()
        # "Modified" holds the folder's time, as for a file; the finished uploads' rows stayed
        # in the folder they went to.
        modified = await folder_row.locator("td.modified").text_content()
        assert modified and any(c.isdigit() for c in modified)
        assert await page.locator("#uploads li").count() == 0
        await _shot(page, "3-home-after-delete")

        await page.click("#signout")
        await page.wait_for_selector("#auth:not([hidden])")
        await page.fill("#password", "another-pass-1234")
        await page.click("#register")  # the same login again
        await page.wait_for_selector("#error:not([hidden])")
        assert await page.text_content("#error") == "This login is already registered."
        await _shot(page, "4-error")
        assert await watch.events(page) == [], await watch.events(page)
        assert watch.console == [], watch.console

        # The watch sees what the policy blocks: an injected inline script does not run.
        await page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.injected = true"; document.body.append(s); }"""
        )
        await page.wait_for_function("() => window.__csp.length > 0")
        assert await page.evaluate("window.injected") is None
        assert [v.split()[0] for v in await watch.events(page)] == ["script-src-elem"]
    finally:
        await context.close()

    # Every request went to the API or to storage, both on this machine.
    assert hosts <= {urlsplit(base_url).netloc, f"127.0.0.1:{s3_port}"}, hosts
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as http:
        token = await http.post("/user/auth", json={"login": login, "password": "web-pass-1234"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        files = (await http.get("/files", headers=headers)).json()["files"]
    assert [(f["path"], f["size"]) for f in files] == [("/reports/video.bin", big.stat().st_size)]


async def _seeded_account(base_url: str, login: str, password: str) -> dict[str, str]:
    """An account with a tree to browse (through the API: the page's own uploads are the other
    test's), and its token's headers."""
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as http:
        created = await http.post("/user/register", json={"login": login, "password": password})
        assert created.status_code == 201, created.text
        token = await http.post("/user/auth", json={"login": login, "password": password})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        seeded = [(f"/big/f{n}.txt", f"file {n}".encode()) for n in range(5)]
        seeded += [("/docs/a.txt", b"old words"), ("/docs/a.txt", b"newer words")]
        seeded += [("/docs/sub/x.txt", b"x"), ("/report-final.txt", b"r"), ("/loose.txt", b"l")]
        for path, body in seeded:
            stored = await http.post(
                "/files/upload", headers=headers, data={"path": path}, files={"file": body}
            )
            assert stored.status_code in {200, 201}, stored.text
    return headers


async def _api(
    base_url: str, headers: dict[str, str], method: str, path: str, **kw: object
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as http:
        return await http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


async def _children(base_url: str, headers: dict[str, str], folder: str) -> list[str]:
    body = (await _api(base_url, headers, "GET", "/folders", params={"path": folder})).json()
    return [f"{f['name']}/" for f in body["folders"]] + [f["name"] for f in body["files"]]


async def test_the_page_browses_folders_moves_searches_and_keeps_versions_and_a_trash(
    browser: Browser, running_service: Service, tmp_path: Path
) -> None:
    """Folders through GET /folders a page at a time (never GET /files), a folder's zip, new
    folder, rename, move by the picker and by drag and drop, a 409 shown, search, versions
    (download, restore), delete with a confirmation into the trash, and the trash view
    (restore, delete forever, empty). The server's state is checked through the API after each
    step."""
    base_url, _, _ = running_service
    login, password = f"tree{time.time_ns() % 10**10}", "tree-pass-1234"
    headers = await _seeded_account(base_url, login, password)
    context = await browser.new_context(
        accept_downloads=True, viewport={"width": 1200, "height": 800}
    )
    watch = PolicyWatch()
    await watch.attach(context)
    page = await context.new_page()
    listings: list[str] = []
    page.on(
        "request",
        lambda request: (
            listings.append(request.url)
            if urlsplit(request.url).path == "/api/v1/files" and request.method == "GET"
            else None
        ),
    )

    def accept(text: str | None = None) -> None:
        """Answer the next dialog (a confirm, or a prompt with ``text``) with OK."""
        page.once("dialog", lambda dialog: dialog.accept(text) if text else dialog.accept())

    try:
        await page.goto(f"{base_url}/")
        await page.fill("#login", login)
        await page.fill("#password", password)
        await page.click("#signin-button")
        await page.wait_for_selector('tr[data-folder="/big/"]')
        assert await page.locator("#listing tbody tr").count() == 4  # big/ docs/ + 2 files

        # A folder downloads as a zip of what lies below it.
        async with page.expect_download() as zip_info:
            await page.locator('tr[data-folder="/big/"]').get_by_role("button", name="Zip").click()
        zipped = await zip_info.value
        assert zipped.suggested_filename == "big.zip"
        await zipped.save_as(tmp_path / "big.zip")
        with zipfile.ZipFile(tmp_path / "big.zip") as archive:
            assert sorted(archive.namelist()) == [f"f{n}.txt" for n in range(5)]
            assert archive.read("f3.txt") == b"file 3"

        # Paging: two entries a page in a five-file folder, "Load more" until the end.
        await page.evaluate("() => { window.filestore.pageSize = 2; }")
        await page.click('tr[data-folder="/big/"] a')
        await page.wait_for_selector('tr[data-path="/big/f1.txt"]')
        rows = page.locator("#listing tbody tr")
        assert await rows.count() == 2
        for expected in (4, 5):
            await page.click("#more")
            await page.wait_for_function(
                "(n) => document.querySelectorAll('#listing tbody tr').length === n", arg=expected
            )
        assert await page.locator("#more").is_hidden()
        await page.evaluate("() => { window.filestore.pageSize = 100; }")

        # A new folder is listed while empty.
        await page.click("#crumbs a >> text=Home")
        await page.fill("#folder-name", "empty")
        await page.click("#newfolder button")
        await page.wait_for_selector('tr[data-folder="/empty/"]')
        assert "empty/" in await _children(base_url, headers, "/")

        # Rename a file and a folder; a rename onto another file's name shows the API's 409.
        accept("report.txt")
        await (
            page.locator('tr[data-path="/report-final.txt"]')
            .get_by_role("button", name="Rename")
            .click()
        )
        await page.wait_for_selector('tr[data-path="/report.txt"]')
        accept("papers")
        await page.locator('tr[data-folder="/docs/"]').get_by_role("button", name="Rename").click()
        await page.wait_for_selector('tr[data-folder="/papers/"]')
        assert await _children(base_url, headers, "/papers/") == ["sub/", "a.txt"]
        accept("loose.txt")
        await (
            page.locator('tr[data-path="/report.txt"]').get_by_role("button", name="Rename").click()
        )
        await page.wait_for_selector("#error:not([hidden])")
        assert "'/loose.txt' exists" in (await page.text_content("#error") or "")

        # Move by the folder picker, then by drag and drop onto a folder row.
        await page.locator('tr[data-path="/report.txt"]').get_by_role("button", name="Move").click()
        await page.click("#move-folders button >> text=empty/")
        await page.wait_for_function(
            "() => document.querySelector('#move-target').textContent === '/empty/'"
        )
        await page.click("#move-here")
        await page.wait_for_selector('tr[data-path="/report.txt"]', state="detached")
        assert await _children(base_url, headers, "/empty/") == ["report.txt"]
        await page.drag_and_drop('tr[data-path="/loose.txt"]', 'tr[data-folder="/big/"]')
        await page.wait_for_selector('tr[data-path="/loose.txt"]', state="detached")
        assert "loose.txt" in await _children(base_url, headers, "/big/")
        await _shot(page, "7-folders")

        # Search from Home finds a file below; clearing it shows the folder again.
        await page.fill("#search-text", "LOOSE")
        await page.click("#search button[type=submit]")
        await page.wait_for_selector('tr[data-path="/big/loose.txt"]')
        assert await page.locator("#listing tbody tr").count() == 1
        await page.click("#search-clear")
        await page.wait_for_selector('tr[data-folder="/papers/"]')

        # Versions: the earlier content downloads, and restoring it makes it current.
        await page.click('tr[data-folder="/papers/"] a')
        await (
            page.locator('tr[data-path="/papers/a.txt"]')
            .get_by_role("button", name="Versions")
            .click()
        )
        versions = page.locator("#versions-listing tbody tr")
        await versions.nth(1).wait_for()
        assert await versions.count() == 2
        async with page.expect_download() as download_info:
            await versions.nth(1).get_by_role("button", name="Download").click()
        saved = tmp_path / "old.txt"
        await (await download_info.value).save_as(saved)
        assert saved.read_bytes() == b"old words"
        await versions.nth(1).get_by_role("button", name="Restore").click()
        await page.wait_for_selector("#versions-dialog", state="hidden")
        restored = await _api(
            base_url,
            headers,
            "GET",
            "/files/download",
            params={"path": "/papers/a.txt", "proxy": "true"},
        )
        assert restored.content == b"old words"

        # Delete a folder: cancelling keeps it, confirming moves it to the trash.
        await page.click("#crumbs a >> text=Home")
        page.once("dialog", lambda dialog: dialog.dismiss())
        await (
            page.locator('tr[data-folder="/papers/"]').get_by_role("button", name="Delete").click()
        )
        await page.wait_for_timeout(300)
        assert "papers/" in await _children(base_url, headers, "/")
        accept()
        await (
            page.locator('tr[data-folder="/papers/"]').get_by_role("button", name="Delete").click()
        )
        await page.wait_for_selector('tr[data-folder="/papers/"]', state="detached")
        assert "papers/" not in await _children(base_url, headers, "/")

        # The trash: restore the folder, delete a file forever, empty the rest.
        await page.click("#trash-link")
        await page.wait_for_selector('#trash-listing tr[data-path="/papers/"]')
        await _shot(page, "8-trash")
        await (
            page.locator('#trash-listing tr[data-path="/papers/"]')
            .get_by_role("button", name="Restore")
            .click()
        )
        await page.wait_for_selector('#trash-listing tr[data-path="/papers/"]', state="detached")
        assert await _children(base_url, headers, "/papers/") == ["sub/", "a.txt"]
        for path in ("/empty/report.txt", "/big/f0.txt"):
            assert (
                await _api(base_url, headers, "DELETE", "/files", params={"path": path})
            ).status_code == 204
        await page.reload()
        await page.wait_for_selector('#trash-listing tr[data-path="/big/f0.txt"]')
        accept()
        await (
            page.locator('#trash-listing tr[data-path="/big/f0.txt"]')
            .get_by_role("button", name="Delete forever")
            .click()
        )
        await page.wait_for_selector('#trash-listing tr[data-path="/big/f0.txt"]', state="detached")
        accept()
        await page.click("#empty-trash")
        await page.wait_for_selector("#trash-empty:not([hidden])")
        assert (await _api(base_url, headers, "GET", "/trash")).json()["entries"] == []
        assert await watch.events(page) == [], await watch.events(page)
        assert watch.console == [], watch.console
    finally:
        await context.close()
    assert listings == [], listings  # never the whole subtree


async def test_docs_and_redoc_load_offline_and_authorize_signs_in(
    browser: Browser, running_service: Service
) -> None:
    base_url, _, _ = running_service
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as http:
        login = f"docs{time.time_ns() % 10**10}"
        created = await http.post(
            "/user/register", json={"login": login, "password": "docs-pass-1234"}
        )
        assert created.status_code == 201

    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    refused: list[str] = []

    async def only_the_api(route: Route) -> None:
        if route.request.url.startswith(base_url):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_api)
    watch = PolicyWatch()
    await watch.attach(context)
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}/docs")
        await page.wait_for_selector(".swagger-ui .info .title >> text=filestore")
        await page.wait_for_selector('[data-path="/api/v1/files/upload"]')
        await page.click("button.authorize")
        await page.fill("#oauth_username", login)
        await page.fill("#oauth_password", "docs-pass-1234")
        async with page.expect_response(lambda r: r.url.endswith("/api/v1/user/auth")) as auth:
            await page.click(".auth-btn-wrapper button.authorize")
        assert (await auth.value).status == 200
        await page.wait_for_selector('button[aria-label="Remove authorization"]')
        await _shot(page, "5-docs-authorized")
        await page.click("button.btn-done")

        # The token is used: "Try it out" on GET /files answers 200 with the account.
        await page.click("#operations-files-list_files_api_v1_files_get .opblock-summary")
        await page.click("#operations-files-list_files_api_v1_files_get .try-out__btn")
        async with page.expect_response(lambda r: "/api/v1/files?" in r.url) as listed:
            await page.click("#operations-files-list_files_api_v1_files_get .execute")
        answer = await listed.value
        assert answer.status == 200
        assert (await answer.json())["account"] == login
        assert await watch.events(page) == [], await watch.events(page)

        await page.goto(f"{base_url}/redoc")
        await page.wait_for_selector("h1 >> text=filestore")
        await page.fill("input.search-input", "upload")  # its search runs in a blob worker
        await page.wait_for_selector('[data-role="search:results"] li[role=menuitem]')
        await _shot(page, "6-redoc")
        assert await watch.events(page) == [], await watch.events(page)
    finally:
        await context.close()
    assert refused == []
    assert watch.console == [], watch.console


async def test_an_upload_links_page_sends_a_file_into_the_owners_folder(
    browser: Browser, running_service: Service, tmp_path: Path
) -> None:
    """Someone with an upload link (no account) picks a file on the link's page: it goes to
    storage with one presigned PUT and lands in the owner's folder; nothing is blocked."""
    base_url, _, _ = running_service
    api = f"{base_url}/api/v1"
    login, password = f"drop{time.time_ns() % 10**10}", "drop-pass-1234"
    async with httpx.AsyncClient() as http:
        assert (
            await http.post(f"{api}/user/register", json={"login": login, "password": password})
        ).status_code == 201
        token = (
            await http.post(f"{api}/user/auth", json={"login": login, "password": password})
        ).json()["access_token"]
        owner = {"Authorization": f"Bearer {token}"}
        made = await http.post(
            f"{api}/shares", json={"path": "/inbox/", "upload": True}, headers=owner
        )
        assert made.status_code == 201, made.text
        link = urlsplit(made.json()["url"]).path
    picked = tmp_path / "cv.txt"
    picked.write_bytes(b"my cv\n" * 100)

    context = await browser.new_context()
    watch = PolicyWatch()
    await watch.attach(context)
    page = await context.new_page()
    try:
        await page.goto(f"{base_url}{link}")
        await page.wait_for_selector("#share-upload")
        for _ in range(2):  # the second gets a number: nothing is overwritten
            await page.set_input_files("#share-file", [str(picked)])
            await page.click("#share-upload button")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#share-sent li')]"
                ".every((li) => li.textContent.endsWith(': sent'))"
                " && document.querySelectorAll('#share-sent li').length > 0",
                timeout=60_000,
            )
        await page.wait_for_function(
            "() => document.querySelectorAll('#share-sent li').length === 2"
        )
        lines = await page.locator("#share-sent li").all_text_contents()
        assert lines == ["cv.txt: sent", "cv (1).txt: sent"], lines
        await _shot(page, "share-upload")
        assert await watch.events(page) == [], await watch.events(page)
        assert watch.console == [], watch.console
    finally:
        await context.close()
    async with httpx.AsyncClient() as http:
        files = (await http.get(f"{api}/files", params={"path": "/inbox/"}, headers=owner)).json()
    assert sorted((f["name"], f["size"]) for f in files["files"]) == [
        ("cv (1).txt", 600),
        ("cv.txt", 600),
    ]
