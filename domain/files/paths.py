"""User paths: absolute, NFC, no dot segments or control characters, bounded in bytes."""

import unicodedata
import uuid

from domain.errors import InvalidPath
from domain.text import is_clean_text

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255


def normalize_path(raw: str) -> str:
    """Normalised form of ``raw``; a trailing ``/`` (a folder) is kept. Raises ``InvalidPath``."""
    if not is_clean_text(raw):
        raise InvalidPath("The path contains NUL or an unpaired surrogate (not UTF-8).")
    path = unicodedata.normalize("NFC", raw)
    if not path.startswith("/"):
        raise InvalidPath("The path must be absolute (start with '/').")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise InvalidPath("The path contains NUL or control characters.")
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if segment in {".", ".."}:
            raise InvalidPath("'.' and '..' segments are not allowed.")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"A path segment is longer than {MAX_SEGMENT_BYTES} bytes.")
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    if len(normalized.encode()) > MAX_PATH_BYTES:
        raise InvalidPath(f"The path is longer than {MAX_PATH_BYTES} bytes.")
    return normalized


def is_folder(path: str) -> bool:
    return path.endswith("/")


def file_path(raw: str, file_name: str | None) -> tuple[str, str]:
    """The file's normalised path and name; a folder path takes ``file_name``."""
    path = normalize_path(raw)
    if is_folder(path):
        if not file_name:
            raise InvalidPath("The path is a folder and the file has no name.")
        name = normalize_path("/" + file_name.replace("\\", "/").rsplit("/", 1)[-1])[1:]
        if not name:
            raise InvalidPath("The file name is empty.")
        path = normalize_path(path + name)
    name = path.rsplit("/", 1)[-1]
    if not name:
        raise InvalidPath("The path has no file name.")
    return path, name


def folder_prefix(raw: str) -> str:
    """A listing filter: the folder's normalised path, always ending in ``/``."""
    path = normalize_path(raw)
    return path if is_folder(path) else path + "/"


def parse_reference(raw: str) -> uuid.UUID | str:
    """``path`` query values name a file by id (a UUID) or by absolute path."""
    if not raw.startswith("/"):
        try:
            return uuid.UUID(raw)
        except ValueError:
            raise InvalidPath("Give an absolute path or a file id.") from None
    return normalize_path(raw)


def enclosing_folders(path: str) -> list[str]:
    """``/a/b/c.txt`` (or ``/a/b/c/``) → ``["/a/", "/a/b/"]``: the folders above ``path``."""
    segments = path.rstrip("/").split("/")[1:-1]
    return ["/" + "/".join(segments[: depth + 1]) + "/" for depth in range(len(segments))]


def subtree(folder: str) -> tuple[str, str]:
    """The byte range ``[low, high)`` of the paths below ``folder`` (which ends with ``/``):
    a range of the ``(owner_id, path)`` indexes in "C" collation, where "0" follows "/"."""
    return folder, folder[:-1] + "0"


def last_segment(path: str) -> str:
    """A file's or a folder's own name: ``/a/b/`` → ``b``, ``/a/c.txt`` → ``c.txt``."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def file_paths_above(path: str) -> list[str]:
    """``/a/b/c.txt`` → ``["/a", "/a/b"]``: the paths that must not be files for ``path`` to be
    stored (a name is a file or a folder, never both)."""
    return [folder[:-1] for folder in enclosing_folders(path)]
