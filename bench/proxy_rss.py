"""Peak RSS of the API process while it proxies a large upload and download (curl does the I/O).

Finds the uvicorn process serving --port, samples its VmRSS every 20 ms from /proc during each
transfer, and reports the peak above the idle baseline together with the throughput.
"""

import argparse
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

SAMPLE_SECONDS = 0.02
MIB = 1024 * 1024


def api_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"api.main:app" in argv and str(port).encode() in argv:
            return int(entry.name)
    raise SystemExit(f"no uvicorn api.main:app process on port {port}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_curl(args: list[str], pid: int) -> tuple[float, int]:
    with PeakSampler(pid) as sampler:
        started = time.perf_counter()
        subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", *args], check=True)
        elapsed = time.perf_counter() - started
    return elapsed, sampler.peak


def measure(base_url: str, port: int, size: int) -> dict[str, Any]:
    pid = api_pid(port)
    login, password = f"rss_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    api = f"{base_url}/api/v1"
    httpx.post(
        f"{api}/user/register", json={"login": login, "password": password}
    ).raise_for_status()
    token = httpx.post(f"{api}/user/auth", json={"login": login, "password": password}).json()
    auth = f"Authorization: Bearer {token['access_token']}"
    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as blob:
        chunk = os.urandom(MIB)
        for _ in range(size // MIB):
            blob.write(chunk)
        blob.flush()
        baseline = rss_bytes(pid)
        up_seconds, up_peak = timed_curl(
            [
                "-H",
                auth,
                "-F",
                "path=/rss/",
                "-F",
                f"file=@{blob.name};filename=big.bin",
                f"{api}/files/upload",
            ],
            pid,
        )
    down_seconds, down_peak = timed_curl(
        ["-H", auth, f"{api}/files/download?path=/rss/big.bin&proxy=true"], pid
    )
    return {
        "size_mib": size // MIB,
        "idle_rss_mib": round(baseline / MIB, 1),
        "upload_peak_rss_mib": round(up_peak / MIB, 1),
        "upload_mb_s": round(size / MIB / up_seconds, 1),
        "download_peak_rss_mib": round(down_peak / MIB, 1),
        "download_mb_s": round(size / MIB / down_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    print(json.dumps(measure(args.base_url, args.port, args.size_mib * MIB)))


if __name__ == "__main__":
    main()
