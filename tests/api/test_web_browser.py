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

        page.once("dialog", lambda dialog: dialog.accept())
        await (
            page.locator('tr[data-path="/reports/notes.txt"]')
            .get_by_role("button", name="Delete")
            .click()
        )
        await page.wait_for_selector('tr[data-path="/reports/notes.txt"]', state="detached")
        await page.click("#crumbs a >> text=Home")
        folder_row = page.locator('tr[data-folder="/reports/"]')
        await folder_row.wait_for()
        # The folder's count sits by its name; "Modified" holds its newest file's time, as for
        # a file; the finished uploads' rows stayed in the folder they went to.
        assert await folder_row.locator(".count").text_content() == "1 file"
        modified = await folder_row.locator("td.modified").text_content()
        assert modified and "file" not in modified and any(c.isdigit() for c in modified)
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
