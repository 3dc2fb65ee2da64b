"""The page a browser gets for a share link: the file, or the folder's listing, with download
links; for an upload link, a form that uploads a file; a password form while the share is
locked; a plain page for a dead link.

Built as a string with every value escaped (names come from whoever owns the files), styled by
the web page's own stylesheet, and served under the web page's Content-Security-Policy: no
inline script; an upload link's page loads ``share-upload.js`` from ``api/web/``, which sends the
file through ``POST /s/{token}/upload`` and its presigned PUT.
"""

from html import escape
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse

from api.browser_security import CSP, page_policy
from domain.errors import AppError
from domain.shares.schemas import PublicFileShare, PublicFolderShare, PublicUploadShare
from infra.config import Settings

STYLE = "/static/web/style.css"
UPLOAD_SCRIPT = "/static/web/share-upload.js"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)} - filestore</title>\n"
        '<link rel="icon" href="/static/docs/favicon.png">\n'
        f'<link rel="stylesheet" href="{STYLE}">\n'
        "</head>\n<body>\n<header><h1>filestore</h1><nav><span>Shared with you</span></nav>"
        f"</header>\n<main>\n<section>\n{body}\n</section>\n</main>\n</body>\n</html>\n"
    )


def _answer(settings: Settings, title: str, body: str, status: int = 200) -> HTMLResponse:
    page = HTMLResponse(_document(title, body), status_code=status)
    page.headers[CSP] = page_policy(settings)
    return page


def _base(token: str) -> str:
    return f"/s/{quote(token, safe='')}"


def _link(url: str, **query: str) -> str:
    return url + "?" + urlencode(query)


def _upload_form(base: str, shown: PublicUploadShare) -> str:
    return (
        f"<h2>Send files to {escape(shown.name)}/</h2>\n"
        '<p class="note">What you send goes into this folder; you cannot see what it holds, '
        "and a name already there gets a number instead of replacing it.</p>\n"
        f'<form id="share-upload" data-link="{escape(base)}">\n'
        '<label>File <input id="share-file" name="file" type="file" multiple required></label>\n'
        '<button type="submit">Upload</button>\n</form>\n'
        '<p id="error" role="alert" hidden></p>\n'
        '<ul id="share-sent" class="note" aria-live="polite"></ul>\n'
        f'<script src="{UPLOAD_SCRIPT}" defer></script>'
    )


def shared(
    settings: Settings,
    token: str,
    shown: PublicFileShare | PublicFolderShare | PublicUploadShare,
) -> HTMLResponse:
    base = _base(token)
    if isinstance(shown, PublicUploadShare):
        return _answer(settings, shown.name, _upload_form(base, shown))
    if isinstance(shown, PublicFileShare):
        body = (
            f'<h2>{escape(shown.name)}</h2>\n<p class="note">{escape(human_size(shown.size))}</p>\n'
            f'<p class="actions"><a class="button" href="{escape(base)}/download">Download</a></p>'
        )
        return _answer(settings, shown.name, body)
    rows = "\n".join(
        "<tr>"
        f"<td>{escape(file.path)}</td>"
        f'<td class="num">{escape(human_size(file.size))}</td>'
        f'<td class="actions"><a href="{escape(_link(base + "/download", path=file.path))}">'
        "Download</a></td></tr>"
        for file in shown.files
    )
    more = (
        f'<p><a href="{escape(_link(base, cursor=shown.next_cursor))}">More files</a></p>'
        if shown.next_cursor
        else ""
    )
    empty = "" if shown.files else '<p class="note">This folder holds no files.</p>'
    body = (
        f"<h2>{escape(shown.name)}/</h2>\n"
        f'<p class="actions"><a href="{escape(base)}/zip">Download everything (zip)</a></p>\n'
        '<table>\n<thead><tr><th>Name</th><th class="num">Size</th><th></th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>\n{empty}{more}"
    )
    return _answer(settings, shown.name, body)


def locked(
    settings: Settings, token: str, message: str | None = None, status: int = 401
) -> HTMLResponse:
    alert = f'<p id="error" role="alert">{escape(message)}</p>\n' if message else ""
    body = (
        "<h2>This share needs a password</h2>\n"
        f"{alert}"
        f'<form method="post" action="{escape(_base(token))}/unlock">\n'
        '<label>Password <input name="password" type="password" autocomplete="off" required '
        'autofocus></label>\n<button type="submit">Open</button>\n</form>'
    )
    return _answer(settings, "Password needed", body, status)


def failed(settings: Settings, error: AppError) -> HTMLResponse:
    title = "Nothing here" if error.status_code == 404 else "This did not work"
    body = f"<h2>{escape(title)}</h2>\n<p>{escape(error.detail)}</p>"
    page = _answer(settings, title, body, error.status_code)
    for name, value in (error.headers or {}).items():
        page.headers[name] = value
    return page
