"""The stack under test: the one `make run` starts (started here if it is not running), and wrk."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 90.0


def ensure_wrk() -> str:
    """wrk from Debian's packages; installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("installing wrk (apt-get) ...", file=sys.stderr)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def is_up(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def bench_env() -> dict[str, str]:
    """The environment of a stack the bench starts: wrk opens tens of thousands of intents
    nobody finishes, far past a user's cap on open uploads (FILESTORE_MAX_OPEN_UPLOADS_PER_USER),
    and streams 16 proxied uploads of one user at once, past the 4 a user may stream
    (FILESTORE_PROXIED_UPLOADS_PER_USER); either would make the rest a measure of 429s. A
    running stack is used as it is."""
    return {
        **os.environ,
        "FILESTORE_MAX_OPEN_UPLOADS_PER_USER": "1000000000",
        "FILESTORE_PROXIED_UPLOADS_PER_USER": "1000",
    }


@contextlib.contextmanager
def running_stack(base_url: str) -> Iterator[None]:
    """Use the running `make run` stack, or start one for the duration of the bench."""
    if is_up(base_url):
        yield
        return
    print("starting the stack (python -m scripts.run) ...", file=sys.stderr)
    log = (ROOT / "var" / "bench-run.log").open("ab") if (ROOT / "var").exists() else None
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.run"],
        cwd=ROOT,
        env=bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_up(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the stack did not start; see var/bench-run.log")
            time.sleep(0.3)
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if log:
            log.close()
