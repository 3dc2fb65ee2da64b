"""The client module and the ``filestore`` command against ``make run``'s stack (API, worker,
SeaweedFS with its webhook) on free ports: bytes really go to storage through presigned URLs."""

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from client import (
    Client,
    File,
    FilestoreError,
    Folder,
    FolderTransfer,
    Restored,
    StateFile,
    share_token,
)
from tests.api.test_e2e import running_service

__all__ = ["running_service"]  # the e2e fixture: make run's stack on free ports

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
FILESTORE = Path(sys.executable).with_name("filestore")
Service = tuple[str, int, subprocess.Popen[bytes]]
# This module's service gives each account this much, so that a few copies (which cost rows,
# not bytes) reach 413; every test here has an account of its own and stores at most 48 MiB.
QUOTA = 128 * MIB


@pytest.fixture(scope="module", autouse=True)
def _small_quota() -> Iterator[None]:
    # Autouse, so it runs before the module's ``running_service``, which passes the environment on.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FILESTORE_USER_QUOTA_BYTES", str(QUOTA))
        yield


def _write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _account(url: str, state: StateFile | None = None) -> Client:
    api = Client(url, state=state)
    login = f"cli{time.time_ns() % 10**12}"
    api.register(login, "client-pass-1234")
    api.sign_in(login, "client-pass-1234")
    return api


# A SIGINT ignored by whoever started the tests (nohup, a background job, some CI runners) is
# inherited through exec, and Python then never raises KeyboardInterrupt: the child restores it.
_WITH_DEFAULT_SIGINT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from client.cli import main; sys.argv[0] = 'filestore'; sys.exit(main())"
)


class _StopAt:
    """A progress listener that interrupts the transfer (as Ctrl-C would) past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.done = limit, 0

    def started(self, total: int, done: int) -> None:
        self.done = done

    def advanced(self, nbytes: int) -> None:
        self.done += nbytes
        if self.done >= self.limit:
            raise KeyboardInterrupt


def test_client_uploads_lists_downloads_and_deletes(
    running_service: Service, tmp_path: Path
) -> None:
    url = running_service[0]
    with _account(url) as api:
        small = _write(tmp_path / "small.txt", 1000)
        big = _write(tmp_path / "big.bin", 12 * MIB + 3)
        viaapi = _write(tmp_path / "via.bin", 300_000)

        put = api.upload(tmp_path / "small.txt", "/docs/")
        assert (put.method, put.file.path, put.file.size) == ("put", "/docs/small.txt", 1000)
        assert put.file.sha256 == _sha(small)  # declared, signed, checked by storage
        multi = api.upload(
            tmp_path / "big.bin", "/docs/big.bin", multipart_threshold=5 * MIB, jobs=3
        )
        assert (multi.method, multi.file.size, multi.sent) == ("multipart", len(big), len(big))
        proxied = api.upload(tmp_path / "via.bin", "/other/via.bin", proxy=True)
        assert (proxied.method, proxied.file.size) == ("proxy", len(viaapi))

        assert multi.upload_id is not None
        assert api.upload_state(multi.upload_id).status == "completed"
        pages = []
        page = api.list_files(limit=1)
        pages.append(page)
        while page.next_cursor:
            page = api.list_files(limit=1, cursor=page.next_cursor)
            pages.append(page)
        assert [p.files[0].path for p in pages] == [
            "/docs/big.bin",
            "/docs/small.txt",
            "/other/via.bin",
        ]
        assert [f.path for f in api.iter_files("/docs/")] == ["/docs/big.bin", "/docs/small.txt"]

        fetched = api.download("/docs/big.bin", tmp_path / "back.bin")
        assert (fetched.size, fetched.resumed) == (len(big), 0)
        assert _sha((tmp_path / "back.bin").read_bytes()) == _sha(big)

        api.delete("/docs/small.txt")
        with pytest.raises(FilestoreError) as missing:
            api.delete("/docs/small.txt")
        assert (missing.value.status, missing.value.code) == (404, "file_not_found")
        with Client(url) as other, pytest.raises(FilestoreError) as wrong:
            other.sign_in(api.list_files().account, "not the password")
        assert wrong.value.code == "invalid_credentials"


def test_client_resumes_an_interrupted_multipart_upload_and_download(
    running_service: Service, tmp_path: Path
) -> None:
    url = running_service[0]
    state = StateFile(tmp_path / "state.json")
    data = _write(tmp_path / "disk.img", 40 * MIB)
    with _account(url, state) as api:
        with pytest.raises(KeyboardInterrupt):
            api.upload(
                tmp_path / "disk.img",
                "/img/",
                multipart_threshold=5 * MIB,
                part_size=5 * MIB,
                jobs=2,
                progress=_StopAt(len(data) // 2),
            )
        [pending] = state.pending_uploads()
        stored = sum(part.size for part in api.stored_parts(pending.upload_id))
        assert 0 < stored < len(data)

        resumed = api.upload(tmp_path / "disk.img", "/img/", multipart_threshold=5 * MIB)
        assert resumed.upload_id == pending.upload_id
        # A part whose body was all sent when the transfer stopped may still land in storage
        # after ``stored`` was read: resuming sends only what storage lacks at that moment.
        assert resumed.resumed >= stored
        assert resumed.resumed + resumed.sent == len(data)
        assert state.pending_uploads() == []
        print(
            f"\nresume: 40 MiB, interrupted at 50%: {stored} bytes stored, "
            f"{resumed.sent} re-sent ({resumed.sent / len(data):.0%})"
        )

        with pytest.raises(KeyboardInterrupt):
            api.download("/img/disk.img", tmp_path / "copy.img", progress=_StopAt(len(data) // 3))
        partial = tmp_path / "copy.img.filestore-part"
        kept = partial.stat().st_size
        assert 0 < kept < len(data)
        fetched = api.download("/img/disk.img", tmp_path / "copy.img")
        assert (fetched.resumed, fetched.received) == (kept, len(data) - kept)
        assert not partial.exists()
        assert _sha((tmp_path / "copy.img").read_bytes()) == _sha(data)


def _cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FILESTORE), *args],
        check=False,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli_env(running_service: Service, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILESTORE_")}
    env.update(
        FILESTORE_CONFIG_DIR=str(tmp_path / "config"),
        FILESTORE_URL=running_service[0],
        COLUMNS="120",
    )
    login = f"term{time.time_ns() % 10**12}"
    signed = _cli(env, "login", "--register", "--login", login, "--password", "term-pass-1234")
    assert signed.returncode == 0, signed.stderr
    return env


def test_cli_login_takes_the_password_from_the_environment(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Scripts sign in without a prompt (stdin is empty here) and without the password in argv."""
    login = f"envpw{time.time_ns() % 10**12}"
    env = {**cli_env, "FILESTORE_CONFIG_DIR": str(tmp_path / "other")}
    first = _cli({**env, "FILESTORE_PASSWORD": "env-pass-1234"}, "login", "--register", "-l", login)
    assert first.returncode == 0, first.stderr
    wrong = _cli({**env, "FILESTORE_PASSWORD": "not-the-pass"}, "login", "--login", login)
    assert wrong.returncode == 1
    assert "invalid_credentials" in wrong.stderr


def test_cli_login_ls_put_get_rm_status(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = Path(cli_env["FILESTORE_CONFIG_DIR"]) / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["token"]

    data = _write(tmp_path / "report.pdf", 2 * MIB)
    folder = tmp_path / "photos"
    tree = {
        "a.jpg": _write(folder / "a.jpg", 1000),
        "trip/b.jpg": _write(folder / "trip" / "b.jpg", 6 * MIB),
        "trip/deep/c.txt": _write(folder / "trip" / "deep" / "c.txt", 10),
    }
    put = _cli(cli_env, "put", str(tmp_path / "report.pdf"), "/docs/")
    assert put.returncode == 0, put.stderr
    assert "/docs/report.pdf" in put.stdout
    tree_put = _cli(cli_env, "put", "-r", str(folder), "/pics/", "--jobs", "3")
    assert tree_put.returncode == 0, tree_put.stderr
    assert "3 file(s)" in tree_put.stdout

    listed = _cli(cli_env, "ls", "-r", "--json")  # -r: every file, as GET /files lists them
    assert listed.returncode == 0, listed.stderr
    files = {f["path"]: f for f in map(json.loads, listed.stdout.splitlines())}
    assert {path: f["size"] for path, f in files.items()} == {
        "/docs/report.pdf": len(data),
        **{f"/pics/{name}": len(body) for name, body in tree.items()},
    }
    assert all(f["created_ad"] for f in files.values())  # the API's names
    table = _cli(cli_env, "ls", "--recursive", "/pics/")
    assert "/pics/trip/deep/c.txt" in table.stdout
    assert "/docs/report.pdf" not in table.stdout
    long_path = "/long/" + "a-folder-name-that-goes-on/" * 6 + "file.txt"
    assert _cli(cli_env, "put", str(folder / "a.jpg"), long_path).returncode == 0
    piped = _cli(cli_env, "ls", "-r", "/long/").stdout.splitlines()
    assert [line.split("\t")[:2] for line in piped] == [[long_path, "1000"]]  # never cut with "…"

    got = _cli(cli_env, "get", "/pics/trip/b.jpg", str(tmp_path / "b-copy.jpg"))
    assert got.returncode == 0, got.stderr
    assert _sha((tmp_path / "b-copy.jpg").read_bytes()) == _sha(tree["trip/b.jpg"])
    here = tmp_path / "here"
    here.mkdir()
    assert _cli(cli_env, "get", "/docs/report.pdf", cwd=here).returncode == 0
    assert _sha((here / "report.pdf").read_bytes()) == _sha(data)

    removed = _cli(cli_env, "rm", "/docs/report.pdf")
    assert removed.returncode == 0, removed.stderr
    again = _cli(cli_env, "rm", "/docs/report.pdf")
    assert again.returncode == 1
    assert "No such file. [file_not_found]" in again.stderr
    assert "Traceback" not in again.stderr

    unknown = _cli(cli_env, "status", "00000000-0000-0000-0000-000000000000")
    assert (unknown.returncode, "Traceback" in unknown.stderr) == (1, False)
    assert "[upload_not_found]" in unknown.stderr
    assert _cli(cli_env, "put", str(folder)).returncode == 2  # a folder needs -r
    assert _cli(cli_env, "put", "--nope", "x").returncode == 2
    signed_out = _cli({**cli_env, "FILESTORE_TOKEN": "not-a-token"}, "ls")
    assert signed_out.returncode == 1
    assert "not_authenticated" in signed_out.stderr


def test_cli_put_interrupted_by_ctrl_c_resumes_from_the_stored_parts(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Paced, so that Ctrl-C lands mid-upload however fast storage is (unpaced, storage took
    # 96 MiB in under a second, and a loaded machine could lose the race with the polling).
    size = 48 * MIB
    data = _write(tmp_path / "big.bin", size)
    state_file = Path(cli_env["FILESTORE_CONFIG_DIR"]) / "state.json"
    token = json.loads((Path(cli_env["FILESTORE_CONFIG_DIR"]) / "config.json").read_text())["token"]
    command = ["put", str(tmp_path / "big.bin"), "/big.bin", "--jobs", "1"]
    command += ["--multipart-threshold", str(5 * MIB), "--limit-rate", "16M"]
    process = subprocess.Popen(
        [sys.executable, "-c", _WITH_DEFAULT_SIGINT, *command],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    upload_id = None
    with httpx.Client(
        base_url=cli_env["FILESTORE_URL"] + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if upload_id is None and state_file.exists():
                # This file's entry: earlier tests of the module may have left others.
                uploads = json.loads(state_file.read_text())["uploads"].values()
                mine = (tmp_path / "big.bin").resolve()
                upload_id = next(
                    (u["upload_id"] for u in uploads if Path(u["local"]).resolve() == mine), None
                )
            if upload_id is not None:
                parts = http.get(f"/files/uploads/{upload_id}/parts").json()["parts"]
                if sum(p["size"] for p in parts) >= size // 6:
                    break
            time.sleep(0.02)
        still_running = process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert still_running, f"the put ended before Ctrl-C (upload {upload_id}): {stderr}"
        assert process.returncode == 130, stderr
        assert "run the same command again to resume" in stderr
        assert "Traceback" not in stderr
        assert upload_id is not None
        stored = sum(
            p["size"] for p in http.get(f"/files/uploads/{upload_id}/parts").json()["parts"]
        )
    assert 0 < stored < size

    again = _cli(cli_env, *command)
    assert again.returncode == 0, again.stderr
    found = re.search(r"sent (\d+) bytes", again.stdout)
    assert found is not None, again.stdout
    resent = int(found.group(1))
    # A part whose body was all sent before Ctrl-C may land after ``stored`` was read.
    assert 0 < resent <= size - stored
    print(
        f"\nfilestore put resume: {size} bytes, Ctrl-C at {stored / size:.0%} stored; "
        f"second run sent {resent} bytes ({resent / size:.0%})"
    )
    started = time.monotonic()
    got = _cli(cli_env, "get", "/big.bin", str(tmp_path / "back.bin"), "--limit-rate", "64M")
    assert got.returncode == 0, got.stderr
    assert time.monotonic() - started >= size / (64 * MIB)  # downloads are paced too
    assert _sha((tmp_path / "back.bin").read_bytes()) == _sha(data)


def test_client_folders_pages_moves_copies_and_searches(
    running_service: Service, tmp_path: Path
) -> None:
    url = running_service[0]
    _write(tmp_path / "x.txt", 10)
    with _account(url) as api:
        for target in ("/p/y.txt", "/p/x.txt", "/p/deep/z.txt"):
            api.upload(tmp_path / "x.txt", target)
        folder, created = api.make_folder("/p/empty")  # the "/" is added
        assert (folder.path, created) == ("/p/empty/", True)
        assert api.make_folder("/p/empty/")[1] is False

        # One child a page: the cursor carries on from the folders into the files.
        children = list(api.iter_folder("/p/", page_size=1))
        assert [(type(c), c.path) for c in children] == [
            (Folder, "/p/deep/"),
            (Folder, "/p/empty/"),
            (File, "/p/x.txt"),
            (File, "/p/y.txt"),
        ]
        moved = api.move("/p/deep/", "/q/")
        assert moved == FolderTransfer(1, "/q/deep/")
        copied = api.copy("/p/x.txt", "/q/deep/")
        assert isinstance(copied, File) and copied.path == "/q/deep/x.txt"
        assert [f.path for f in api.iter_search("X.T")] == ["/p/x.txt", "/q/deep/x.txt"]
        assert [f.path for f in api.iter_search("x.", "/q/")] == ["/q/deep/x.txt"]
        assert api.delete_folder("/q") == 2
        with pytest.raises(FilestoreError) as gone:
            api.list_folder("/q/")
        assert (gone.value.status, gone.value.code) == (404, "folder_not_found")


def _lines(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def _refused(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """One clear line on stderr, the exit code, and no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_mkdir_ls_mv_cp_rm_folders(cli_env: dict[str, str], tmp_path: Path) -> None:
    tree = tmp_path / "docs"
    a = _write(tree / "a.txt", 100)
    _write(tree / "sub" / "b.txt", 200)
    _write(tree / "sub" / "deep" / "c.txt", 300)
    assert _cli(cli_env, "put", "-r", str(tree), "/docs/").returncode == 0

    made = _cli(cli_env, "mkdir", "/empty", "/docs/new/")
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == ["created", "/empty/", "created", "/docs/new/"]
    assert "exists" in _cli(cli_env, "mkdir", "/empty/").stdout  # mkdir -p: no error
    _refused(_cli(cli_env, "mkdir", "/docs/a.txt"), 1, "[path_taken]")

    # Direct children, folders first (though "a.txt" sorts before "new"), whole paths on a pipe.
    assert [line[0] for line in _lines(_cli(cli_env, "ls"))] == ["/docs/", "/empty/"]
    docs = _lines(_cli(cli_env, "ls", "/docs"))
    assert [line[:3] for line in docs] == [
        ["/docs/new/", "-", "-"],
        ["/docs/sub/", "-", "-"],
        ["/docs/a.txt", "100", "text/plain"],
    ]
    listed = _cli(cli_env, "ls", "/docs/", "--json")
    shapes = [json.loads(line) for line in listed.stdout.splitlines()]
    assert set(shapes[0]) == {"name", "path", "modified_at"}  # a folder, as GET /folders has it
    assert (shapes[1]["name"], shapes[1]["path"]) == ("sub", "/docs/sub/")
    assert shapes[2]["path"] == "/docs/a.txt" and shapes[2]["created_ad"]
    assert [line[0] for line in _lines(_cli(cli_env, "ls", "-r", "/docs/"))] == [
        "/docs/a.txt",
        "/docs/sub/b.txt",
        "/docs/sub/deep/c.txt",
    ]
    table = _cli({**cli_env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}, "ls", "/docs/")  # a table
    assert table.returncode == 0, table.stderr
    shown = re.sub(r"\x1b\[[0-9;]*m", "", table.stdout)  # NO_COLOR keeps bold
    names = [line.split()[0] for line in shown.splitlines()[1:4]]
    assert names == ["new/", "sub/", "a.txt"]
    assert "/docs/: 2 folder(s), 1 file(s), 100 B" in shown
    assert _lines(_cli(cli_env, "ls", "/empty/")) == []
    _refused(_cli(cli_env, "ls", "/nope/"), 1, "No such folder. [folder_not_found]")

    # Moves: a file into a folder (the name kept), onto a file (--overwrite), a folder.
    moved = _cli(cli_env, "mv", "/docs/a.txt", "/docs/sub/")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == "moved /docs/a.txt -> /docs/sub/a.txt"
    _refused(_cli(cli_env, "mv", "/docs/sub/a.txt", "/docs/sub/b.txt"), 1, "[path_taken]")
    replaced = _cli(cli_env, "mv", "/docs/sub/a.txt", "/docs/sub/b.txt", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    _refused(_cli(cli_env, "mv", "/docs/sub/", "/docs/sub/deep/"), 1, "[invalid_move]")
    _refused(_cli(cli_env, "mv", "/docs/sub", "/archive/"), 2, "/docs/sub is a folder")
    _refused(_cli(cli_env, "mv", "/nope.txt", "/x.txt"), 1, "No such file. [file_not_found]")
    folder = _cli(cli_env, "mv", "/docs/sub/", "/archive/")
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.strip() == "moved /docs/sub/ -> /archive/sub/ (2 file(s))"
    assert [line[0] for line in _lines(_cli(cli_env, "ls", "-r", "/archive/"))] == [
        "/archive/sub/b.txt",
        "/archive/sub/deep/c.txt",
    ]

    # Copies: the same bytes under new paths.
    copied = _cli(cli_env, "cp", "/archive/sub/", "/copy/")
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.strip() == "copied /archive/sub/ -> /copy/sub/ (2 file(s))"
    _refused(_cli(cli_env, "cp", "/archive/sub/b.txt", "/copy/sub/b.txt"), 1, "[path_taken]")
    one = _cli(cli_env, "cp", "/archive/sub/b.txt", "/copy/b2.txt")
    assert one.stdout.strip() == "copied /archive/sub/b.txt -> /copy/b2.txt", one.stderr
    assert _cli(cli_env, "get", "/copy/b2.txt", str(tmp_path / "b2.txt")).returncode == 0
    assert (tmp_path / "b2.txt").read_bytes() == a  # b.txt was overwritten by a.txt's move
    _refused(_cli(cli_env, "cp", "/nope/", "/x/"), 1, "No such folder. [folder_not_found]")

    # Deleting a folder takes -r; a file is deleted as before.
    _refused(_cli(cli_env, "rm", "/copy/"), 2, "/copy/ is a folder: use -r")
    _refused(_cli(cli_env, "rm", "/copy"), 2, "/copy is a folder: use -r")
    assert _lines(_cli(cli_env, "ls", "/copy/"))  # nothing deleted
    assert _cli(cli_env, "rm", "/copy/b2.txt").stdout.strip() == "deleted /copy/b2.txt"
    gone = _cli(cli_env, "rm", "-r", "/copy/", "/archive")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.splitlines() == [
        "deleted /copy/ (2 file(s))",
        "deleted /archive/ (2 file(s))",
    ]
    _refused(_cli(cli_env, "ls", "/copy/"), 1, "[folder_not_found]")
    _refused(_cli(cli_env, "rm", "--recursive", "/copy/"), 1, "[folder_not_found]")
    _refused(_cli(cli_env, "rm", "-r", "/nothing"), 1, "No such file. [file_not_found]")


def test_cli_find(cli_env: dict[str, str], tmp_path: Path) -> None:
    _write(tmp_path / "Report-2026.PDF", 10)
    for target in ("/a/", "/b/deep/", "/c/notes-report.txt"):
        assert _cli(cli_env, "put", str(tmp_path / "Report-2026.PDF"), target).returncode == 0
    found = _lines(_cli(cli_env, "find", "report"))
    assert [line[0] for line in found] == [
        "/a/Report-2026.PDF",
        "/b/deep/Report-2026.PDF",
        "/c/notes-report.txt",
    ]
    below = _cli(cli_env, "find", "REPORT", "--path", "/b", "--json")
    assert [json.loads(line)["path"] for line in below.stdout.splitlines()] == [
        "/b/deep/Report-2026.PDF"
    ]
    assert _lines(_cli(cli_env, "find", "nothing-like-it")) == []
    _refused(_cli(cli_env, "find", " "), 1, "give some text to search for")


def test_cli_cp_past_the_quota_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    token = json.loads((Path(cli_env["FILESTORE_CONFIG_DIR"]) / "config.json").read_text())["token"]
    _write(tmp_path / "big.bin", 40 * MIB)
    with Client(cli_env["FILESTORE_URL"], token) as api:
        api.upload(tmp_path / "big.bin", "/big.bin")
        api.copy("/big.bin", "/copy1.bin")
        api.copy("/big.bin", "/copy2.bin")  # 120 MiB of 128
    _refused(_cli(cli_env, "cp", "/big.bin", "/copy3.bin"), 1, "[quota_exceeded]")
    assert [line[0] for line in _lines(_cli(cli_env, "ls"))] == [
        "/big.bin",
        "/copy1.bin",
        "/copy2.bin",
    ]


def test_client_trash_versions_and_usage(running_service: Service, tmp_path: Path) -> None:
    url = running_service[0]
    with _account(url) as api:
        first = _write(tmp_path / "v1" / "a.txt", 100)
        second = _write(tmp_path / "v2" / "a.txt", 250)
        api.upload(tmp_path / "v1" / "a.txt", "/t/a.txt")
        current = api.upload(tmp_path / "v2" / "a.txt", "/t/a.txt").file  # an overwrite

        current_version, earlier = api.versions("/t/a.txt")
        assert (current_version.id, current_version.current) == (current.id, True)
        assert (earlier.size, earlier.sha256, earlier.current) == (100, _sha(first), False)
        api.download("/t/a.txt", tmp_path / "old.txt", version=earlier.id)
        assert (tmp_path / "old.txt").read_bytes() == first
        api.download("/t/a.txt", tmp_path / "new.txt")
        assert (tmp_path / "new.txt").read_bytes() == second
        assert api.account().usage.versions == 100

        restored_file = api.restore_version(earlier.id)
        assert (restored_file.id, restored_file.size) == (current.id, 100)
        [_, replaced] = api.versions("/t/a.txt")
        assert (replaced.size, replaced.sha256) == (250, _sha(second))
        api.delete_version(replaced.id)
        with pytest.raises(FilestoreError) as no_version:
            api.delete_version(replaced.id)
        assert (no_version.value.status, no_version.value.code) == (404, "version_not_found")

        assert api.delete_folder("/t/") == 1
        [entry] = api.iter_trash()
        assert (entry.path, entry.kind, entry.files, entry.size) == ("/t/", "folder", 1, 100)
        usage = api.account().usage
        assert (usage.files, usage.versions, usage.trash, usage.quota) == (0, 0, 100, QUOTA)
        api.make_folder("/t/")
        with pytest.raises(FilestoreError) as taken:
            api.restore(entry.id)
        assert (taken.value.status, taken.value.code) == (409, "path_taken")
        assert api.restore(entry.id, to="/back/") == Restored("/back/t/", 1)
        assert [f.path for f in api.iter_files()] == ["/back/t/a.txt"]
        with pytest.raises(FilestoreError) as gone:
            api.purge(entry.id)
        assert (gone.value.status, gone.value.code) == (404, "trash_not_found")
        api.delete("/back/t/a.txt")
        assert api.empty_trash() == 1
        assert list(api.iter_trash()) == []
        assert api.account().usage.used == 0


def test_cli_trash_ls_restore_rm_empty(cli_env: dict[str, str], tmp_path: Path) -> None:
    tree = tmp_path / "docs"
    _write(tree / "a.txt", 100)
    _write(tree / "sub" / "b.txt", 200)
    _write(tmp_path / "c.txt", 30)
    assert _cli(cli_env, "put", "-r", str(tree), "/docs/").returncode == 0
    assert _cli(cli_env, "put", str(tmp_path / "c.txt"), "/c.txt").returncode == 0
    assert _cli(cli_env, "rm", "/c.txt").returncode == 0
    assert _cli(cli_env, "rm", "-r", "/docs/").returncode == 0

    # Piped: whole fields, tab-separated, newest first; --json: the API's shapes.
    entries = _lines(_cli(cli_env, "trash", "ls"))
    assert [line[1:5] for line in entries] == [
        ["/docs/", "folder", "2", "300"],
        ["/c.txt", "file", "1", "30"],
    ]
    folder_id, file_id = entries[0][0], entries[1][0]
    shapes = [
        json.loads(line) for line in _cli(cli_env, "trash", "ls", "--json").stdout.splitlines()
    ]
    assert set(shapes[0]) == {"id", "path", "kind", "files", "size", "deleted_at", "purge_at"}
    assert shapes[0]["purge_at"] > shapes[0]["deleted_at"]
    table = _cli(
        {**cli_env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": "80"}, "trash", "ls"
    )
    shown = re.sub(r"\x1b\[[0-9;]*m", "", table.stdout)
    assert folder_id in shown and file_id in shown  # whole, even on a narrow terminal
    assert "/docs/" in shown and "/c.txt" in shown
    assert "2 entries (3 file(s)), 330 B" in shown

    restored = _cli(cli_env, "trash", "restore", file_id)
    assert restored.stdout.strip() == "restored /c.txt", restored.stderr
    assert _cli(cli_env, "mkdir", "/docs/").returncode == 0  # the folder's path is taken now
    _refused(
        _cli(cli_env, "trash", "restore", folder_id),
        1,
        "'/docs/' exists; folders are not merged. [path_taken] (pass --to PATH",
    )
    _refused(_cli(cli_env, "trash", "restore", folder_id, "--to", "/c.txt"), 1, "choose another")
    elsewhere = _cli(cli_env, "trash", "restore", folder_id, "--to", "/back/")
    assert elsewhere.stdout.strip() == "restored /back/docs/ (2 file(s))", elsewhere.stderr
    assert [line[0] for line in _lines(_cli(cli_env, "ls", "-r", "/back/"))] == [
        "/back/docs/a.txt",
        "/back/docs/sub/b.txt",
    ]
    _refused(_cli(cli_env, "trash", "restore", folder_id), 1, "[trash_not_found]")
    assert _lines(_cli(cli_env, "trash", "ls")) == []

    # For good: one entry by id, then everything (only with --yes).
    assert _cli(cli_env, "rm", "/c.txt", "/back/docs/a.txt", "/back/docs/sub/b.txt").returncode == 0
    first, *rest = [line[0] for line in _lines(_cli(cli_env, "trash", "ls"))]
    purged = _cli(cli_env, "trash", "rm", first)
    assert purged.stdout.strip() == f"deleted for good {first}", purged.stderr
    _refused(_cli(cli_env, "trash", "rm", first), 1, "No such trash entry")
    assert _cli(cli_env, "trash", "rm", "not-an-id").returncode == 2
    _refused(_cli(cli_env, "trash", "empty"), 2, "pass --yes")
    assert [line[0] for line in _lines(_cli(cli_env, "trash", "ls"))] == rest  # nothing went
    emptied = _cli(cli_env, "trash", "empty", "--yes")
    assert emptied.stdout.strip() == "emptied the trash: 2 entries deleted for good"
    assert _lines(_cli(cli_env, "trash", "ls")) == []


def test_cli_versions_get_version_and_whoami(cli_env: dict[str, str], tmp_path: Path) -> None:
    contents = [
        _write(tmp_path / f"v{n}" / "notes.txt", size) for n, size in enumerate((10, 20, 30))
    ]
    for n in range(3):
        assert (
            _cli(cli_env, "put", str(tmp_path / f"v{n}" / "notes.txt"), "/notes.txt").returncode
            == 0
        )

    listed = _lines(_cli(cli_env, "versions", "/notes.txt"))  # the current content first
    assert [(line[1], line[3], line[4]) for line in listed] == [
        ("30", _sha(contents[2]), "current"),
        ("20", _sha(contents[1]), "-"),
        ("10", _sha(contents[0]), "-"),
    ]
    explicit = _cli(cli_env, "versions", "ls", "--json", "/notes.txt")
    shapes = [json.loads(line) for line in explicit.stdout.splitlines()]
    assert [v["id"] for v in shapes] == [line[0] for line in listed]
    assert set(shapes[0]) == {"id", "size", "etag", "sha256", "modified_at", "current"}
    table = _cli({**cli_env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}, "versions", "/notes.txt")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", table.stdout)
    assert _sha(contents[1])[:12] in shown and _sha(contents[1]) not in shown  # shortened
    assert "/notes.txt: 3 version(s)" in shown

    oldest = listed[2][0]
    got = _cli(cli_env, "get", "/notes.txt", str(tmp_path / "old.txt"), "--version", oldest)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "old.txt").read_bytes() == contents[0]
    assert _cli(cli_env, "get", "/notes.txt", str(tmp_path / "now.txt")).returncode == 0
    assert (tmp_path / "now.txt").read_bytes() == contents[2]
    unknown = "00000000-0000-0000-0000-000000000000"
    _refused(_cli(cli_env, "get", "/notes.txt", "--version", unknown), 1, "[version_not_found]")
    assert _cli(cli_env, "get", "/notes.txt", "--version", "v1").returncode == 2

    restored = _cli(cli_env, "versions", "restore", oldest)
    assert restored.stdout.strip() == f"restored /notes.txt to {oldest} (10 B)", restored.stderr
    assert _cli(cli_env, "get", "/notes.txt", str(tmp_path / "back.txt")).returncode == 0
    assert (tmp_path / "back.txt").read_bytes() == contents[0]
    after = _lines(_cli(cli_env, "versions", "/notes.txt"))
    assert [line[1] for line in after] == ["10", "30", "20"]  # the replaced one is a version
    removed = _cli(cli_env, "versions", "rm", after[2][0])
    assert removed.stdout.strip() == f"deleted version {after[2][0]}", removed.stderr
    _refused(_cli(cli_env, "versions", "rm", after[2][0]), 1, "No such version of this file.")
    _refused(_cli(cli_env, "versions", "/nope.txt"), 1, "No such file. [file_not_found]")

    account = json.loads(_cli(cli_env, "whoami", "--json").stdout)
    assert account["usage"] == {"files": 10, "versions": 30, "trash": 0, "quota": QUOTA}
    assert _cli(cli_env, "rm", "/notes.txt").returncode == 0
    shown = _cli(cli_env, "whoami").stdout
    assert shown.startswith(f"{account['login']} on {cli_env['FILESTORE_URL']}\n")
    assert "used 40 B of 128.0 MiB (0.0%)" in shown
    assert re.search(r"trash +10 B", shown) and re.search(r"versions +30 B", shown)


def test_client_share_sends_upload_only_when_asked() -> None:
    """The body of POST /shares: ``upload`` goes only with ``upload=True`` (an API without
    upload links refuses the field), and an answer's ``upload`` is read when the API has it."""
    sent: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(
            201,
            json={
                "id": "6f1c1a8e-3b7b-4d0e-9b1e-2f8f3c1d2e4a",
                "url": "http://files.example/s/" + "t" * 43,
                "path": body["path"],
                "kind": "folder",
                "expires_at": "2030-01-01T00:00:00Z",
                "has_password": False,
                "max_downloads": None,
                "downloads": 0,
                "created_at": "2029-12-25T00:00:00Z",
                **({"upload": True} if body.get("upload") else {}),
            },
        )

    with Client("http://files.example", "token", transport=httpx.MockTransport(answer)) as api:
        plain = api.create_share("/in/", expires_in=3600, max_downloads=2)
        dropbox = api.create_share("/in/", upload=True, password="pw")
    assert sent == [
        {"path": "/in/", "expires_in": 3600, "max_downloads": 2},
        {"path": "/in/", "password": "pw", "upload": True},
    ]
    assert (plain.upload, dropbox.upload) == (False, True)
    assert share_token(plain.url or "") == "t" * 43
    assert share_token("t" * 43 + "/download") is None
    assert share_token(f"http://h:1/s/{'t' * 43}/download?path=a.txt") == "t" * 43


def _public(url: str, route: str = "", **params: str) -> httpx.Response:
    """A share link's route as anyone would call it: no account, JSON, no redirect followed."""
    return httpx.get(url + route, params=params, headers={"Accept": "application/json"})


def test_client_shares_a_file_and_a_folder_and_revokes_them(
    running_service: Service, tmp_path: Path
) -> None:
    url = running_service[0]
    _write(tmp_path / "a.txt", 10)
    state = StateFile(tmp_path / "state.json")
    with _account(url, state) as api:
        api.upload(tmp_path / "a.txt", "/s/a.txt")
        api.upload(tmp_path / "a.txt", "/s/sub/b.txt")
        file_share = api.create_share("/s/a.txt", expires_in=600, max_downloads=1)
        folder_share = api.create_share("/s/", password="open sesame")
        assert (file_share.kind, file_share.path, file_share.max_downloads) == (
            "file",
            "/s/a.txt",
            1,
        )
        assert (folder_share.kind, folder_share.has_password) == ("folder", True)
        assert file_share.url is not None and file_share.url.startswith(f"{url}/s/")

        assert _public(file_share.url).json()["name"] == "a.txt"
        assert _public(file_share.url, "/download").status_code == 307
        assert _public(file_share.url, "/download").json()["error"] == "share_not_found"  # used up
        assert folder_share.url is not None
        assert _public(folder_share.url).json()["error"] == "share_locked"

        listed = api.list_shares()
        assert [s.id for s in listed] == [folder_share.id, file_share.id]  # newest first
        assert all(s.url is None for s in listed)  # a link is shown once
        assert listed[1].downloads == 1
        found = api.find_share(folder_share.url + "/zip")
        assert found is not None and found.id == folder_share.id
        assert api.find_share("http://elsewhere/s/" + "x" * 43) is None

        api.delete_share(folder_share.id)
        assert _public(folder_share.url).json()["error"] == "share_not_found"
        with pytest.raises(FilestoreError) as gone:
            api.delete_share(folder_share.id)
        assert (gone.value.status, gone.value.code) == (404, "share_not_found")
        with pytest.raises(FilestoreError) as missing:
            api.create_share("/nope.txt")
        assert (missing.value.status, missing.value.code) == (404, "file_not_found")
        assert [s.id for s in api.list_shares()] == [file_share.id]


def test_cli_share_shares_unshare(cli_env: dict[str, str], tmp_path: Path) -> None:
    tree = tmp_path / "docs"
    _write(tree / "a.txt", 100)
    _write(tree / "sub" / "b.txt", 200)
    assert _cli(cli_env, "put", "-r", str(tree), "/docs/").returncode == 0

    # A file: the link on the first line, then what it opens and until when.
    made = _cli(cli_env, "share", "/docs/a.txt", "--expires", "90m", "--max-downloads", "2")
    assert made.returncode == 0, made.stderr
    file_url, details = made.stdout.splitlines()
    assert file_url.startswith(cli_env["FILESTORE_URL"] + "/s/")
    assert details.startswith("file /docs/a.txt, expires ")
    assert details.endswith(", at most 2 download(s)")
    assert _public(file_url).json() == {
        "kind": "file",
        "name": "a.txt",
        "size": 100,
        "has_password": False,
    }
    assert _public(file_url, "/download").status_code == 307

    # A folder, as JSON: the API's share, seconds from the DURATION.
    folder = _cli(cli_env, "share", "/docs/", "--expires", "7d", "--json")
    assert folder.returncode == 0, folder.stderr
    shown = json.loads(folder.stdout)
    assert (shown["kind"], shown["path"], shown["upload"]) == ("folder", "/docs/", False)
    lifetime = datetime.fromisoformat(shown["expires_at"]) - datetime.fromisoformat(
        shown["created_at"]
    )
    assert abs(lifetime.total_seconds() - 7 * 86400) < 60
    folder_url = shown["url"]
    listing = _public(folder_url).json()
    assert [f["path"] for f in listing["files"]] == ["a.txt", "sub/b.txt"]
    assert _public(folder_url, "/download", path="sub/b.txt").status_code == 307

    # A password from the environment, for scripts; the link is locked until unlocked.
    locked = _cli(
        {**cli_env, "FILESTORE_SHARE_PASSWORD": "open sesame"},
        "share",
        "/docs/sub/b.txt",
        "--password",
        "--json",
    )
    assert locked.returncode == 0, locked.stderr
    locked_share = json.loads(locked.stdout)
    assert locked_share["has_password"] is True
    assert _public(locked_share["url"]).json()["error"] == "share_locked"
    with httpx.Client() as anyone:
        wrong = anyone.post(locked_share["url"] + "/unlock", json={"password": "not it"})
        assert wrong.status_code == 401
        opened = anyone.post(locked_share["url"] + "/unlock", json={"password": "open sesame"})
        assert opened.status_code == 204
        assert (
            anyone.get(locked_share["url"], headers={"Accept": "application/json"}).json()["name"]
            == "b.txt"
        )

    # shares: JSON lines on a pipe (and with --json), a table on a terminal.
    listed = [json.loads(line) for line in _cli(cli_env, "shares").stdout.splitlines()]
    assert [(s["path"], s["has_password"], s["max_downloads"]) for s in listed] == [
        ("/docs/sub/b.txt", True, None),
        ("/docs/", False, None),
        ("/docs/a.txt", False, 2),
    ]
    assert listed[2]["downloads"] == 1 and all(s["url"] is None for s in listed)
    assert [json.loads(line) for line in _cli(cli_env, "shares", "--json").stdout.splitlines()] == (
        listed
    )
    table = _cli({**cli_env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}, "shares")
    assert table.returncode == 0, table.stderr
    rows = re.sub(r"\x1b\[[0-9;]*m", "", table.stdout).splitlines()
    assert rows[0].split() == ["id", "path", "expires", "password", "downloads", "upload"]
    assert rows[3].split()[:2] == [listed[2]["id"], "/docs/a.txt"]
    assert rows[3].split()[-3:] == ["-", "1/2", "-"]
    assert rows[1].split()[-3:] == ["yes", "0/-", "-"]
    assert "3 share(s)" in rows[-1]

    # unshare: by id, and by the link itself (this machine made it); both links are dead then.
    by_id = _cli(cli_env, "unshare", listed[2]["id"])
    assert by_id.stdout.strip() == f"revoked {listed[2]['id']}", by_id.stderr
    by_url = _cli(cli_env, "unshare", folder_url)
    assert by_url.stdout.strip() == f"revoked {listed[1]['id']} (/docs/)", by_url.stderr
    for dead in (file_url, folder_url):
        answer = _public(dead)
        assert (answer.status_code, answer.json()["error"]) == (404, "share_not_found")
    _refused(_cli(cli_env, "unshare", listed[2]["id"]), 1, "[share_not_found]")
    _refused(_cli(cli_env, "unshare", folder_url), 1, "unknown link")
    _refused(_cli(cli_env, "unshare", "not-a-link"), 2, "neither a share's id nor a share link")
    assert [json.loads(line)["id"] for line in _cli(cli_env, "shares").stdout.splitlines()] == [
        listed[0]["id"]
    ]

    # Refusals: a bad DURATION or password is a usage error, the API's refusals exit 1.
    for duration in ("3x", "0", "12 hours", "-5m"):
        bad = _cli(cli_env, "share", "/docs/a.txt", "--expires", duration)
        assert bad.returncode == 2, (duration, bad.stderr)
        assert "Traceback" not in bad.stderr
    _refused(_cli(cli_env, "share", "/nope.txt"), 1, "No such file. [file_not_found]")
    _refused(_cli(cli_env, "share", "/nope/"), 1, "[folder_not_found]")
    _refused(_cli(cli_env, "share", "/docs/a.txt", "--expires", "400d"), 1, "[validation_error]")
    _refused(_cli(cli_env, "share", "/docs/a.txt", "--password"), 2, "--password: none given")
    assert _cli(cli_env, "share", "/docs/a.txt", "--max-downloads", "0").returncode == 2
    # An upload link of a file is refused by any API (without upload links: the field; with
    # them: a file is no folder), as one line with the API's code.
    _refused(_cli(cli_env, "share", "/docs/a.txt", "--upload"), 1, "[")
