"""The headers that keep a browser safe, as plain HTTP sees them: the page's and the docs'
Content-Security-Policy word for word, and the baseline every other response carries."""

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.browser_security import BASELINE_HEADERS
from api.main import create_app
from api.pages import WEB_DIR
from infra.config import Settings

NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; sandbox"
BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _page_policy(storage: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self' {storage}; form-action 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _has_baseline(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, (response.url, name)


@pytest.fixture
async def root(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_the_page_has_its_exact_policy(root: httpx.AsyncClient, settings: Settings) -> None:
    page = await root.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == _page_policy(settings.storage.endpoint_url)
    _has_baseline(page)
    assert {name.lower(): value for name, value in BASELINE_HEADERS.items()} == BASELINE


async def test_connect_src_names_the_public_storage_endpoint(
    settings: Settings, app: FastAPI
) -> None:
    public = create_app(
        settings.with_changes(**{"s3_public_endpoint_url": "https://files.example.com/s3"})
    )
    transport = httpx.ASGITransport(app=public)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        page = await http.get("/")
    # An origin, not a path: the presigned URLs' path under it changes with every key.
    assert page.headers["content-security-policy"] == _page_policy("https://files.example.com")


async def test_the_page_runs_no_inline_code() -> None:
    """What the page's policy forbids, its files do not contain."""
    html = (WEB_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script is a file
    assert "<style" not in html
    assert not re.search(r"""\s(on[a-z]+|style)\s*=""", html)
    script = (WEB_DIR / "app.js").read_text()
    assert "localStorage.setItem(TOKEN_KEY" not in script
    assert "sessionStorage.setItem(TOKEN_KEY" in script


async def test_the_docs_allow_their_own_inline_scripts_by_hash(
    root: httpx.AsyncClient, settings: Settings
) -> None:
    for path in ("/docs", "/docs/oauth2-redirect"):
        docs = await root.get(path)
        _has_baseline(docs)
        policy = dict(
            [*directive.split(" ", 1), ""][:2]
            for directive in docs.headers["content-security-policy"].split("; ")
        )
        inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
        assert inline, path
        hashes = {
            f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in inline
        }
        assert set(policy["script-src"].split()) == {"'self'", *hashes}
        assert "'unsafe-inline'" not in policy["script-src"]
        assert policy["connect-src"] == f"'self' {settings.storage.endpoint_url}"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["object-src"] == "'none'"
        assert policy["base-uri"] == "'none'"
    redoc = await root.get("/redoc")
    assert "script-src 'self';" in redoc.headers["content-security-policy"]  # none inline
    assert "worker-src 'self' blob:" in redoc.headers["content-security-policy"]
    # Not persisted: Swagger UI would keep the token in localStorage.
    assert '"persistAuthorization": false' in (await root.get("/docs")).text


async def test_every_other_answer_can_do_nothing_in_a_browser(
    root: httpx.AsyncClient, settings: Settings
) -> None:
    answers = [
        await root.get("/healthz"),
        await root.get("/api/v1/files"),  # 401
        await root.get("/nowhere"),  # 404
        await root.get("/openapi.json"),
        await root.get("/static/web/app.js"),
        await root.options(
            "/api/v1/files",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        ),
    ]
    for answer in answers:
        _has_baseline(answer)
        assert answer.headers["content-security-policy"] == NOTHING, answer.url
    assert answers[1].status_code == 401
    assert answers[-1].status_code == 200  # the preflight still answers
