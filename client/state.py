"""The local state file: which upload a local file (path, size, mtime) is going into, and which
download a partial file belongs to, so that a second run resumes instead of starting over; and
which share each link made here is (by the SHA-256 of its token, never the link itself), since
the API shows a link once and lists shares without it."""

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished multipart upload of ``local`` (as it was: ``size``, ``mtime_ns``)."""

    local: str
    remote: str
    size: int
    mtime_ns: int
    upload_id: str
    part_size: int
    part_count: int


@dataclass(frozen=True)
class PendingDownload:
    """A partial download: ``partial`` holds the first bytes of ``remote`` as of ``etag``."""

    partial: str
    remote: str
    etag: str
    size: int


class StateFile:
    """A small JSON file, rewritten atomically (mode 0600) on each change; one lock guards it
    for the threads of a process. A missing or unreadable file is an empty state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return _empty()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return _empty()
        data.setdefault("uploads", {})
        data.setdefault("downloads", {})
        data.setdefault("shares", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(temporary, self.path)

    @staticmethod
    def _upload_key(local: str, remote: str) -> str:
        return f"{local}\n{remote}"

    def pending_upload(self, local: str, remote: str) -> PendingUpload | None:
        with self._lock:
            entry = self._load()["uploads"].get(self._upload_key(local, remote))
        try:
            return PendingUpload(**entry) if entry else None
        except TypeError:
            return None

    def remember_upload(self, pending: PendingUpload) -> None:
        with self._lock:
            data = self._load()
            data["uploads"][self._upload_key(pending.local, pending.remote)] = asdict(pending)
            self._save(data)

    def forget_upload(self, local: str, remote: str) -> None:
        with self._lock:
            data = self._load()
            if data["uploads"].pop(self._upload_key(local, remote), None) is not None:
                self._save(data)

    def pending_uploads(self) -> list[PendingUpload]:
        with self._lock:
            entries = list(self._load()["uploads"].values())
        return [PendingUpload(**entry) for entry in entries]

    def pending_download(self, partial: str) -> PendingDownload | None:
        with self._lock:
            entry = self._load()["downloads"].get(partial)
        try:
            return PendingDownload(**entry) if entry else None
        except TypeError:
            return None

    def remember_download(self, pending: PendingDownload) -> None:
        with self._lock:
            data = self._load()
            data["downloads"][pending.partial] = asdict(pending)
            self._save(data)

    def forget_download(self, partial: str) -> None:
        with self._lock:
            data = self._load()
            if data["downloads"].pop(partial, None) is not None:
                self._save(data)

    def remember_share(self, token_sha256: str, share_id: str) -> None:
        """That the link whose token hashes (SHA-256, hex) to ``token_sha256`` is ``share_id``."""
        with self._lock:
            data = self._load()
            data["shares"][token_sha256] = share_id
            self._save(data)

    def share_for(self, token_sha256: str) -> str | None:
        with self._lock:
            found = self._load()["shares"].get(token_sha256)
        return found if isinstance(found, str) else None

    def forget_share(self, share_id: str) -> None:
        with self._lock:
            data = self._load()
            kept = {k: v for k, v in data["shares"].items() if v != share_id}
            if len(kept) != len(data["shares"]):
                data["shares"] = kept
                self._save(data)


def _empty() -> dict[str, Any]:
    return {"version": STATE_VERSION, "uploads": {}, "downloads": {}, "shares": {}}
