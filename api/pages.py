"""What a browser gets from the API's host: the web page at ``/`` and the interactive docs.

Swagger UI and ReDoc come from the ``fastapi-offline`` wheel and are served here (no CDN), so
``/docs`` and ``/redoc`` work on a machine without internet. The page (``api/web/``) is plain
HTML and JavaScript, no build step. Each page carries its Content-Security-Policy
(``api.browser_security``).
"""

import functools
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
    swagger_ui_default_parameters,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.browser_security import CSP, docs_policy, inline_script_hashes, page_policy
from infra.config import Settings

DOCS_ASSETS = "/static/docs"
WEB_ASSETS = "/static/web"
WEB_DIR = Path(__file__).resolve().parent / "web"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def _docs_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@functools.cache
def _redoc_bundle() -> bytes:
    """ReDoc's bundle with its sidebar logo pointed at our favicon instead of the CDN."""
    bundle = (_docs_dir() / "redoc.standalone.js").read_bytes()
    return bundle.replace(REDOC_LOGO, f"{DOCS_ASSETS}/favicon.png".encode())


def _with_policy(page: HTMLResponse, settings: Settings) -> HTMLResponse:
    """The docs page under ``docs_policy``, its own inline scripts allowed by hash. The docs
    may only load what this host serves: ReDoc's sidebar logo on a CDN is pointed at our
    favicon, and anything else is refused without asking the network."""
    page.headers[CSP] = docs_policy(settings, inline_script_hashes(bytes(page.body)))
    return page


def install_pages(app: FastAPI, settings: Settings) -> None:
    """``/`` (the web page), ``/docs`` (Swagger UI), ``/redoc``, and their assets. The app
    must be created with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages stay out."""
    openapi_url = app.openapi_url or "/openapi.json"
    parameters = {
        **swagger_ui_default_parameters,
        # The default validator is an online service: a badge that calls out of the machine.
        "validatorUrl": None,
        **(app.swagger_ui_parameters or {}),
    }

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript")

    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_dir()), name="docs-assets")
    app.mount(WEB_ASSETS, StaticFiles(directory=WEB_DIR), name="web-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_ui_parameters=parameters,
        )
        return _with_policy(page, settings)

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html(), settings)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return _with_policy(page, settings)

    web_headers = {"Cache-Control": "no-cache", CSP: page_policy(settings)}

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=web_headers)
