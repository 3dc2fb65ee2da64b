"""Where a request's time goes: py-spy samples every API process while wrk drives one load at
c=16: upload intents, download redirects or 64 KiB proxied uploads.

    python -m bench.profile [--load intents|redirects|proxied] [--seconds 8]

Against the running `make run` stack. Prints the share of the API's event-loop samples per
category (for intents), then the functions of our own code and the leaf functions that hold the
most samples. Raw stacks are kept in a temporary folder, or with ``--update`` in
bench/results/profile-<load>.raw, for a closer look.
"""

import argparse
import collections
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.processes import api as api_processes
from bench.run import RESULTS
from bench.stack import ensure_wrk
from bench.wrk import LUA

CATEGORIES = (
    ("issue_upload", "presign", "signing (infra/storage/signer.py)"),
    ("issue_upload", "Logger", "the 'upload issued' log line"),
    ("issue_upload", "get_or_create", "upsert + lock of the file row"),
    ("issue_upload", "used_bytes", "SELECT used_bytes"),
    ("issue_upload", "add_upload", "INSERT of the upload row (flush)"),
    ("issue_upload", "", "the rest of issue_upload (models, ids)"),
    ("current_user", "", "auth: token check + user load"),
    ("request_session", "", "request session: commit and close"),
    ("read_json", "", "JSON body parse and validation"),
    ("serialize_response", "", "response serialisation"),
    ("Logger", "", "the request log line"),
)


def categorise(frames: list[str]) -> str:
    if frames[-1] == "Runner.run":
        return "event loop idle (waiting on I/O)"
    stack = ";".join(frames)
    for outer, inner, name in CATEGORIES:
        if outer in stack and inner in stack:
            return name
    return "framework: uvicorn, Starlette/FastAPI routing, middleware, dependency solving"


def event_loop_frames(stack: str) -> list[str]:
    """The frames of a sample of an event loop's thread (uvicorn's process or one of its
    workers), without py-spy's process line; empty for any other thread."""
    frames = [
        frame.split(" (")[0] for frame in stack.split(";") if not frame.startswith("process ")
    ]
    if "Server.serve" not in frames and "Runner.run" not in frames:
        return []
    return frames


def hottest(raw: str, top: int) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """The functions of our code (api/, worker/) by inclusive share, and leaf functions by share."""
    ours: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not event_loop_frames(stack):
            continue
        samples = int(count)
        total += samples
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        names = {
            frame.rsplit(":", 1)[0] for frame in frames if "(api/" in frame or "(worker/" in frame
        }
        for name in names:
            ours[name] += samples
        leaves[frames[-1].rsplit(":", 1)[0]] += samples
    total = total or 1

    def shares(counter: collections.Counter[str]) -> list[tuple[float, str]]:
        return [(round(100 * n / total, 1), name) for name, n in counter.most_common(top)]

    return shares(ours), shares(leaves)


def summarise(raw: str) -> list[tuple[float, str]]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = event_loop_frames(stack)
        if frames:
            counts[categorise(frames)] += int(count)
    total = sum(counts.values()) or 1
    return [(round(100 * count / total, 1), name) for name, count in counts.most_common()]


LOADS = ("intents", "redirects", "proxied")


def _wrk_args(load: str, api: str, token: str, run_id: str) -> tuple[str, list[str]]:
    if load == "intents":
        return "intents", [token, run_id]
    if load == "proxied":
        return "proxied", [token, run_id, str(64 * 1024)]
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(
        f"{api}/files/upload",
        headers=headers,
        data={"path": "/profile/download.bin"},
        files={"file": ("download.bin", b"x" * 4096)},
    ).raise_for_status()
    return "get", [token, "/api/v1/files/download?path=/profile/download.bin"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--load", choices=LOADS, default="intents")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--update", action="store_true", help="keep the raw stacks in bench/results/ (committed)"
    )
    args = parser.parse_args()
    api = f"{args.base_url}/api/v1"
    credentials = {"login": f"prof_{secrets.token_hex(4)}", "password": secrets.token_urlsafe(12)}
    httpx.post(f"{api}/user/register", json=credentials).raise_for_status()
    token = httpx.post(f"{api}/user/auth", json=credentials).json()["access_token"]
    script_name, wrk_args = _wrk_args(args.load, api, token, f"profile-{secrets.token_hex(3)}")
    server = api_processes(urlsplit(args.base_url).port or 80)
    raw_path = (RESULTS if args.update else Path(tempfile.mkdtemp(prefix="bench-profile-"))) / (
        f"profile-{args.load}.raw"
    )
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--subprocesses",
            "-p",
            str(server.roots[0]),
            "-d",
            str(args.seconds + 1),
            "-r",
            "250",
            "--format",
            "raw",
            "-o",
            str(raw_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    script = raw_path.parent / "profile.lua"
    script.write_text((LUA / f"{script_name}.lua").read_text())
    try:
        subprocess.run(
            [
                ensure_wrk(),
                "-t2",
                "-c16",
                f"-d{args.seconds}s",
                "-s",
                str(script),
                args.base_url,
                "--",
                *wrk_args,
            ],
            check=True,
            capture_output=True,
        )
    finally:
        script.unlink(missing_ok=True)
    spy.wait(args.seconds + 30)
    raw = raw_path.read_text()
    if args.load == "intents":
        for share, name in summarise(raw):
            print(f"{share:5.1f}%  {name}")
    ours, leaves = hottest(raw, args.top)
    print("\nour functions, inclusive share of the event loops' samples:")
    for share, name in ours:
        print(f"{share:5.1f}%  {name}")
    print("\nleaf functions (where the samples were taken):")
    for share, name in leaves:
        print(f"{share:5.1f}%  {name}")
    print(f"\nraw stacks: {raw_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
