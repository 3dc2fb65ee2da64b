"""Content types and dispositions: what a file's bytes are called when they are served."""

import mimetypes
from urllib.parse import quote

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_CONTENT_TYPE


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
