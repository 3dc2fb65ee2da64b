"""Where a move, a copy or a restore puts its entry, and whether that place is free.

Each runs under the owner's path lock, so "is it free" and the write that follows cannot
interleave with another path-creating transaction of the same owner.
"""

from domain.errors import InvalidMove, PathTaken
from domain.files.paths import file_paths_above, is_folder, normalize_path
from domain.files.repository import FileRepository
from domain.folders.repository import FolderRepository
from domain.models import File


async def resolve(files: FileRepository, to_raw: str, name: str, *, folder: bool) -> str:
    """Where ``to`` puts an entry called ``name``: a path ending with ``/``, or naming an existing
    folder, receives it under its own name; any other path is its full new path."""
    to = normalize_path(to_raw)
    if not is_folder(to) and (await files.path_claims(to, []))[0]:
        to += "/"
    target = to + name if is_folder(to) else to
    return normalize_path(target + "/" if folder else target)


async def check_parents(files: FileRepository, target: str) -> None:
    _, taken = await files.path_claims(target, file_paths_above(target))
    if taken is not None:
        raise PathTaken(f"'{taken}' is a file, so nothing can be stored below it.")


async def free_file(files: FileRepository, target: str, *, overwrite: bool) -> File | None:
    """The file that an ``overwrite`` replaces at ``target``, locked; ``PathTaken`` when the path
    holds something that may not be replaced. A row that holds nothing is removed."""
    await check_parents(files, target)
    if (await files.path_claims(target, []))[0]:
        raise PathTaken(f"'{target}' is a folder.")
    existing = await files.at(target)
    if existing is None:
        return None
    if existing.object_key is None:
        if await files.delete_if_empty(existing.id):
            return None
        raise PathTaken(f"An upload to '{target}' is in progress.")
    if not overwrite:
        raise PathTaken(f"'{target}' exists; pass overwrite to replace it.")
    return existing


async def free_folder(
    files: FileRepository, folders: FolderRepository, target: str, *, source: str | None = None
) -> None:
    """Make ``target`` ready to receive a folder (``source``, moved or copied): ``PathTaken``
    when anything is there or a file holds a path above; leftovers that hold nothing go."""
    if source is not None and target.startswith(source):
        raise InvalidMove(f"'{source}' cannot go inside itself ('{target}').")
    await check_parents(files, target)
    is_taken, taken = await files.path_claims(target, [target[:-1]])
    if taken is not None:
        raise PathTaken(f"'{taken}' is a file.")
    if is_taken:
        raise PathTaken(f"'{target}' exists; folders are not merged.")
    await folders.clear(target)
