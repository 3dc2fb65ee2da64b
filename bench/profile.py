"""Where an upload intent's time goes: py-spy samples the API while wrk drives intents at c=16.

    python -m bench.profile [--seconds 8]     # against the running `make run` stack

Prints the share of the API's main-thread samples per category (raw stacks are kept in
a temporary folder, or with ``--update`` in bench/results/profile-intents.raw, for a closer look).
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

from bench.run import RESULTS
from bench.stack import ensure_wrk
from bench.transfer import api_pid
from bench.wrk import LUA

CATEGORIES = (
    ("issue_upload", "presign", "signing (api/signer.py)"),
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


def summarise(raw: str) -> list[tuple[float, str]]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [frame.split(" (")[0] for frame in stack.split(";")]
        if frames[0] != "_run_module_as_main":  # the event loop's thread only
            continue
        counts[categorise(frames)] += int(count)
    total = sum(counts.values()) or 1
    return [(round(100 * count / total, 1), name) for name, count in counts.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--update", action="store_true", help="keep the raw stacks in bench/results/ (committed)"
    )
    args = parser.parse_args()
    api = f"{args.base_url}/api/v1"
    credentials = {"login": f"prof_{secrets.token_hex(4)}", "password": secrets.token_urlsafe(12)}
    httpx.post(f"{api}/user/register", json=credentials).raise_for_status()
    token = httpx.post(f"{api}/user/auth", json=credentials).json()["access_token"]
    pid = api_pid(urlsplit(args.base_url).port or 80)
    raw_path = (RESULTS if args.update else Path(tempfile.mkdtemp(prefix="bench-profile-"))) / (
        "profile-intents.raw"
    )
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "-p",
            str(pid),
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
    script.write_text((LUA / "intents.lua").read_text())
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
                token,
                f"profile-{secrets.token_hex(3)}",
            ],
            check=True,
            capture_output=True,
        )
    finally:
        script.unlink(missing_ok=True)
    spy.wait(args.seconds + 30)
    for share, name in summarise(raw_path.read_text()):
        print(f"{share:5.1f}%  {name}")


if __name__ == "__main__":
    main()
