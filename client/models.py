"""What the API answers, as typed dataclasses (the client needs no pydantic)."""

from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class File:
    id: str
    name: str
    path: str
    size: int | None
    content_type: str | None
    etag: str | None
    sha256: str | None
    created_ad: str  # the API's spelling: ``ls --json`` prints the API's names
    modified_at: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> "File":
        return cls(
            id=body["id"],
            name=body["name"],
            path=body["path"],
            size=body.get("size"),
            content_type=body.get("content_type"),
            etag=body.get("etag"),
            sha256=body.get("sha256"),
            created_ad=body["created_ad"],
            modified_at=body["modified_at"],
        )


@dataclass(frozen=True)
class Page:
    account: str
    files: list[File]
    next_cursor: str | None


@dataclass(frozen=True)
class Folder:
    """A folder (``path`` ends with ``/``); ``modified_at`` as the API gives it."""

    name: str
    path: str
    modified_at: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Folder":
        return cls(name=body["name"], path=body["path"], modified_at=body["modified_at"])


@dataclass(frozen=True)
class FolderPage:
    """One page of a folder's direct children: its folders (by name) come before its files."""

    account: str
    path: str
    folders: list[Folder]
    files: list[File]
    next_cursor: str | None


@dataclass(frozen=True)
class FolderTransfer:
    """A folder moved or copied: how many files went, and the folder's new path."""

    files: int
    path: str


@dataclass(frozen=True)
class TrashEntry:
    """A deleted file or folder (a folder is one entry; its ``path`` ends with ``/``), deleted
    for good at ``purge_at``; ``size`` is its files' bytes, their versions apart."""

    id: str
    path: str
    kind: Literal["file", "folder"]
    files: int
    size: int
    deleted_at: str
    purge_at: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> "TrashEntry":
        return cls(
            id=body["id"],
            path=body["path"],
            kind=body["kind"],
            files=body["files"],
            size=body["size"],
            deleted_at=body["deleted_at"],
            purge_at=body["purge_at"],
        )


@dataclass(frozen=True)
class TrashPage:
    entries: list[TrashEntry]  # newest first
    next_cursor: str | None


@dataclass(frozen=True)
class Restored:
    """A trash entry put back: where it is now, and how many files came back."""

    path: str
    files: int


@dataclass(frozen=True)
class Version:
    """One content of a file: the current one (``current``; its id is the file's) or an earlier
    one an overwrite kept."""

    id: str
    size: int
    etag: str | None
    sha256: str | None
    modified_at: str
    current: bool

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Version":
        return cls(
            id=body["id"],
            size=body["size"],
            etag=body.get("etag"),
            sha256=body.get("sha256"),
            modified_at=body["modified_at"],
            current=body["current"],
        )


@dataclass(frozen=True)
class Share:
    """A link to a file or a folder that anyone holding it may open (``upload``: that anyone may
    add files to the folder). ``url`` is in the answer to ``create_share`` only: the API keeps
    the token as a hash, so a listed share has ``None`` there. ``path`` is where the target is
    now (a share follows moves)."""

    id: str
    url: str | None
    path: str
    kind: Literal["file", "folder"]
    expires_at: str
    has_password: bool
    max_downloads: int | None
    downloads: int
    created_at: str | None
    upload: bool = False

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Share":
        return cls(
            id=body["id"],
            url=body.get("url"),
            path=body["path"],
            kind=body["kind"],
            expires_at=body["expires_at"],
            has_password=body["has_password"],
            max_downloads=body.get("max_downloads"),
            downloads=body["downloads"],
            created_at=body.get("created_at"),
            upload=bool(body.get("upload", False)),
        )


@dataclass(frozen=True)
class Usage:
    """Bytes the account keeps, by where they are; the quota holds their sum."""

    files: int
    versions: int
    trash: int
    quota: int

    @property
    def used(self) -> int:
        return self.files + self.versions + self.trash


@dataclass(frozen=True)
class Account:
    id: str
    login: str
    created_at: str
    usage: Usage

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Account":
        usage = body["usage"]
        return cls(
            id=body["id"],
            login=body["login"],
            created_at=body["created_at"],
            usage=Usage(usage["files"], usage["versions"], usage["trash"], usage["quota"]),
        )


UploadStatus = Literal["pending", "completed", "rejected", "expired", "failed", "aborted"]


@dataclass(frozen=True)
class UploadState:
    id: str
    status: UploadStatus
    reason: str | None
    created_at: str
    expires_at: str
    completed_at: str | None
    file: File | None

    @classmethod
    def of(cls, body: dict[str, Any]) -> "UploadState":
        file = body.get("file")
        return cls(
            id=body["id"],
            status=body["status"],
            reason=body.get("reason"),
            created_at=body["created_at"],
            expires_at=body["expires_at"],
            completed_at=body.get("completed_at"),
            file=File.of(file) if file else None,
        )


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class UploadResult:
    """A finished upload: the file as stored, and how many bytes this call sent (``resumed``
    is what storage already held from an earlier, interrupted run)."""

    file: File
    upload_id: str | None
    sent: int
    resumed: int
    method: Literal["put", "multipart", "proxy"]


@dataclass(frozen=True)
class DownloadResult:
    path: str
    size: int
    received: int
    resumed: int


class Progress(Protocol):
    """Told about one transfer: its size (and what an earlier run already did), then each chunk
    as it goes. Called from several threads during a parallel upload; a failed part's bytes
    come back as a negative advance."""

    def started(self, total: int, done: int) -> None: ...

    def advanced(self, nbytes: int) -> None: ...


class NoProgress:
    def started(self, total: int, done: int) -> None:
        pass

    def advanced(self, nbytes: int) -> None:
        pass
