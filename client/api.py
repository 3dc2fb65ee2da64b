"""``Client``: the filestore API for Python programs (synchronous httpx, thread-safe).

Bytes go straight to storage through the URLs the API signs: one PUT below the multipart
threshold, parts in parallel above it (each part's SHA-256 signed, so storage refuses other
bytes), resumed from the parts storage already holds. Downloads follow the API's redirect and
resume with ``Range``. Every refusal is a ``FilestoreError`` carrying the API's ``error`` code.
"""

import base64
import contextlib
import hashlib
import mimetypes
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from client.errors import FilestoreError
from client.models import (
    Account,
    DownloadResult,
    File,
    Folder,
    FolderPage,
    FolderTransfer,
    NoProgress,
    Page,
    Progress,
    Restored,
    Share,
    StoredPart,
    TrashEntry,
    TrashPage,
    UploadResult,
    UploadState,
    Version,
)
from client.state import PendingDownload, PendingUpload, StateFile

API_PREFIX = "/api/v1"
MIB = 1024 * 1024
# Above this a direct upload goes up in parts, several at once; the API also turns any upload
# above its own threshold (FILESTORE_MULTIPART_THRESHOLD_BYTES) into a multipart one.
DEFAULT_MULTIPART_THRESHOLD = 16 * MIB
DEFAULT_JOBS = 4
CHUNK = 256 * 1024
# A part that fails (a dropped connection, storage busy) is signed and sent again this often.
PART_ATTEMPTS = 3
# How long ``complete`` is retried while it answers 202 (the object is not visible yet).
COMPLETE_WAIT_SECONDS = 60.0
PARTIAL_SUFFIX = ".filestore-part"
# A share link's token (secrets.token_urlsafe(32)), alone or in its link: ``…/s/<token>[/…]``.
_SHARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_SHARE_LINK = re.compile(r"^https?://[^/?#]+(?:/[^?#]*)?/s/([A-Za-z0-9_-]{43})(?:[/?#].*)?$")


def _timeout() -> httpx.Timeout:
    # Storage may take a while to answer a large part or the first byte of a big object.
    return httpx.Timeout(30.0, read=300.0, write=300.0)


class _Reader:
    """A file object that reports what httpx reads from it (proxied uploads)."""

    def __init__(self, file: BinaryIO, progress: Progress) -> None:
        self._file, self._progress = file, progress

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._progress.advanced(len(data))
        return data

    def fileno(self) -> int:  # lets httpx compute the Content-Length
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)


class Client:
    """One API (``base_url`` like ``http://127.0.0.1:8080``), one bearer ``token``.

    ``state`` (a ``StateFile``) makes uploads and downloads resumable across runs; without it
    they still work but an interrupted one starts over. ``transport`` is for tests."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        state: StateFile | None = None,
        transport: httpx.BaseTransport | None = None,
        storage_transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/").removesuffix(API_PREFIX)
        self.base_url = root
        self.token = token
        self.state = state
        self._api = httpx.Client(
            base_url=root + API_PREFIX, timeout=_timeout(), transport=transport
        )
        # Presigned URLs carry their own signature: no Authorization header may go with them.
        self._storage = httpx.Client(
            timeout=_timeout(),
            transport=storage_transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def close(self) -> None:
        self._api.close()
        self._storage.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._api.request(method, url, headers=self._headers(), **kwargs)
        if response.status_code >= 400:
            raise FilestoreError.of(response)
        return response

    # -- accounts ---------------------------------------------------------------------------

    def register(self, login: str, password: str) -> str:
        """Create an account; returns its id."""
        body = self._call("POST", "/user/register", json={"login": login, "password": password})
        return str(body.json()["id"])

    def sign_in(self, login: str, password: str) -> str:
        """Exchange login and password for a bearer token, which this client then uses."""
        body = self._call("POST", "/user/auth", json={"login": login, "password": password})
        self.token = str(body.json()["access_token"])
        return self.token

    def me(self) -> str:
        """The signed-in account's login (checks the token)."""
        return self.list_files(limit=1).account

    def account(self) -> Account:
        """The signed-in account, with the bytes it keeps: files, versions, trash, and its
        quota (which holds their sum)."""
        return Account.of(self._call("GET", "/user/me").json())

    # -- listing, state, deletion -----------------------------------------------------------

    def list_files(
        self, path: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """One page of the files under the folder ``path`` (all files without it)."""
        params: dict[str, str | int] = {"limit": limit}
        if path:
            params["path"] = path
        if cursor:
            params["cursor"] = cursor
        body = self._call("GET", "/files", params=params).json()
        return Page(body["account"], [File.of(f) for f in body["files"]], body["next_cursor"])

    def iter_files(self, path: str | None = None, page_size: int = 1000) -> Iterator[File]:
        """Every file under ``path``, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.list_files(path, page_size, cursor)
            yield from page.files
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def find(self, path: str) -> File | None:
        """The file at exactly ``path``, if any."""
        folder = path.rsplit("/", 1)[0] + "/"
        return next((f for f in self.iter_files(folder) if f.path == path), None)

    def delete(self, path: str) -> None:
        """Delete a file by path or id (404 ``file_not_found`` if there is none)."""
        self._call("DELETE", "/files", params={"path": path})

    def delete_folder(self, path: str) -> int:
        """Delete a folder and everything below it; returns how many files went (404
        ``folder_not_found`` if there is no such folder)."""
        body = self._call("DELETE", "/files", params={"path": _as_folder(path)}).json()
        return int(body["deleted"])

    # -- folders, moves, copies, search -----------------------------------------------------

    def list_folder(
        self, path: str = "/", limit: int = 100, cursor: str | None = None
    ) -> FolderPage:
        """One page of the folder ``path``'s direct children, folders first (404
        ``folder_not_found`` if there is no such folder)."""
        params: dict[str, str | int] = {"path": path, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = self._call("GET", "/folders", params=params).json()
        return FolderPage(
            account=body["account"],
            path=body["path"],
            folders=[Folder.of(f) for f in body["folders"]],
            files=[File.of(f) for f in body["files"]],
            next_cursor=body["next_cursor"],
        )

    def iter_folder(self, path: str = "/", page_size: int = 1000) -> Iterator[Folder | File]:
        """Every direct child of the folder ``path``, folders first, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.list_folder(path, page_size, cursor)
            yield from page.folders
            yield from page.files
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def make_folder(self, path: str) -> tuple[Folder, bool]:
        """Create the folder ``path`` (``/`` is appended if missing), listed even while empty;
        returns it and whether it is new (409 ``path_taken`` if a file has that path)."""
        response = self._call("POST", "/folders", json={"path": _as_folder(path)})
        return Folder.of(response.json()), response.status_code == 201

    def move(self, source: str, target: str, *, overwrite: bool = False) -> File | FolderTransfer:
        """Move or rename a file (path or id) or a folder (a path ending with ``/``) to
        ``target``: a full path, or a folder ending with ``/`` to keep the name. ``overwrite``
        replaces a file at the target; without it that is 409 ``path_taken``."""
        return self._transfer("/files/move", "moved", source, target, overwrite)

    def copy(self, source: str, target: str, *, overwrite: bool = False) -> File | FolderTransfer:
        """Copy like ``move``: new ids, the same bytes, counted against the quota (413
        ``quota_exceeded``)."""
        return self._transfer("/files/copy", "copied", source, target, overwrite)

    def _transfer(
        self, url: str, count: str, source: str, target: str, overwrite: bool
    ) -> File | FolderTransfer:
        body = self._call(
            "POST", url, json={"from": source, "to": target, "overwrite": overwrite}
        ).json()
        if count in body:
            return FolderTransfer(int(body[count]), body["path"])
        return File.of(body)

    def search(
        self, query: str, path: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """One page of the files whose name contains ``query`` (case-insensitive), below the
        folder ``path`` if given, by path."""
        params: dict[str, str | int] = {"q": query, "limit": limit}
        if path:
            params["path"] = path
        if cursor:
            params["cursor"] = cursor
        body = self._call("GET", "/files/search", params=params).json()
        return Page(body["account"], [File.of(f) for f in body["files"]], body["next_cursor"])

    def iter_search(
        self, query: str, path: str | None = None, page_size: int = 1000
    ) -> Iterator[File]:
        """Every file ``search`` finds, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.search(query, path, page_size, cursor)
            yield from page.files
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- trash and versions -----------------------------------------------------------------

    def list_trash(self, limit: int = 100, cursor: str | None = None) -> TrashPage:
        """One page of the trash, newest first: deleted files, and folders as one entry each."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = self._call("GET", "/trash", params=params).json()
        return TrashPage([TrashEntry.of(e) for e in body["entries"]], body["next_cursor"])

    def iter_trash(self, page_size: int = 1000) -> Iterator[TrashEntry]:
        """Every trash entry, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.list_trash(page_size, cursor)
            yield from page.entries
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def restore(self, entry_id: str, to: str | None = None) -> Restored:
        """Put a trash entry back where it was, or at ``to`` (read as a move's target: a full
        path, or a folder to keep the name); 409 ``path_taken`` when something holds that path
        now, 404 ``trash_not_found`` when it was restored or purged already."""
        body = {"to": to} if to is not None else None
        answer = self._call("POST", f"/trash/{entry_id}/restore", json=body).json()
        return Restored(answer["path"], int(answer["files"]))

    def purge(self, entry_id: str) -> int:
        """Delete one trash entry for good (and its files' versions); returns 1."""
        return int(self._call("DELETE", f"/trash/{entry_id}").json()["purged"])

    def empty_trash(self) -> int:
        """Delete every trash entry for good; returns how many went."""
        return int(self._call("DELETE", "/trash").json()["purged"])

    def versions(self, path: str) -> list[Version]:
        """A file's (path or id) contents: the current one first, then the earlier ones an
        overwrite kept, newest first."""
        body = self._call("GET", "/files/versions", params={"path": path}).json()
        return [Version.of(v) for v in body["versions"]]

    def restore_version(self, version_id: str) -> File:
        """Make an earlier content current again; the content it replaces becomes a version."""
        return File.of(self._call("POST", f"/files/versions/{version_id}/restore").json())

    def delete_version(self, version_id: str) -> None:
        """Delete an earlier content for good (404 ``version_not_found`` if there is none)."""
        self._call("DELETE", f"/files/versions/{version_id}")

    # -- share links ------------------------------------------------------------------------

    def create_share(
        self,
        path: str,
        *,
        expires_in: int | None = None,
        password: str | None = None,
        max_downloads: int | None = None,
        upload: bool = False,
    ) -> Share:
        """A link to a file (path or id) or a folder (ending with ``/``) that anyone holding it
        may open, for ``expires_in`` seconds (the API's default, 7 days, without it), behind
        ``password``, for at most ``max_downloads`` downloads; ``upload``: a link that lets
        anyone add files to the folder instead. The answer's ``url`` is the only time the link
        is shown: ``state``, if any, remembers which share it is (by its token's hash) for
        ``find_share``."""
        body: dict[str, Any] = {"path": path}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if password is not None:
            body["password"] = password
        if max_downloads is not None:
            body["max_downloads"] = max_downloads
        if upload:  # sent only when asked: an API without upload links refuses the field
            body["upload"] = True
        share = Share.of(self._call("POST", "/shares", json=body).json())
        token = share_token(share.url or "")
        if self.state is not None and token is not None:
            self.state.remember_share(_token_sha256(token), share.id)
        return share

    def list_shares(self) -> list[Share]:
        """The caller's share links, newest first, expired and used up ones too (``url`` is
        ``None``: the API shows a link only when it makes it)."""
        return [Share.of(s) for s in self._call("GET", "/shares").json()["shares"]]

    def delete_share(self, share_id: str) -> None:
        """Revoke a share link: it answers 404 ``share_not_found`` from the next request on
        (404 ``share_not_found`` here if there is no such share of the caller's)."""
        try:
            self._call("DELETE", f"/shares/{share_id}")
        except FilestoreError as error:
            if error.code == "share_not_found" and self.state is not None:
                self.state.forget_share(share_id)
            raise
        if self.state is not None:
            self.state.forget_share(share_id)

    def find_share(self, link: str) -> Share | None:
        """The caller's share whose link (or bare token) is ``link``: one listed with that
        ``url``, else the one ``state`` remembers making it (404 ``share_not_found`` if that one
        is gone); ``None`` if neither knows it (the API keeps only a hash of the token and lists
        shares without their links)."""
        token = share_token(link)
        if token is None:
            return None
        shares = self.list_shares()
        for share in shares:
            if share.url is not None and share_token(share.url) == token:
                return share
        if self.state is None:
            return None
        known = self.state.share_for(_token_sha256(token))
        found = next((share for share in shares if share.id == known), None)
        if known is not None and found is None:  # revoked elsewhere, or its target deleted
            self.state.forget_share(known)
            raise FilestoreError(404, "share_not_found", "That link's share is gone already.")
        return found

    def upload_state(self, upload_id: str) -> UploadState:
        return UploadState.of(self._call("GET", f"/files/uploads/{upload_id}").json())

    def stored_parts(self, upload_id: str) -> list[StoredPart]:
        """The parts storage holds for a pending multipart upload."""
        body = self._call("GET", f"/files/uploads/{upload_id}/parts").json()
        return [StoredPart(p["number"], p["size"], p["etag"]) for p in body["parts"]]

    def abort(self, upload_id: str) -> None:
        self._call("DELETE", f"/files/uploads/{upload_id}")

    def complete(self, upload_id: str, wait_seconds: float = COMPLETE_WAIT_SECONDS) -> UploadState:
        """Ask the API to confirm now; retried while it answers 202 (not visible yet)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            response = self._call("POST", f"/files/uploads/{upload_id}/complete")
            state = UploadState.of(response.json())
            if response.status_code != 202:
                return state
            if time.monotonic() > deadline:
                raise FilestoreError(202, "not_confirmed", "Storage has not shown the object yet.")
            time.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))

    # -- uploads ----------------------------------------------------------------------------

    def upload(
        self,
        local: str | os.PathLike[str],
        remote: str,
        *,
        jobs: int = DEFAULT_JOBS,
        proxy: bool = False,
        progress: Progress | None = None,
        content_type: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int | None = None,
    ) -> UploadResult:
        """Upload ``local`` to ``remote`` (a path, or a folder ending in ``/``).

        Straight to storage by default: one presigned PUT up to ``multipart_threshold``, a
        multipart upload with ``jobs`` parts in flight above it, resumed from the parts storage
        holds when ``state`` remembers an upload of the same file (path, size, mtime). With
        ``proxy`` the bytes stream through the API instead."""
        source = Path(local)
        info = source.stat()
        progress = progress or NoProgress()
        kind = content_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        if info.st_size == 0:
            raise FilestoreError(400, "empty_file", f"{source} is empty: nothing to store.")
        if proxy:
            return self._upload_proxied(source, remote, kind, progress)
        resumed = self._resume(source, remote, info, progress, jobs)
        if resumed is not None:
            return resumed
        intent: dict[str, Any] = {"size": info.st_size, "content_type": kind}
        intent.update(self._target(source, remote))
        if info.st_size > multipart_threshold:
            intent["multipart"] = True
            if part_size:
                intent["part_size"] = part_size
        else:
            intent["sha256"] = _sha256_file(source)
        pending = self._call("POST", "/files/upload", json=intent).json()
        ticket = pending["upload"]
        if ticket["method"] == "multipart":
            record = PendingUpload(
                local=str(source.resolve()),
                remote=remote,
                size=info.st_size,
                mtime_ns=info.st_mtime_ns,
                upload_id=ticket["id"],
                part_size=ticket["part_size"],
                part_count=ticket["part_count"],
            )
            if self.state is not None:
                self.state.remember_upload(record)
            progress.started(info.st_size, 0)
            return self._send_parts(source, record, [], progress, jobs)
        progress.started(info.st_size, 0)
        self._put(source, ticket["url"], ticket["headers"], progress)
        state = self.complete(ticket["id"])
        return UploadResult(self._confirmed(state), ticket["id"], info.st_size, 0, "put")

    @staticmethod
    def _target(source: Path, remote: str) -> dict[str, str]:
        if remote.endswith("/"):
            return {"path": remote, "name": source.name}
        return {"path": remote}

    def _resume(
        self, source: Path, remote: str, info: os.stat_result, progress: Progress, jobs: int
    ) -> UploadResult | None:
        """Carry on with the upload the state file ties to this very file, if it is still
        open; a file that changed since (size, mtime) or an upload that closed starts over."""
        if self.state is None:
            return None
        local = str(source.resolve())
        record = self.state.pending_upload(local, remote)
        if record is None:
            return None
        if (record.size, record.mtime_ns) != (info.st_size, info.st_mtime_ns):
            self.state.forget_upload(local, remote)
            self._abort_quietly(record.upload_id)
            return None
        try:
            stored = self.stored_parts(record.upload_id)
        except FilestoreError as error:
            if error.code not in {"upload_closed", "upload_not_found", "not_multipart"}:
                raise
            self.state.forget_upload(local, remote)
            return None
        expected = {n: _part_length(record, n) for n in range(1, record.part_count + 1)}
        kept = [part for part in stored if expected.get(part.number) == part.size]
        progress.started(record.size, sum(part.size for part in kept))
        return self._send_parts(source, record, kept, progress, jobs)

    def _abort_quietly(self, upload_id: str) -> None:
        with contextlib.suppress(FilestoreError, httpx.HTTPError):
            self.abort(upload_id)  # else reconcile closes it at its deadline anyway

    def _send_parts(
        self,
        source: Path,
        record: PendingUpload,
        kept: list[StoredPart],
        progress: Progress,
        jobs: int,
    ) -> UploadResult:
        have = {part.number for part in kept}
        missing = [n for n in range(1, record.part_count + 1) if n not in have]
        sent = 0
        sent_lock = threading.Lock()
        stop = threading.Event()

        def one(number: int) -> None:
            nonlocal sent
            if stop.is_set():
                return
            length = self._send_part(source, record, number, progress, stop)
            with sent_lock:
                sent += length

        pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="filestore-part")
        try:
            futures: list[Future[None]] = [pool.submit(one, n) for n in missing]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                failure = future.exception()
                if failure is not None:
                    raise failure
        except BaseException:
            stop.set()  # Ctrl-C or a failed part: parts in flight finish, no new one starts
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        state = self.complete(record.upload_id)
        if self.state is not None:
            self.state.forget_upload(record.local, record.remote)
        resumed = sum(part.size for part in kept)
        return UploadResult(self._confirmed(state), record.upload_id, sent, resumed, "multipart")

    def _send_part(
        self,
        source: Path,
        record: PendingUpload,
        number: int,
        progress: Progress,
        stop: threading.Event,
    ) -> int:
        length = _part_length(record, number)
        with open(source, "rb") as handle:
            handle.seek((number - 1) * record.part_size)
            data = handle.read(length)
        if len(data) != length:
            raise FilestoreError(400, "file_changed", f"{source} changed during the upload.")
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        for attempt in range(1, PART_ATTEMPTS + 1):
            signed = self._call(
                "POST",
                f"/files/uploads/{record.upload_id}/parts",
                json={"parts": [{"number": number, "sha256": checksum}]},
            ).json()["parts"][0]
            done = 0

            def body(signed_data: bytes = data) -> Iterator[bytes]:
                nonlocal done
                view = memoryview(signed_data)
                for start in range(0, len(view), CHUNK):
                    if stop.is_set():
                        raise InterruptedError("upload stopped")
                    chunk = bytes(view[start : start + CHUNK])
                    yield chunk
                    done += len(chunk)
                    progress.advanced(len(chunk))

            try:
                response = self._storage.put(
                    signed["url"], content=body(), headers=signed["headers"]
                )
            except (httpx.TransportError, InterruptedError):
                progress.advanced(-done)
                if stop.is_set() or attempt == PART_ATTEMPTS:
                    raise
                continue
            if response.status_code < 300:
                return length
            progress.advanced(-done)
            if response.status_code < 500 or attempt == PART_ATTEMPTS:
                raise FilestoreError.from_storage(response)
        raise AssertionError("unreachable")

    def _put(self, source: Path, url: str, headers: dict[str, str], progress: Progress) -> None:
        def body() -> Iterator[bytes]:
            with open(source, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
                    progress.advanced(len(chunk))

        sent_headers = {"Content-Length": str(source.stat().st_size), **headers}
        response = self._storage.put(url, content=body(), headers=sent_headers)
        if response.status_code >= 300:
            raise FilestoreError.from_storage(response)

    def _upload_proxied(
        self, source: Path, remote: str, content_type: str, progress: Progress
    ) -> UploadResult:
        progress.started(source.stat().st_size, 0)
        target = self._target(source, remote)
        with open(source, "rb") as handle:
            reader = _Reader(handle, progress)
            response = self._call(
                "POST",
                "/files/upload",
                data={"path": target["path"]},
                files={"file": (target.get("name", source.name), reader, content_type)},
            )
        return UploadResult(File.of(response.json()), None, source.stat().st_size, 0, "proxy")

    @staticmethod
    def _confirmed(state: UploadState) -> File:
        if state.status != "completed" or state.file is None:
            reason = state.reason or "no reason given"
            raise FilestoreError(409, "upload_closed", f"The upload is {state.status}: {reason}.")
        return state.file

    # -- downloads --------------------------------------------------------------------------

    def download(
        self,
        remote: str,
        local: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
        version: str | None = None,
    ) -> DownloadResult:
        """Download ``remote`` (path or id) to ``local``: its current content, or the earlier
        one ``version`` names (an id from ``versions``).

        The bytes land in ``<local>.filestore-part`` first and are renamed once complete; a
        partial file left by an interrupted run is continued with ``Range`` if the object is
        still the same (its ETag), else the download starts over."""
        target = Path(local)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        progress = progress or NoProgress()
        key = str(partial.resolve())
        # A version is a content of its own: a partial copy of another is not continued.
        source = remote if version is None else f"{remote}@{version}"
        known = self.state.pending_download(key) if self.state else None
        if known is None or known.remote != source or not partial.exists():
            known = None
        url = self._download_url(remote, version)
        fetched = self._fetch(url, partial, known, source, progress)
        if fetched is None:  # the partial file is not a prefix of this object: start over
            partial.unlink(missing_ok=True)
            fetched = self._fetch(url, partial, None, source, progress)
            assert fetched is not None
        total, received, offset = fetched
        if partial.stat().st_size != total:
            raise FilestoreError(502, "short_download", "The download ended early; run it again.")
        os.replace(partial, target)
        if self.state is not None:
            self.state.forget_download(key)
        return DownloadResult(str(target), total, received, offset)

    def _download_url(self, remote: str, version: str | None = None) -> str:
        # proxy=false: a redirect even where the API streams by default; storage serves Range.
        params = {"path": remote, "proxy": "false"}
        if version is not None:
            params["version"] = version
        answer = self._api.get("/files/download", params=params, headers=self._headers())
        if answer.status_code >= 400:
            raise FilestoreError.of(answer)
        url = answer.headers.get("location")
        if answer.status_code != 307 or not url:
            raise FilestoreError(answer.status_code, "unexpected_answer", "Expected a redirect.")
        return str(url)

    def _fetch(
        self,
        url: str,
        partial: Path,
        known: PendingDownload | None,
        remote: str,
        progress: Progress,
    ) -> tuple[int, int, int] | None:
        """GET (from ``known``'s end with ``Range``) into ``partial``: (total, received, offset),
        or None when the object is no longer the one the partial file came from."""
        offset = partial.stat().st_size if known else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self._storage.stream("GET", url, headers=headers) as response:
            etag = response.headers.get("etag", "").strip('"')
            if response.status_code == 416 or (
                response.status_code == 206 and (known is None or etag != known.etag)
            ):
                return None
            if response.status_code not in {200, 206}:
                response.read()
                raise FilestoreError.from_storage(response)
            if response.status_code == 200:
                offset = 0
            total = offset + int(response.headers.get("content-length", "0"))
            key = str(partial.resolve())
            if self.state is not None:
                self.state.remember_download(PendingDownload(key, remote, etag, total))
            progress.started(total, offset)
            received = 0
            partial.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "ab" if offset else "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    progress.advanced(len(chunk))
        return total, received, offset


def share_token(link: str) -> str | None:
    """The token of a share link (``http://host/s/<token>``, a sub-route of it, or the bare
    token); ``None`` for anything else."""
    text = link.strip()
    if _SHARE_TOKEN.fullmatch(text):
        return text
    found = _SHARE_LINK.match(text)
    return found.group(1) if found else None


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _as_folder(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def _part_length(record: PendingUpload, number: int) -> int:
    start = (number - 1) * record.part_size
    return max(0, min(record.part_size, record.size - start))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()
