"""The ``filestore`` command (typer + rich), built on ``client``.

Where it looks: ``FILESTORE_URL`` and ``FILESTORE_TOKEN`` first, then what ``filestore login``
kept in ``config.json`` in the user's config directory (``FILESTORE_CONFIG_DIR`` moves it).
The state file of unfinished uploads and downloads lives beside it. Exit codes: 0, 1 with the
API's message (no traceback), 2 for usage errors, 130 when interrupted (run it again to
resume).
"""

import getpass
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from client.api import DEFAULT_JOBS, DEFAULT_MULTIPART_THRESHOLD, Client, share_token
from client.errors import FilestoreError
from client.models import File, Folder, FolderTransfer, Share, TrashEntry, UploadResult, Version
from client.models import Progress as TransferProgress
from client.pacing import Paced, RateLimit, parse_rate
from client.state import StateFile

DEFAULT_URL = "http://127.0.0.1:8080"
CONFIG_NAME = "config.json"
STATE_NAME = "state.json"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

app = typer.Typer(
    help="filestore: your files on the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def config_dir() -> Path:
    explicit = os.environ.get("FILESTORE_CONFIG_DIR")
    return Path(explicit) if explicit else Path(typer.get_app_dir("filestore"))


def _read_config() -> dict[str, Any]:
    try:
        data = json.loads((config_dir() / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_config(data: dict[str, Any]) -> Path:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CONFIG_NAME
    temporary = directory / f".{CONFIG_NAME}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.chmod(temporary, 0o600)  # an older file may have been created with other bits
    os.replace(temporary, path)
    return path


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    # One line however narrow the terminal: scripts grep it, the code in brackets last.
    err.print(f"[red]filestore:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _url() -> str:
    return os.environ.get("FILESTORE_URL") or _read_config().get("url") or DEFAULT_URL


@contextmanager
def _client(signed_in: bool = True) -> Iterator[Client]:
    """A client on the configured API; errors become one line on stderr and exit 1."""
    token = os.environ.get("FILESTORE_TOKEN") or _read_config().get("token")
    if signed_in and not token:
        _fail("not signed in: run `filestore login` (or set FILESTORE_TOKEN).")
    url = _url()
    try:
        with Client(url, token, state=StateFile(config_dir() / STATE_NAME)) as api:
            yield api
    except FilestoreError as error:
        hint = " (run `filestore login`)" if error.code == "not_authenticated" else ""
        _fail(f"{error.detail} [{error.code}]{hint}")
    except httpx.HTTPError as error:
        _fail(f"cannot reach {url}: {error}")
    except OSError as error:
        _fail(str(error))


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _rate(text: str | None) -> RateLimit | None:
    if text is None:
        return None
    try:
        return RateLimit(parse_rate(text))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


LimitRate = Annotated[
    RateLimit | None,
    typer.Option(
        "--limit-rate",
        parser=_rate,
        metavar="RATE",
        help="At most this many bytes per second, e.g. 500k, 10M, 1G.",
    ),
]


def _paced(bar: "_Bar", limit: RateLimit | None) -> TransferProgress:
    return bar if limit is None else Paced(bar, limit)


@app.command()
def login(
    login: Annotated[str, typer.Option("--login", "-l", prompt=True, help="Account name.")],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            "-p",
            prompt=True,
            hide_input=True,
            envvar="FILESTORE_PASSWORD",
            help="Password (or FILESTORE_PASSWORD; asked for when neither is given).",
        ),
    ],
    url: Annotated[str | None, typer.Option(help="API address, e.g. http://host:8080.")] = None,
    register: Annotated[bool, typer.Option(help="Create the account first.")] = False,
) -> None:
    """Sign in and keep the token (mode 0600) in the user's config directory."""
    target = url or _url()
    try:
        with Client(target) as api:
            if register:
                api.register(login, password)
            token = api.sign_in(login, password)
    except FilestoreError as error:
        _fail(f"{error.detail} [{error.code}]")
    except httpx.HTTPError as error:
        _fail(f"cannot reach {target}: {error}")
    path = _write_config({"url": target, "login": login, "token": token})
    out.print(f"Signed in to {target} as [bold]{login}[/bold]; token kept in {path}")


def _modified(stamp: str) -> str:
    return stamp[:19].replace("T", " ")


def _as_folder(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def _is_folder(api: Client, path: str) -> bool:
    """Whether ``path`` (no trailing ``/``) names a folder: asked only to explain a refusal."""
    if not path.startswith("/"):
        return False
    try:
        api.list_folder(_as_folder(path), limit=1)
    except FilestoreError:
        return False
    return True


def _show_files(files: Iterable[File], as_json: bool) -> None:
    """Files as JSON lines, as whole tab-separated paths for pipes, or as a table."""
    if as_json:
        for file in files:
            sys.stdout.write(json.dumps(asdict(file)) + "\n")
        return
    if not out.is_terminal:
        for file in files:  # whole paths, one per line, for pipes
            sys.stdout.write(f"{file.path}\t{file.size}\t{file.content_type or '-'}\t")
            sys.stdout.write(f"{file.modified_at}\n")
        return
    shown = list(files)
    table = Table(box=None, header_style="bold")
    table.add_column("path")
    table.add_column("size", justify="right")
    table.add_column("type")
    table.add_column("modified")
    for file in shown:
        table.add_row(
            escape(file.path),
            _size(file.size),
            file.content_type or "-",
            _modified(file.modified_at),
        )
    out.print(table)
    out.print(f"{len(shown)} file(s), {_size(sum(f.size or 0 for f in shown))}", style="dim")


def _show_children(folder: str, children: Iterable[Folder | File], as_json: bool) -> None:
    """A folder's children (folders first, as the API sends them): JSON lines in the API's
    shapes (a folder's ``path`` ends with ``/``), whole paths for pipes, or a table of names."""
    if as_json:
        for child in children:
            sys.stdout.write(json.dumps(asdict(child)) + "\n")
        return
    if not out.is_terminal:
        for child in children:  # whole paths, as for files; a folder's ends with "/"
            if isinstance(child, Folder):
                sys.stdout.write(f"{child.path}\t-\t-\t{child.modified_at}\n")
            else:
                sys.stdout.write(f"{child.path}\t{child.size}\t{child.content_type or '-'}\t")
                sys.stdout.write(f"{child.modified_at}\n")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("name")
    table.add_column("size", justify="right")
    table.add_column("type")
    table.add_column("modified")
    folders = files = size = 0
    for child in children:
        if isinstance(child, Folder):
            folders += 1
            name = Text(child.name + "/", style="bold blue")
            table.add_row(name, "-", "-", _modified(child.modified_at))
        else:
            files += 1
            size += child.size or 0
            table.add_row(
                Text(child.name),
                _size(child.size),
                child.content_type or "-",
                _modified(child.modified_at),
            )
    out.print(table)
    out.print(
        f"{escape(folder)}: {folders} folder(s), {files} file(s), {_size(size)}",
        style="dim",
        highlight=False,
    )


@app.command("ls")
def list_files(
    path: Annotated[str | None, typer.Argument(help="Folder to list (default: /).")] = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Every file below the folder instead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List a folder: its folders (ending with '/'), then its files; -r: every file below it."""
    with _client() as api:
        if recursive:
            _show_files(api.iter_files(path), as_json)
        else:
            folder = _as_folder(path or "/")
            _show_children(folder, api.iter_folder(folder), as_json)


@app.command()
def find(
    query: Annotated[str, typer.Argument(help="Part of a file's name (any case).")],
    path: Annotated[
        str | None, typer.Option("--path", help="Search below this folder only.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Files whose name contains QUERY, case-insensitive, by path."""
    with _client() as api:
        _show_files(api.iter_search(query, _as_folder(path) if path else None), as_json)


@app.command()
def mkdir(
    paths: Annotated[list[str], typer.Argument(help="Folder paths ('/' is added at the end).")],
) -> None:
    """Create folders, listed even while empty; a folder that exists already is left as it is."""
    with _client() as api:
        for path in paths:
            folder, created = api.make_folder(path)
            done = "created" if created else "exists:"
            out.print(f"{done} {escape(folder.path)}", highlight=False)


OverwriteOption = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace a file at TO (files only; folders never merge)."),
]


def _transfer(verb: str, source: str, target: str, overwrite: bool) -> None:
    with _client() as api:
        try:
            result = (api.move if verb == "moved" else api.copy)(
                source, target, overwrite=overwrite
            )
        except FilestoreError as error:
            if error.code == "file_not_found" and _is_folder(api, source):
                _fail(f"{source} is a folder: write it with a trailing '/' ({source}/).", 2)
            raise
    if isinstance(result, FolderTransfer):
        line = f"{verb} {source} -> {result.path} ({result.files} file(s))"
    else:
        line = f"{verb} {source} -> {result.path}"
    out.print(escape(line), highlight=False)


@app.command()
def mv(
    source: Annotated[str, typer.Argument(metavar="FROM", help="File path or id, or a folder/.")],
    target: Annotated[
        str, typer.Argument(metavar="TO", help="New path, or a folder/ to keep the name.")
    ],
    overwrite: OverwriteOption = False,
) -> None:
    """Move or rename a file or a folder (a path ending with '/'); nothing is copied."""
    _transfer("moved", source, target, overwrite)


@app.command()
def cp(
    source: Annotated[str, typer.Argument(metavar="FROM", help="File path or id, or a folder/.")],
    target: Annotated[
        str, typer.Argument(metavar="TO", help="New path, or a folder/ to keep the name.")
    ],
    overwrite: OverwriteOption = False,
) -> None:
    """Copy a file or a folder (a path ending with '/'); copies count against the quota."""
    _transfer("copied", source, target, overwrite)


class _Bar:
    """``client.Progress`` on a rich task, and on the total's task for a folder. Chunks are
    added up and handed to rich every ``FLUSH_BYTES`` or ``FLUSH_SECONDS``: a call into rich per
    chunk, from several threads, cost a third of a fast upload's time."""

    FLUSH_BYTES = 4 * 1024 * 1024
    FLUSH_SECONDS = 0.1

    def __init__(self, progress: Progress, name: str, total: "_Total | None" = None) -> None:
        self.progress, self.name, self.total = progress, name, total
        self.task: TaskID | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._flushed_at = time.monotonic()

    def started(self, total: int, done: int) -> None:
        # Bars appear with the first transfer: an error before it is shown alone.
        self.progress.start()
        if self.total is not None:
            self.total.advance(done)
        self.task = self.progress.add_task(self.name, total=total, completed=done)

    def advanced(self, nbytes: int) -> None:
        with self._lock:
            self._pending += nbytes
            now = time.monotonic()
            if (
                abs(self._pending) < self.FLUSH_BYTES
                and now - self._flushed_at < self.FLUSH_SECONDS
            ):
                return
            pending, self._pending, self._flushed_at = self._pending, 0, now
        self._advance(pending)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, 0
        self._advance(pending)

    def _advance(self, nbytes: int) -> None:
        if nbytes and self.task is not None:
            self.progress.advance(self.task, nbytes)
            if self.total is not None:
                self.total.advance(nbytes)


class _Total:
    """The bar of a whole folder, drawn from its first file's start."""

    def __init__(self, progress: Progress, size: int) -> None:
        self.progress, self.size = progress, size
        self.task: TaskID | None = None

    def advance(self, nbytes: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("total", total=self.size)
        if nbytes:
            self.progress.advance(self.task, nbytes)


@contextmanager
def _progress() -> Iterator[Progress]:
    """Bars on stderr, drawn from the first transfer's start (``_Bar.started``) until the end."""
    progress = _new_progress()
    try:
        yield progress
    finally:
        _stop(progress)


def _stop(progress: Progress) -> None:
    if progress.live.is_started:  # else stop() still prints a newline on a non-terminal
        progress.stop()


class _Speed(TransferSpeedColumn):
    """Bytes per second, or "?" while there is no forward progress to measure: a bar moves back
    when a part's bytes are given up (Ctrl-C, a retry), and rich would show that as a negative
    rate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None or speed <= 0:
            return Text("?", style="progress.data.speed")
        return super().render(task)


def _new_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        _Speed(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _plan(local: Path, remote: str | None, recursive: bool) -> list[tuple[Path, str]]:
    if local.is_dir():
        if not recursive:
            _fail(f"{local} is a folder: use -r to upload it.", 2)
        base = remote or "/"
        base = base if base.endswith("/") else base + "/"
        root = base + local.resolve().name + "/" if remote is None else base
        return [
            (item, root + item.relative_to(local).as_posix())
            for item in sorted(local.rglob("*"))
            if item.is_file()
        ]
    if not local.is_file():
        _fail(f"{local}: no such file.", 2)
    return [(local, remote or "/")]


@app.command()
def put(
    local: Annotated[Path, typer.Argument(help="File or folder to upload.")],
    remote: Annotated[
        str | None,
        typer.Argument(help="Target path, or a folder ending in '/' (default: '/')."),
    ] = None,
    recursive: Annotated[bool, typer.Option("-r", "--recursive", help="Upload a folder.")] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=64, help="Parts of a large file in flight.")
    ] = DEFAULT_JOBS,
    proxy: Annotated[bool, typer.Option(help="Send the bytes through the API.")] = False,
    multipart_threshold: Annotated[
        int, typer.Option(min=5 * 1024 * 1024, help="Bytes above which parts go in parallel.")
    ] = DEFAULT_MULTIPART_THRESHOLD,
    limit_rate: LimitRate = None,
) -> None:
    """Upload a file (or a folder with -r) straight to storage; run it again to resume."""
    plan = _plan(local, remote, recursive)
    started = time.monotonic()
    results: list[UploadResult] = []
    with _client() as api, _progress() as progress:
        size = sum(path.stat().st_size for path, _ in plan)
        total = _Total(progress, size) if len(plan) > 1 else None
        try:
            for path, target in plan:
                bar = _Bar(progress, path.name, total)
                results.append(
                    api.upload(
                        path,
                        target,
                        jobs=jobs,
                        proxy=proxy,
                        progress=_paced(bar, limit_rate),
                        multipart_threshold=multipart_threshold,
                    )
                )
                bar.flush()
        except KeyboardInterrupt:
            _stop(progress)
            _fail("interrupted: run the same command again to resume.", EXIT_INTERRUPTED)
    elapsed = max(time.monotonic() - started, 1e-6)
    sent = sum(result.sent for result in results)
    for result in results:
        resumed = f", {_size(result.resumed)} already stored" if result.resumed else ""
        out.print(
            f"{escape(result.file.path)}  {_size(result.file.size)}  {result.method}{resumed}",
            highlight=False,
        )
    rate = sent / elapsed / (1024 * 1024)
    out.print(
        f"{len(results)} file(s), sent {sent} bytes in {elapsed:.2f} s ({rate:.1f} MiB/s)",
        style="dim",
        highlight=False,
    )


@app.command()
def get(
    remote: Annotated[str, typer.Argument(help="File path or id.")],
    local: Annotated[
        Path | None, typer.Argument(help="Where to write it (default: its name, here).")
    ] = None,
    limit_rate: LimitRate = None,
    version: Annotated[
        uuid.UUID | None,
        typer.Option("--version", metavar="ID", help="An earlier content (`filestore versions`)."),
    ] = None,
) -> None:
    """Download a file, or one of its versions; an interrupted download resumes where it
    stopped."""
    target = local or Path(remote.rstrip("/").rsplit("/", 1)[-1] or "download")
    if target.is_dir():
        target = target / remote.rstrip("/").rsplit("/", 1)[-1]
    started = time.monotonic()
    with _client() as api, _progress() as progress:
        try:
            bar = _Bar(progress, target.name)
            result = api.download(
                remote,
                target,
                progress=_paced(bar, limit_rate),
                version=str(version) if version else None,
            )
            bar.flush()
        except KeyboardInterrupt:
            _stop(progress)
            _fail("interrupted: run the same command again to resume.", EXIT_INTERRUPTED)
    elapsed = max(time.monotonic() - started, 1e-6)
    resumed = f", resumed after {_size(result.resumed)}" if result.resumed else ""
    out.print(
        f"{escape(result.path)}  {_size(result.size)}{resumed} in {elapsed:.2f} s",
        highlight=False,
    )


@app.command()
def rm(
    paths: Annotated[list[str], typer.Argument(help="File paths or ids; folders end with '/'.")],
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Delete folders and everything in them.")
    ] = False,
) -> None:
    """Delete files, or folders (with -r) and everything below them."""
    folders = [path for path in paths if path.endswith("/")]
    if folders and not recursive:
        _fail(f"{folders[0]} is a folder: use -r to delete it and everything in it.", 2)
    with _client() as api:
        for path in paths:
            if path.endswith("/"):
                count = api.delete_folder(path)
                out.print(f"deleted {escape(path)} ({count} file(s))", highlight=False)
                continue
            try:
                api.delete(path)
            except FilestoreError as error:
                if error.code != "file_not_found" or not _is_folder(api, path):
                    raise
                if not recursive:
                    _fail(f"{path} is a folder: use -r to delete it and everything in it.", 2)
                count = api.delete_folder(path)  # rm -r NAME: the folder of that name
                out.print(f"deleted {escape(_as_folder(path))} ({count} file(s))", highlight=False)
                continue
            out.print(f"deleted {escape(path)}", highlight=False)


@app.command()
def status(
    upload_id: Annotated[str, typer.Argument(help="The upload's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """An upload's state (pending, completed, rejected, expired, failed, aborted)."""
    with _client() as api:
        state = api.upload_state(upload_id)
        parts = api.stored_parts(upload_id) if state.status == "pending" else []
    if as_json:
        sys.stdout.write(json.dumps(asdict(state)) + "\n")
        return
    out.print(f"upload {state.id}: [bold]{state.status}[/bold]")
    if state.reason:
        out.print(f"reason: {state.reason}", highlight=False)
    if state.file:
        out.print(f"file: {escape(state.file.path)} ({_size(state.file.size)})", highlight=False)
    if parts:
        stored = sum(part.size for part in parts)
        out.print(f"stored: {len(parts)} part(s), {_size(stored)}", highlight=False)
    out.print(f"created {state.created_at}, URLs expire {state.expires_at}", highlight=False)


def _show_records(
    records: Iterable[Any],
    as_json: bool,
    plain: Callable[[Any], Sequence[str]],
    columns: Sequence[tuple[str, JustifyMethod]],
    cells: Callable[[Any], Sequence[str | Text]],
    footer: Callable[[list[Any]], str],
) -> None:
    """Dataclasses as JSON lines in the API's shapes, as tab-separated ``plain`` fields for pipes
    (whole, never shortened), or as a table of ``columns`` (name, justify) with a ``footer``."""
    if as_json:
        for record in records:
            sys.stdout.write(json.dumps(asdict(record)) + "\n")
        return
    if not out.is_terminal:
        for record in records:
            sys.stdout.write("\t".join(plain(record)) + "\n")
        return
    shown = list(records)
    table = Table(box=None, header_style="bold")
    for name, justify in columns:
        # A narrow terminal shortens the other columns (as `ls` does), never an id, which the
        # next command takes, nor a path below a readable width.
        table.add_column(
            name,
            justify=justify,
            no_wrap=True,
            min_width={"id": 36, "path": 16}.get(name),
        )
    for record in shown:
        table.add_row(*cells(record))
    out.print(table)
    out.print(escape(footer(shown)), style="dim", highlight=False)


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


trash_app = typer.Typer(
    help="Deleted files and folders: list them, put them back, or delete them for good.",
    no_args_is_help=True,
)
app.add_typer(trash_app, name="trash")

EntryId = Annotated[uuid.UUID, typer.Argument(metavar="ID", help="A trash entry's id.")]


@trash_app.command("ls")
def trash_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """What was deleted, newest first (a folder is one entry), and when each goes for good."""

    def cells(entry: TrashEntry) -> list[str | Text]:
        # To the minute, and a folder's file count left to the footer: room for the path.
        deleted, purged = _modified(entry.deleted_at)[:16], _modified(entry.purge_at)[:16]
        return [entry.id, Text(entry.path), entry.kind, _size(entry.size), deleted, purged]

    def footer(shown: list[TrashEntry]) -> str:
        files, size = sum(e.files for e in shown), sum(e.size for e in shown)
        return f"{_entries(len(shown))} ({files} file(s)), {_size(size)}"

    with _client() as api:
        _show_records(
            api.iter_trash(),
            as_json,
            lambda e: [e.id, e.path, e.kind, str(e.files), str(e.size), e.deleted_at, e.purge_at],
            [
                ("id", "left"),
                ("path", "left"),
                ("kind", "left"),
                ("size", "right"),
                ("deleted", "left"),
                ("purge at", "left"),
            ],
            cells,
            footer,
        )


@trash_app.command("restore")
def trash_restore(
    entry_id: EntryId,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="PATH", help="Put it here instead: a full path, or a folder/."
        ),
    ] = None,
) -> None:
    """Put an entry back where it was (or at --to), with its ids, dates and versions."""
    with _client() as api:
        try:
            restored = api.restore(str(entry_id), to)
        except FilestoreError as error:
            if error.code != "path_taken":
                raise
            hint = "choose another --to" if to else "pass --to PATH to restore it elsewhere"
            _fail(f"{error.detail} [{error.code}] ({hint})")
    files = f" ({restored.files} file(s))" if restored.path.endswith("/") else ""
    out.print(f"restored {escape(restored.path)}{files}", highlight=False)


@trash_app.command("rm")
def trash_remove(
    entry_ids: Annotated[list[uuid.UUID], typer.Argument(metavar="ID", help="Trash entries' ids.")],
) -> None:
    """Delete trash entries for good (their files' versions too), freeing their bytes."""
    with _client() as api:
        for entry_id in entry_ids:
            api.purge(str(entry_id))
            out.print(f"deleted for good {entry_id}", highlight=False)


@trash_app.command("empty")
def trash_empty(
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Yes: delete everything in the trash for good.")
    ] = False,
) -> None:
    """Delete every entry of the trash for good (asks for --yes: nothing brings them back)."""
    if not yes:
        _fail("emptying the trash deletes every entry for good: pass --yes to do it.", 2)
    with _client() as api:
        purged = api.empty_trash()
    out.print(f"emptied the trash: {_entries(purged)} deleted for good", highlight=False)


class _ListByDefault(TyperGroup):
    """``filestore versions PATH`` lists a file's versions (as ``versions ls PATH``); the other
    subcommands act on a version's id. A path starts with '/' and an id is a UUID, so neither
    can be taken for a subcommand's name."""

    # Typer makes its groups' contexts typer.Context; the base class says its vendored click's.
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["ls", *args]
        return super().parse_args(ctx, args)


versions_app = typer.Typer(
    cls=_ListByDefault,
    help="A file's versions: `filestore versions PATH` lists them; restore or delete one by id.",
    no_args_is_help=True,
)
app.add_typer(versions_app, name="versions")

VersionId = Annotated[
    uuid.UUID, typer.Argument(metavar="ID", help="A version's id (`filestore versions PATH`).")
]


@versions_app.command("ls")
def versions_list(
    path: Annotated[str, typer.Argument(help="File path or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """A file's contents: the current one first, then those overwrites kept, newest first."""

    def cells(version: Version) -> list[str | Text]:
        return [
            version.id,
            _size(version.size),
            _modified(version.modified_at)[:16],
            (version.sha256 or "-")[:12],
            "current" if version.current else "",
        ]

    with _client() as api:
        _show_records(
            api.versions(path),
            as_json,
            lambda v: [
                v.id,
                str(v.size),
                v.modified_at,
                v.sha256 or "-",
                "current" if v.current else "-",
            ],
            [
                ("id", "left"),
                ("size", "right"),
                ("modified", "left"),
                ("sha256", "left"),
                ("", "left"),
            ],
            cells,
            lambda shown: f"{path}: {len(shown)} version(s), the current one included",
        )


@versions_app.command("restore")
def versions_restore(version_id: VersionId) -> None:
    """Make an earlier content current again; the content it replaces is kept as a version."""
    with _client() as api:
        file = api.restore_version(str(version_id))
    out.print(f"restored {escape(file.path)} to {version_id} ({_size(file.size)})", highlight=False)


@versions_app.command("rm")
def versions_remove(
    version_ids: Annotated[list[uuid.UUID], typer.Argument(metavar="ID", help="Versions' ids.")],
) -> None:
    """Delete earlier contents for good, freeing their bytes (the current one stays)."""
    with _client() as api:
        for version_id in version_ids:
            api.delete_version(str(version_id))
            out.print(f"deleted version {version_id}", highlight=False)


_DURATION = re.compile(r"(\d+)([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# What ``--password`` alone stands for: ask (FILESTORE_SHARE_PASSWORD, else a prompt).
_ASK = "\0ask"


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``90m``, ``12h``, ``7d`` or ``2w``."""
    found = _DURATION.fullmatch(text.strip().lower())
    seconds = int(found.group(1)) * _SECONDS[found.group(2)] if found else 0
    if seconds <= 0:
        raise ValueError(f"not a duration: {text!r} (try 3600, 90m, 12h or 7d)")
    return seconds


def _duration(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _share_password(given: str | None) -> str | None:
    """``--password P`` as given; ``--password`` alone: FILESTORE_SHARE_PASSWORD, else asked
    for (twice) on a terminal, else one line of stdin."""
    if given != _ASK:
        if given == "":
            _fail("--password: an empty password protects nothing.", 2)
        return given
    password = os.environ.get("FILESTORE_SHARE_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("Share password: ")
        if password and getpass.getpass("Again: ") != password:
            _fail("the passwords differ.", 2)
    elif password is None:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("--password: none given (type one, or set FILESTORE_SHARE_PASSWORD).", 2)
    return password


def _expiry(stamp: str) -> str:
    """An API time (UTC) to the minute, or "expired" once it has passed."""
    try:
        passed = datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= datetime.now(UTC)
    except ValueError:
        passed = False
    return "expired" if passed else _modified(stamp)[:16]


def _downloads(share: Share) -> str:
    if share.upload:
        return "-"
    return f"{share.downloads}/{share.max_downloads if share.max_downloads else '-'}"


class _PasswordMayBeAsked(TyperCommand):
    """``--password`` takes a value, or none: alone (at the end, or followed by another option)
    it stands for "ask". A password that starts with '-' is written ``--password=-…``."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        fixed: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                fixed.extend(args[index:])
                break
            following = args[index + 1] if index + 1 < len(args) else None
            alone = arg == "--password" and (following is None or following.startswith("-"))
            fixed.append(f"--password={_ASK}" if alone else arg)
        return super().parse_args(ctx, fixed)


@app.command(cls=_PasswordMayBeAsked)
def share(
    path: Annotated[str, typer.Argument(help="File path or id, or a folder (ending with '/').")],
    expires: Annotated[
        int | None,
        typer.Option(
            "--expires",
            parser=_duration,
            metavar="DURATION",
            help="How long the link lives: 3600 (seconds), 90m, 12h, 7d (default: 7d).",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            metavar="[P]",
            help="Ask for this password first; alone (last, or before another option): asked "
            "for, or FILESTORE_SHARE_PASSWORD.",
        ),
    ] = None,
    max_downloads: Annotated[
        int | None,
        typer.Option("--max-downloads", min=1, metavar="N", help="Used up after N downloads."),
    ] = None,
    upload: Annotated[
        bool,
        typer.Option("--upload", help="An upload link: anyone may add files to the folder."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The share as JSON.")] = False,
) -> None:
    """Make a link to a file or a folder that anyone holding it may open, no account needed;
    it is shown only now."""
    secret = _share_password(password)
    with _client() as api:
        made = api.create_share(
            path, expires_in=expires, password=secret, max_downloads=max_downloads, upload=upload
        )
    if as_json:
        sys.stdout.write(json.dumps(asdict(made)) + "\n")
        return
    sys.stdout.write(f"{made.url}\n")
    notes = [f"{'upload link to' if made.upload else made.kind} {made.path}"]
    notes.append(f"expires {_expiry(made.expires_at)}")
    if made.has_password:
        notes.append("password")
    if made.max_downloads:
        notes.append(f"at most {made.max_downloads} download(s)")
    out.print(escape(", ".join(notes)), style="dim", highlight=False)


@app.command("shares")
def list_shares(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Your share links, newest first, expired and used up ones too (a link is shown only when
    made); JSON lines when piped."""

    def cells(item: Share) -> list[str | Text]:
        return [
            item.id,
            Text(item.path),
            _expiry(item.expires_at),
            "yes" if item.has_password else "-",
            _downloads(item),
            "yes" if item.upload else "-",
        ]

    with _client() as api:
        shares = api.list_shares()
    _show_records(
        shares,
        as_json or not out.is_terminal,
        lambda item: [],
        [
            ("id", "left"),
            ("path", "left"),
            ("expires", "left"),
            ("password", "left"),
            ("downloads", "right"),
            ("upload", "left"),
        ],
        cells,
        lambda shown: f"{len(shown)} share(s)",
    )


@app.command()
def unshare(
    links: Annotated[
        list[str],
        typer.Argument(
            metavar="ID_OR_URL...",
            help="A share's id (`filestore shares`), or its link (or token) if made here.",
        ),
    ],
) -> None:
    """Revoke share links: each answers 404 from the next request on."""
    ids: list[uuid.UUID | str] = []
    for link in links:
        try:
            ids.append(uuid.UUID(link))
        except ValueError:
            if share_token(link) is None:
                _fail(f"{link}: neither a share's id nor a share link.", 2)
            ids.append(link)
    with _client() as api:
        for item in ids:
            if isinstance(item, uuid.UUID):
                api.delete_share(str(item))
                out.print(f"revoked {item}", highlight=False)
                continue
            found = api.find_share(item)
            if found is None:
                _fail(
                    "unknown link (only those `filestore share` made here are known): "
                    "pass its id, from `filestore shares`."
                )
            api.delete_share(found.id)
            out.print(f"revoked {found.id} ({escape(found.path)})", highlight=False)


@app.command()
def whoami(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
) -> None:
    """The signed-in account, and the bytes it keeps: files, versions and trash."""
    with _client() as api:
        account = api.account()
    if as_json:
        sys.stdout.write(json.dumps(asdict(account)) + "\n")
        return
    usage = account.usage
    share = f" ({usage.used / usage.quota:.1%})" if usage.quota else ""
    out.print(f"{escape(account.login)} on {escape(_url())}", highlight=False)
    out.print(f"used {_size(usage.used)} of {_size(usage.quota)}{share}", highlight=False)
    for name, value in (("files", usage.files), ("versions", usage.versions)):
        out.print(f"  {name:<9}{_size(value):>10}", highlight=False)
    hint = "  (`filestore trash empty --yes` frees it)" if usage.trash else ""
    out.print(f"  {'trash':<9}{_size(usage.trash):>10}{hint}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
