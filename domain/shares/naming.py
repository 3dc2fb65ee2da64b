"""Never overwriting: the free name an upload through a link takes.

``report.pdf`` is taken (a file with content, one whose upload is pending, or a folder of that
name) → ``report (1).pdf``, then ``report (2).pdf``, …: the number goes before the last
extension, as browsers and desktops name a second download. The caller holds the owner's path
lock, so the check and the upload's claim are one step: two uploaders racing for one name get
two names.
"""

import unicodedata

from domain.errors import PathTaken
from domain.files.paths import MAX_SEGMENT_BYTES
from domain.files.repository import FileRepository

# Candidates checked per round trip, and the most a name is numbered before giving up.
BATCH = 100
MAX_NUMBER = 10_000


def numbered(name: str, number: int) -> str:
    """``name`` with `` (number)`` before its extension, its stem shortened to keep the
    segment within ``MAX_SEGMENT_BYTES``. A leading dot is no extension (``.env (1)``)."""
    stem, dot, extension = name.rpartition(".")
    if not stem:
        stem, dot, extension = name, "", ""
    tail = f" ({number}){dot}{extension}"
    if len(tail.encode()) >= MAX_SEGMENT_BYTES:
        stem, tail = name, f" ({number})"
    candidate = unicodedata.normalize("NFC", stem + tail)
    while len(candidate.encode()) > MAX_SEGMENT_BYTES:
        stem = stem[:-1]
        candidate = unicodedata.normalize("NFC", stem + tail)
    return candidate


async def free_path(files: FileRepository, path: str) -> str:
    """``path`` (a normalised file path) if nothing holds it, else the first numbered name in
    its folder that is free. Call it under the owner's path lock."""
    folder, _, name = path.rpartition("/")
    for start in range(0, MAX_NUMBER, BATCH):
        candidates = [
            folder + "/" + (numbered(name, number) if number else name)
            for number in range(start, start + BATCH)
        ]
        taken = await files.taken(candidates)
        for candidate in candidates:
            if candidate not in taken:
                return candidate
    raise PathTaken(f"Over {MAX_NUMBER} files are named so already: choose another name.")
