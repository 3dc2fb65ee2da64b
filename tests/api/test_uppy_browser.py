"""The Uppy example page in a real Chromium, served from another origin than the API.

`make run`'s stack (API, worker, SeaweedFS with its webhook and bucket CORS rule) runs as a
process; the page comes from this test's own static server. Uppy 6 uploads a small file (a POST
policy) and a 150 MiB one (multipart, every request signed by ``/files/uploads/sign``) straight
to storage; storage's notification makes the worker confirm both, and the listing shows them.

Needs Debian's chromium and the built page (``scripts/ensure-browser.sh``, which ``make test``
runs). Without them the test fails in CI and is skipped with a message elsewhere.
"""

import asyncio
import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from scripts.seaweed import free_port
from tests.api.test_e2e import running_service
from tests.helpers import ROOT

__all__ = ["running_service"]  # the e2e fixture: make run's stack on free ports

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "uppy"
MIB = 1024 * 1024
BIG_SIZE = 150 * MIB
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing() -> str | None:
    if shutil.which("chromium") is None:
        return "chromium is not installed"
    if not (EXAMPLE / "dist" / "app.js").exists():
        return "examples/uppy is not built"
    return None


@pytest.fixture(scope="module")
def browser_ready() -> None:
    missing = _missing()
    if missing is None:
        return
    message = f"{missing}: run scripts/ensure-browser.sh (make test does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The example page on its own origin (``localhost``, another port than the API's)."""
    port = free_port()
    handler = functools.partial(_Quiet, directory=str(EXAMPLE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _write_big(path: Path) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for index in range(BIG_SIZE // MIB):
            out.write(index.to_bytes(8, "big") + block[8:])


async def test_uppy_uploads_a_small_and_a_multipart_file_from_another_origin(
    browser_ready: None,
    running_service: tuple[str, int, subprocess.Popen[bytes]],
    page_origin: str,
    tmp_path: Path,
) -> None:
    base_url, _, _ = running_service
    api = f"{base_url}/api/v1"
    small, big = tmp_path / "hello.txt", tmp_path / "big.bin"
    small.write_bytes(b"hello from uppy\n")
    await asyncio.to_thread(_write_big, big)
    async with httpx.AsyncClient(base_url=api, timeout=30) as http_client:
        login, password = f"uppy{time.time_ns() % 10**9}", "browser-pass-1234"
        registered = await http_client.post(
            "/user/register", json={"login": login, "password": password}
        )
        assert registered.status_code == 201, registered.text
        token = (
            await http_client.post("/user/auth", json={"login": login, "password": password})
        ).json()["access_token"]

        started = time.monotonic()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))
                await page.goto(f"{page_origin}/index.html?api={api}")
                await page.fill("#login", login)
                await page.fill("#password", password)
                await page.click("#signin button")
                await page.wait_for_selector("body[data-ready=true]", timeout=15_000)
                await page.fill("#folder", "/from-uppy/")
                chooser = page.locator("input.uppy-Dashboard-input").first
                await chooser.set_input_files([str(small), str(big)])
                await page.wait_for_function(
                    "window.filestore.results.length + window.filestore.errors.length >= 2",
                    timeout=240_000,
                    polling=500,
                )
                errors = await page.evaluate("window.filestore.errors")
                results = await page.evaluate("window.filestore.results")
                parts = await page.evaluate("window.filestore.parts")
            finally:
                await browser.close()
        assert errors == [], (errors, console[-20:])
        assert sorted(r["name"] for r in results) == ["big.bin", "hello.txt"]
        assert all(r["key"].startswith("uploads/") for r in results)
        # Uppy sends files over 100 MB as multipart, each part signed by the API.
        assert parts.get("big.bin", 0) >= 2, parts
        assert "hello.txt" not in parts

        # Storage notifies the API, the worker confirms: both appear with their sizes.
        expected = {"/from-uppy/hello.txt": small.stat().st_size, "/from-uppy/big.bin": BIG_SIZE}
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 60
        sizes: dict[str, int] = {}
        while time.monotonic() < deadline:
            files = (await http_client.get("/files", headers=headers)).json()["files"]
            sizes = {file["path"]: file["size"] for file in files}
            if sizes == expected:
                break
            await asyncio.sleep(0.5)
        assert sizes == expected
        elapsed = time.monotonic() - started
        print(f"uppy browser upload (16 B + 150 MiB, confirmed): {elapsed:.1f} s")
        listed = {file["path"]: file for file in files}
        assert listed["/from-uppy/hello.txt"]["content_type"] == "text/plain"
        assert listed["/from-uppy/big.bin"]["content_type"]  # the type Uppy sent to storage
