"""The one error family of the client: what the API (or storage) refused, with its code."""

import httpx


class FilestoreError(Exception):
    """The API answered an error: ``code`` is its stable ``error`` field, ``detail`` its text.

    Refusals by storage itself (a presigned URL that expired, a checksum that does not match)
    carry ``storage_error`` and storage's own message."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code})")
        self.status = status
        self.code = code
        self.detail = detail

    @classmethod
    def of(cls, response: httpx.Response) -> "FilestoreError":
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return cls(response.status_code, body["error"], str(body.get("detail", "")))
        text = response.text.strip()[:300] or response.reason_phrase
        return cls(response.status_code, f"http_{response.status_code}", text)

    @classmethod
    def from_storage(cls, response: httpx.Response) -> "FilestoreError":
        return cls(response.status_code, "storage_error", _storage_message(response))


def _storage_message(response: httpx.Response) -> str:
    """S3's XML error: ``<Code>`` and ``<Message>``, without pulling in an XML parser."""
    text = response.text
    parts = []
    for tag in ("Code", "Message"):
        start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
        if 0 <= start < end:
            parts.append(text[start + len(tag) + 2 : end])
    return ": ".join(parts) or f"storage answered {response.status_code}"
