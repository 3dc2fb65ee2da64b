"""Bounded mixed load: a few users' clients on shared and own paths, every step recorded.

Each client runs one operation at a time against a randomly chosen API process. An operation
ends with what the client can honestly claim:

- ``success``: the API confirmed it (a proxied upload 201 new or 200 overwritten; a direct
  upload's ``complete`` answered 200 ``completed``; a delete 204);
- ``failure``: the API (or storage, for the bytes of a direct upload) answered an error, so the
  write must never become content;
- ``uncertain``: no answer (connection refused or cut, timeout), or a direct upload whose bytes
  went up but whose confirmation the client never saw (``complete`` kept answering 202 or 503,
  or was not asked): it may or may not become content.

Bodies are random bytes; a write's SHA-256 is recorded before its bytes leave, so every content
the service can ever serve is known by its digest.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from soak.model import Answer, Clock, Op, Outcome, Target

log = logging.getLogger("soak.load")

KIB, MIB = 1024, 1024 * 1024
CONTENT_TYPE = "application/octet-stream"
SHARED_PATHS = 6
OWN_PATHS = 3
SHARED_SHARE = 0.7
THINK_SECONDS = 0.05
REQUEST_TIMEOUT = httpx.Timeout(15.0, connect=3.0)
LARGE_TIMEOUT = httpx.Timeout(45.0, connect=3.0)
# Operations still running this long after the load's end are cancelled (and stay uncertain):
# the run's length must not depend on a hung request.
OVERRUN_SECONDS = 15.0
COMPLETE_ATTEMPTS = 4
# An upload in one of these states never becomes content. Not ``expired``: an object that
# landed before the upload closed still completes it (a PUT still in flight at reconcile).
CLOSED_STATES = frozenset({"rejected", "failed", "aborted"})
COMPLETE_BACKOFF_SECONDS = 0.4
# A presigned URL is reused only while it has this much life left.
REUSE_MARGIN_SECONDS = 3.0
# How much of a large body is sent before the client hangs up: past one 5 MiB part.
ABANDON_AFTER = (6 * MIB, 9 * MIB)
LIST_PAGE_MAX = 50
ANOMALY_LIMIT = 200

WEIGHTS = {
    "direct_put": 20.0,
    "direct_post": 10.0,
    "direct_no_complete": 3.0,
    "direct_abandoned": 2.0,
    "proxied": 14.0,
    "proxied_large": 2.5,
    "proxied_abandoned": 0.7,
    "reused_put": 5.0,
    "delete": 10.0,
    "list": 10.0,
    "download_proxy": 10.0,
    "download_redirect": 6.0,
    # A client's own folder tree (``/t<client>/``): copies into it, uploads into it, folder
    # moves (renames between two roots) and file moves inside it, folder deletes, folder views.
    "tree_copy": 3.0,
    "tree_upload": 2.0,
    "tree_move": 2.5,
    "tree_delete": 0.8,
    "tree_view": 2.0,
    # Trash and versions (a delete goes to the trash, an overwrite keeps a version): restores in
    # place and (into the tree) elsewhere, version restores and downloads, purges of one entry
    # and of the whole trash.
    "trash_restore": 3.0,
    "version_restore": 2.5,
    "version_download": 3.0,
    "trash_purge": 1.0,
    "trash_empty": 0.25,
}
TREE_FILES = 3
# Of the trash restores, how many go elsewhere (``to``, into the client's tree).
RESTORE_ELSEWHERE = 0.35
TRASH_PAGE = 50


class Abandon(Exception):
    """Raised inside a request body: the client hangs up mid-upload."""


@dataclass(frozen=True, slots=True)
class Account:
    login: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Reusable:
    """A confirmed direct upload's PUT URL, signed for the content type only."""

    path: str
    url: str
    headers: dict[str, str]
    expires_at: datetime
    upload_id: str


@dataclass
class Recorder:
    clock: Clock
    ops: list[Op] = field(default_factory=list)
    server_errors: list[Answer] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    # Every digest ever sent to a (login, path), registered before the bytes leave.
    written: defaultdict[tuple[str, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def answer(
        self,
        target: Target,
        server: int | None,
        route: str,
        response: httpx.Response,
        start: float,
    ) -> None:
        self.statuses[f"{target}:{response.status_code}"] += 1
        if response.status_code >= 500:
            body = response.content[:300].decode("utf-8", "replace")
            self.server_errors.append(
                Answer(target, server, route, response.status_code, start, self.clock(), body)
            )

    def no_answer(self, target: Target, error: BaseException) -> None:
        self.statuses[f"{target}:{type(error).__name__}"] += 1

    def anomaly(self, kind: str, **details: Any) -> None:
        if len(self.anomalies) < ANOMALY_LIMIT:
            self.anomalies.append({"kind": kind, "at": self.clock(), **details})


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shared_paths() -> list[str]:
    return [f"/shared/s{number}.bin" for number in range(SHARED_PATHS)]


def own_paths(client: int) -> list[str]:
    return [f"/c{client}/f{number}.bin" for number in range(OWN_PATHS)]


def tree_prefix(client: int) -> str:
    """The client's folder tree: content there moves, so it is judged by digest alone."""
    return f"/t{client}/"


class Client:
    def __init__(
        self,
        number: int,
        account: Account,
        api_urls: list[str],
        recorder: Recorder,
        seed: int,
        http: httpx.AsyncClient,
    ) -> None:
        self.number = number
        self.account = account
        self.api_urls = api_urls
        self.recorder = recorder
        self.clock = recorder.clock
        self.rng = random.Random(seed)
        self.http = http
        self.paths_shared = shared_paths()
        self.paths_own = own_paths(number)
        self.reusable: list[Reusable] = []
        # The tree's folder is renamed between two roots; ``tree_root`` is where it is believed
        # to be (a 404 after an unanswered move corrects it).
        self.tree_roots = (f"{tree_prefix(number)}a/", f"{tree_prefix(number)}b/")
        self.tree_root = self.tree_roots[0]
        self.operations: dict[str, Callable[[], Awaitable[None]]] = {
            "direct_put": lambda: self.direct("direct_put", post=False, complete=True),
            "direct_post": lambda: self.direct("direct_post", post=True, complete=True),
            "direct_no_complete": lambda: self.direct(
                "direct_no_complete", post=False, complete=False
            ),
            "direct_abandoned": self.direct_abandoned,
            "proxied": lambda: self.proxied("proxied", self.small_size()),
            "proxied_large": lambda: self.proxied(
                "proxied_large", self.rng.randint(6 * MIB, 20 * MIB)
            ),
            "proxied_abandoned": self.proxied_abandoned,
            "reused_put": self.reused_put,
            "delete": self.delete,
            "list": self.list,
            "download_proxy": lambda: self.download(proxy=True),
            "download_redirect": lambda: self.download(proxy=False),
            "tree_copy": self.tree_copy,
            "tree_upload": self.tree_upload,
            "tree_move": self.tree_move,
            "tree_delete": self.tree_delete,
            "tree_view": self.tree_view,
            "trash_restore": self.trash_restore,
            "version_restore": self.version_restore,
            "version_download": self.version_download,
            "trash_purge": self.trash_purge,
            "trash_empty": self.trash_empty,
        }

    # -- plumbing --------------------------------------------------------------------------

    async def run(self, until: float) -> None:
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[kind] for kind in kinds]
        while self.clock() < until:
            kind = self.rng.choices(kinds, weights)[0]
            try:
                await self.operations[kind]()
            except Exception as error:  # a harness bug must not pass for a service failure
                log.exception("client %s: %s crashed", self.number, kind)
                self.recorder.anomaly("harness error", op=kind, error=repr(error))
            await asyncio.sleep(self.rng.uniform(0.0, THINK_SECONDS))

    def small_size(self) -> int:
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.randint(1, 64)
        if roll < 0.7:
            return self.rng.randint(65, 16 * KIB)
        return self.rng.randint(16 * KIB + 1, 256 * KIB)

    def pick_path(self) -> str:
        if self.rng.random() < SHARED_SHARE:
            return self.rng.choice(self.paths_shared)
        return self.rng.choice(self.paths_own)

    def begin(
        self,
        kind: str,
        path: str | None,
        *,
        is_write: bool = False,
        is_delete: bool = False,
        may_remove: bool = False,
    ) -> Op:
        op = Op(kind, self.number, self.account.login, path, self.clock())
        op.is_write, op.is_delete, op.may_remove = is_write, is_delete, may_remove
        self.recorder.ops.append(op)
        return op

    def finish(self, op: Op, outcome: Outcome) -> Outcome:
        op.outcome = outcome
        op.end = self.clock()
        return outcome

    def sending(self, op: Op, data: bytes) -> None:
        """The bytes are about to leave: from now on they may become the path's content."""
        assert op.path is not None
        op.sha256, op.size = digest(data), len(data)
        self.recorder.written[(op.login, op.path)].add(op.sha256)

    async def api(self, method: str, route: str, path: str, **kwargs: Any) -> httpx.Response | None:
        server = self.rng.randrange(len(self.api_urls))
        headers = {**self.account.headers, **kwargs.pop("headers", {})}
        start = self.clock()
        try:
            response = await self.http.request(
                method, f"{self.api_urls[server]}/api/v1{path}", headers=headers, **kwargs
            )
        except (httpx.HTTPError, Abandon) as error:
            self.recorder.no_answer("api", error)
            return None
        self.recorder.answer("api", server, route, response, start)
        return response

    async def storage(
        self, method: str, route: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        start = self.clock()
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.recorder.no_answer("storage", error)
            return None
        self.recorder.answer("storage", None, route, response, start)
        return response

    @staticmethod
    def status(response: httpx.Response | None) -> int | None:
        return None if response is None else response.status_code

    # -- writes ----------------------------------------------------------------------------

    async def direct(self, kind: str, *, post: bool, complete: bool) -> None:
        """JSON intent, bytes to storage (PUT or browser POST), then ``complete``."""
        path = self.pick_path()
        data = os.urandom(self.small_size())
        op = self.begin(kind, path, is_write=True)
        declare_size = self.rng.random() < 0.5
        declare_sha = not post and self.rng.random() < 0.3
        intent: dict[str, Any] = {"path": path, "content_type": CONTENT_TYPE}
        if declare_size:
            intent["size"] = len(data)
        if declare_sha:
            intent["sha256"] = digest(data)
        response = await self.api("POST", "POST /files/upload (json)", "/files/upload", json=intent)
        op.step("intent", self.status(response))
        if response is None or response.status_code != 201:
            # No URL, no bytes sent: whatever the answer, this can never become content.
            self.finish(op, "uncertain" if response is None else "failure")
            return
        ticket = response.json()["upload"]
        self.sending(op, data)
        form = ticket.get("post") if post else None
        if form is not None:
            sent = await self.storage(
                "POST",
                "presigned POST",
                form["url"],
                data=form["fields"],
                files={"file": ("blob.bin", data, CONTENT_TYPE)},
            )
            op.step("post", self.status(sent))
        else:
            sent = await self.storage(
                "PUT", "presigned PUT", ticket["url"], headers=ticket["headers"], content=data
            )
            op.step("put", self.status(sent))
        if sent is not None and not sent.is_success:
            self.finish(op, "failure")  # storage refused the bytes
            return
        op.upload_id = ticket["id"]
        if sent is not None:
            op.sent_at = time.time()
        if not complete:
            self.finish(op, "uncertain")
            return
        outcome = self.finish(op, await self.complete(op, ticket["id"]))
        if outcome == "success" and form is None and not declare_size and not declare_sha:
            expires_at = datetime.fromisoformat(ticket["expires_at"].replace("Z", "+00:00"))
            self.reusable.append(
                Reusable(path, ticket["url"], ticket["headers"], expires_at, ticket["id"])
            )

    async def complete(self, op: Op, upload_id: str) -> Outcome:
        for attempt in range(COMPLETE_ATTEMPTS):
            response = await self.api(
                "POST", "POST /files/uploads/{id}/complete", f"/files/uploads/{upload_id}/complete"
            )
            op.step("complete", self.status(response))
            if response is not None:
                if response.status_code == 200:
                    state = response.json().get("status")
                    if state in CLOSED_STATES:
                        return "failure"
                    return "success" if state == "completed" else "uncertain"
                if response.status_code in {404, 409}:
                    return "failure"  # rejected, expired or unknown: never content
            # 202 (not arrived yet), 503, no answer: the upload stays pending; ask again.
            await asyncio.sleep(COMPLETE_BACKOFF_SECONDS * 2**attempt)
        return "uncertain"

    async def direct_abandoned(self) -> None:
        """An intent whose URL is never used: reconcile must expire it."""
        path = self.pick_path()
        op = self.begin("direct_abandoned", path)
        intent = {"path": path, "content_type": CONTENT_TYPE, "size": self.small_size()}
        response = await self.api("POST", "POST /files/upload (json)", "/files/upload", json=intent)
        op.step("intent", self.status(response))
        ok = response is not None and response.status_code == 201
        self.finish(op, "uncertain" if response is None else "success" if ok else "failure")

    async def proxied(self, kind: str, size: int) -> None:
        path = self.pick_path()
        data = os.urandom(size)
        op = self.begin(kind, path, is_write=True)
        self.sending(op, data)
        response = await self.api(
            "POST",
            "POST /files/upload (multipart)",
            "/files/upload",
            data={"path": path},
            files={"file": ("blob.bin", data, CONTENT_TYPE)},
            timeout=LARGE_TIMEOUT if size > MIB else REQUEST_TIMEOUT,
        )
        op.step("upload", self.status(response))
        if response is None:
            self.finish(op, "uncertain")
        else:
            stored = response.status_code in (200, 201)
            self.finish(op, "success" if stored else "failure")

    async def proxied_abandoned(self) -> None:
        """A large proxied upload cut off after its first part: nothing of it may remain."""
        path = self.pick_path()
        op = self.begin("proxied_abandoned", path)
        boundary = uuid.uuid4().hex
        cutoff = self.rng.randint(*ABANDON_AFTER)

        async def body() -> AsyncIterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n{path}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="blob.bin"\r\nContent-Type: {CONTENT_TYPE}\r\n\r\n'
            ).encode()
            sent = 0
            while sent < cutoff:
                chunk = os.urandom(min(MIB, cutoff - sent))
                sent += len(chunk)
                yield chunk
            await asyncio.sleep(0.2)  # let the part reach storage before hanging up
            raise Abandon()

        response = await self.api(
            "POST",
            "POST /files/upload (multipart)",
            "/files/upload",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=LARGE_TIMEOUT,
        )
        op.step("upload", self.status(response))
        if response is not None and response.is_success:
            self.recorder.anomaly("a truncated upload was accepted", path=path, login=op.login)
        self.finish(op, "uncertain" if response is None else "failure")

    async def reused_put(self) -> None:
        """Different bytes PUT to a confirmed upload's still-valid URL: a write of its own."""
        now = datetime.now(UTC)
        usable = [
            reuse
            for reuse in self.reusable
            if (reuse.expires_at - now).total_seconds() > REUSE_MARGIN_SECONDS
        ]
        self.reusable = usable
        if not usable:
            await self.direct("direct_put", post=False, complete=True)
            return
        reuse = self.rng.choice(usable)
        data = os.urandom(self.small_size())
        op = self.begin("reused_put", reuse.path, is_write=True, may_remove=True)
        op.upload_id = reuse.upload_id
        self.sending(op, data)
        sent = await self.storage(
            "PUT", "reused presigned PUT", reuse.url, headers=reuse.headers, content=data
        )
        op.step("put", self.status(sent))
        # Accepted by storage, the API may take it as new content or reject the file: uncertain.
        self.finish(op, "failure" if sent is not None and not sent.is_success else "uncertain")

    async def delete(self) -> None:
        path = self.pick_path()
        op = self.begin("delete", path, is_delete=True)
        response = await self.api("DELETE", "DELETE /files", "/files", params={"path": path})
        op.step("delete", self.status(response))
        if response is None:
            self.finish(op, "uncertain")
        else:
            self.finish(op, "success" if response.status_code == 204 else "failure")

    # -- the folder tree ---------------------------------------------------------------------

    def tree_file(self) -> str:
        return f"{self.tree_root}k{self.rng.randrange(TREE_FILES)}.bin"

    def tree_answer(self, op: Op, name: str, response: httpx.Response | None) -> None:
        """Tree operations may meet 404 (the root moved or went) or 409 (a target exists)."""
        op.step(name, self.status(response))
        if response is None:
            self.finish(op, "uncertain")
            return
        self.finish(op, "success" if response.is_success else "failure")
        if response.status_code == 404:
            self.tree_root = self.other_root()

    def other_root(self) -> str:
        return self.tree_roots[1] if self.tree_root == self.tree_roots[0] else self.tree_roots[0]

    async def tree_copy(self) -> None:
        """A file copied into the tree: a second reference to the same object."""
        op = self.begin("tree_copy", self.tree_root)
        body = {"from": self.pick_path(), "to": self.tree_file(), "overwrite": True}
        response = await self.api("POST", "POST /files/copy", "/files/copy", json=body)
        op.step("copy", self.status(response))
        self.finish(op, "uncertain" if response is None else "success")

    async def tree_upload(self) -> None:
        data = os.urandom(self.small_size())
        op = self.begin("tree_upload", self.tree_root)
        op.sha256, op.size = digest(data), len(data)
        response = await self.api(
            "POST",
            "POST /files/upload (multipart)",
            "/files/upload",
            data={"path": self.tree_file()},
            files={"file": ("blob.bin", data, CONTENT_TYPE)},
        )
        self.tree_answer(op, "upload", response)

    async def tree_move(self) -> None:
        """The tree's folder renamed to the other root, or a file moved inside it."""
        if self.rng.random() < 0.5:
            op = self.begin("tree_move_file", self.tree_root)
            body: dict[str, Any] = {"from": self.tree_file(), "to": self.tree_file()}
            body["overwrite"] = self.rng.random() < 0.5
            response = await self.api("POST", "POST /files/move", "/files/move", json=body)
            op.step("move", self.status(response))
            self.finish(op, "uncertain" if response is None else "success")
            return
        op = self.begin("tree_move", self.tree_root)
        target = self.other_root()
        body = {"from": self.tree_root, "to": target.rstrip("/")}
        response = await self.api("POST", "POST /files/move", "/files/move", json=body)
        self.tree_answer(op, "move", response)
        if response is not None and response.status_code == 200:
            self.tree_root = response.json()["path"]
            if self.tree_root not in self.tree_roots:  # moved inside a stale other root
                self.tree_root = target

    async def tree_delete(self) -> None:
        op = self.begin("tree_delete", self.tree_root)
        params = {"path": self.tree_root}
        response = await self.api("DELETE", "DELETE /files (folder)", "/files", params=params)
        op.step("delete", self.status(response))
        self.finish(op, "uncertain" if response is None else "success")
        if response is not None and response.status_code == 404:
            self.tree_root = self.other_root()

    async def tree_view(self) -> None:
        op = self.begin("tree_view", self.tree_root)
        params = {"path": self.tree_root}
        response = await self.api("GET", "GET /folders", "/folders", params=params)
        self.tree_answer(op, "view", response)
        if response is None or response.status_code != 200:
            return
        body = response.json()
        for entry in body["folders"] + body["files"]:
            if not str(entry.get("path", "")).startswith(self.tree_root):
                self.recorder.anomaly(
                    "shown outside the folder", folder=self.tree_root, entry=entry
                )
        for entry in body["files"]:
            if entry.get("size") is None or entry.get("etag") is None:
                self.recorder.anomaly("shown without content", login=op.login, file=entry)

    # -- trash and versions ------------------------------------------------------------------

    def judged(self, path: str) -> bool:
        """A path whose final content is judged against its operations (not the tree's)."""
        return not path.startswith("/t")

    async def trash_entries(self, op: Op) -> list[dict[str, Any]] | None:
        """The account's trash (first page); None (and ``op`` finished) when not answered."""
        response = await self.api("GET", "GET /trash", "/trash", params={"limit": TRASH_PAGE})
        op.step("list", self.status(response))
        if response is None or response.status_code != 200:
            self.finish(op, "uncertain" if response is None else "failure")
            return None
        entries: list[dict[str, Any]] = response.json()["entries"]
        for entry in entries:
            if entry.get("kind") == "file" and (entry.get("files"), entry.get("size")) == (0, 0):
                self.recorder.anomaly("a file entry in the trash with no file", entry=entry)
        return entries

    async def pick_entry(self, op: Op) -> dict[str, Any] | None:
        """One entry of the trash; None (and ``op`` finished) when there is none."""
        entries = await self.trash_entries(op)
        if entries is not None and not entries:
            op.step("empty", None)
            self.finish(op, "success")
        return self.rng.choice(entries) if entries else None

    def settled(self, op: Op, response: httpx.Response | None, ok: set[int]) -> None:
        if response is None:
            self.finish(op, "uncertain")
        else:
            self.finish(op, "success" if response.status_code in ok else "failure")

    async def trash_restore(self) -> None:
        """An entry put back where it was, or (``to``) into the client's tree."""
        elsewhere = self.rng.random() < RESTORE_ELSEWHERE
        op = self.begin("trash_restore_to" if elsewhere else "trash_restore", None)
        entry = await self.pick_entry(op)
        if entry is None:
            return
        body: dict[str, Any] | None = None
        if elsewhere:
            suffix = "" if entry["kind"] == "folder" else ".bin"
            body = {"to": f"{tree_prefix(self.number)}r{self.rng.randrange(TREE_FILES)}{suffix}"}
            op.path = body["to"]
        else:
            op.path = entry["path"]
            # Back where it was: a judged path may hold any content once written to it.
            op.is_write = op.revives = entry["kind"] == "file" and self.judged(entry["path"])
        response = await self.api(
            "POST", "POST /trash/{id}/restore", f"/trash/{entry['id']}/restore", json=body
        )
        op.step("restore", self.status(response))
        self.settled(op, response, {200})

    async def trash_purge(self) -> None:
        op = self.begin("trash_purge", None)
        entry = await self.pick_entry(op)
        if entry is None:
            return
        op.path = entry["path"]
        response = await self.api("DELETE", "DELETE /trash/{id}", f"/trash/{entry['id']}")
        op.step("purge", self.status(response))
        self.settled(op, response, {200})

    async def trash_empty(self) -> None:
        op = self.begin("trash_empty", None)
        response = await self.api("DELETE", "DELETE /trash", "/trash")
        op.step("empty", self.status(response))
        self.settled(op, response, {200})

    async def versions_of(self, op: Op, path: str) -> list[dict[str, Any]] | None:
        """The path's contents, current first; None (and ``op`` finished) when there are none
        to pick from."""
        response = await self.api(
            "GET", "GET /files/versions", "/files/versions", params={"path": path}
        )
        op.step("versions", self.status(response))
        if response is None or response.status_code != 200:
            self.finish(op, "uncertain" if response is None else "failure")
            return None
        found: list[dict[str, Any]] = response.json()["versions"]
        if sum(1 for version in found if version["current"]) != 1 or not found[0]["current"]:
            self.recorder.anomaly("versions without one current content first", path=path)
        return found

    async def version_restore(self) -> None:
        path = self.pick_path()
        op = self.begin("version_restore", path)
        found = await self.versions_of(op, path)
        if found is None:
            return
        older = [version for version in found if not version["current"]]
        if not older:
            op.step("none", None)
            self.finish(op, "success")
            return
        version = self.rng.choice(older)
        op.is_write = op.revives = True
        response = await self.api(
            "POST",
            "POST /files/versions/{id}/restore",
            f"/files/versions/{version['id']}/restore",
        )
        op.step("restore", self.status(response))
        self.settled(op, response, {200})

    async def version_download(self) -> None:
        """An earlier content (or now and then the current one) downloaded by its id: bytes
        written to the path, and as many as the version says (unless a reused URL rewrote
        them meanwhile)."""
        path = self.pick_path()
        op = self.begin("version_download", path)
        found = await self.versions_of(op, path)
        if found is None:
            return
        older = [version for version in found if not version["current"]]
        version = self.rng.choice(older or found)
        params = {"path": path, "version": version["id"], "proxy": "true"}
        response = await self.api(
            "GET", "GET /files/download?version", "/files/download", params=params
        )
        op.step("download", self.status(response))
        self.settled(op, response, {200})
        if response is None or response.status_code != 200:
            return
        got = digest(response.content)
        op.sha256, op.size = got, len(response.content)
        if got not in self.recorder.written[(op.login, path)]:
            self.recorder.anomaly(
                "downloaded version bytes never written to the path",
                login=op.login,
                path=path,
                version=version,
                sha256=got,
                size=len(response.content),
            )

    # -- reads -----------------------------------------------------------------------------

    async def list(self) -> None:
        prefix = self.rng.choice(["/", "/shared/", f"/c{self.number}/"])
        op = self.begin("list", prefix)
        params = {"path": prefix, "limit": self.rng.randint(1, LIST_PAGE_MAX)}
        response = await self.api("GET", "GET /files", "/files", params=params)
        op.step("list", self.status(response))
        if response is None:
            self.finish(op, "uncertain")
            return
        self.finish(op, "success" if response.status_code == 200 else "failure")
        if response.status_code != 200:
            return
        for entry in response.json()["files"]:
            if entry.get("size") is None or entry.get("etag") is None:
                self.recorder.anomaly("listed without content", login=op.login, file=entry)
            if not str(entry.get("path", "")).startswith(prefix):
                self.recorder.anomaly("listed outside the folder", prefix=prefix, file=entry)

    async def download(self, *, proxy: bool) -> None:
        path = self.pick_path()
        op = self.begin("download_proxy" if proxy else "download_redirect", path)
        params: dict[str, Any] = {"path": path}
        if proxy:
            params["proxy"] = "true"
        response = await self.api("GET", "GET /files/download", "/files/download", params=params)
        op.step("download", self.status(response))
        if response is not None and response.status_code == 307:
            location = response.headers.get("location", "")
            response = await self.storage("GET", "presigned GET", location)
            op.step("get", self.status(response))
        if response is None:
            self.finish(op, "uncertain")
            return
        self.finish(op, "success" if response.status_code == 200 else "failure")
        if response.status_code == 200:
            found = digest(response.content)
            op.sha256, op.size = found, len(response.content)
            if found not in self.recorder.written[(op.login, path)]:
                self.recorder.anomaly(
                    "downloaded bytes never written to the path",
                    login=op.login,
                    path=path,
                    sha256=found,
                    size=len(response.content),
                    via="proxy" if proxy else "redirect",
                )


async def register(api_urls: list[str], count: int) -> list[Account]:
    """``count`` users, each with a token (the JWT secret is shared by both APIs)."""

    async def one(number: int) -> Account:
        base_url = f"{api_urls[number % len(api_urls)]}/api/v1"
        login, password = f"soak{number}_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
        credentials = {"login": login, "password": password}
        async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
            (await http.post("/user/register", json=credentials)).raise_for_status()
            token = await http.post("/user/auth", json=credentials)
            token.raise_for_status()
        return Account(login, token.json()["access_token"])

    return list(await asyncio.gather(*(one(number) for number in range(count))))


async def run_load(
    accounts: list[Account],
    api_urls: list[str],
    recorder: Recorder,
    clients: int,
    until: float,
    seed: int,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pool = []
        for number in range(clients):
            # A connection pool per client, as separate programs would have.
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=REQUEST_TIMEOUT))
            account = accounts[number % len(accounts)]
            pool.append(Client(number, account, api_urls, recorder, seed + number, http))
        tasks = [asyncio.create_task(client.run(until)) for client in pool]
        _, late = await asyncio.wait(tasks, timeout=until + OVERRUN_SECONDS - recorder.clock())
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    for op in recorder.ops:
        if not op.end:  # cancelled in flight: its outcome was never seen
            op.end = recorder.clock()
            op.steps.append("cancelled")
    if late:
        log.warning(
            "%d clients overran the load by %.0fs and were cancelled", len(late), OVERRUN_SECONDS
        )
