"""Bytes: proxied upload/download through the API against a direct presigned PUT/GET of the same
file to the same S3 server, with the peak RSS of the API's processes (summed) during each, sampled
from /proc, and the CPU seconds the API and the S3 server spent on each (with how many of the
machine's cores were busy meanwhile): what bounds a ratio on a small machine."""

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Group, machine_busy_seconds

SAMPLE_SECONDS = 0.02
MIB = 1024 * 1024


class PeakSampler:
    def __init__(self, api: Group) -> None:
        self.api, self.peak, self._stop = api, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.api.rss_bytes())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _curl(args: list[str], api: Group, storage: Group, size: int) -> dict[str, float]:
    cpu_before = api.cpu_seconds(), storage.cpu_seconds(), machine_busy_seconds()
    with PeakSampler(api) as sampler:
        started = time.perf_counter()
        subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", *args], check=True)
        elapsed = time.perf_counter() - started
    api_cpu, storage_cpu, busy = (
        after - before
        for after, before in zip(
            (api.cpu_seconds(), storage.cpu_seconds(), machine_busy_seconds()),
            cpu_before,
            strict=True,
        )
    )
    return {
        "mb_s": round(size / MIB / elapsed, 1),
        "api_peak_rss_mib": round(sampler.peak / MIB, 1),
        "api_cpu_s": round(api_cpu, 2),
        "storage_cpu_s": round(storage_cpu, 2),
        "cores_busy": round(busy / elapsed, 2),
    }


def measure(
    api: str, token: str, server: Group, storage: Group, size: int, workdir: Path
) -> dict[str, Any]:
    auth = ["-H", f"Authorization: Bearer {token}"]
    headers = {"Authorization": f"Bearer {token}"}
    with tempfile.NamedTemporaryFile(dir=workdir) as blob:
        chunk = bytes(range(256)) * 4096
        for index in range(size // MIB):
            blob.write(chunk[: MIB - 8] + index.to_bytes(8, "big"))
        blob.flush()
        idle = server.rss_bytes()
        proxied_up = _curl(
            [
                *auth,
                "-F",
                "path=/bench/bytes/",
                "-F",
                f"file=@{blob.name};filename=proxied.bin",
                f"{api}/files/upload",
            ],
            server,
            storage,
            size,
        )
        ticket = httpx.post(
            f"{api}/files/upload",
            # One presigned PUT, as compared (above the threshold the API would sign multipart).
            json={"path": "/bench/bytes/direct.bin", "size": size, "multipart": False},
            headers=headers,
        ).json()["upload"]
        direct_up = _curl(
            [
                "-X",
                "PUT",
                "-H",
                f"Content-Type: {ticket['headers']['Content-Type']}",
                "-T",
                blob.name,
                ticket["url"],
            ],
            server,
            storage,
            size,
        )
    httpx.post(f"{api}/files/uploads/{ticket['id']}/complete", headers=headers).raise_for_status()
    proxied_down = _curl(
        [*auth, f"{api}/files/download?path=/bench/bytes/proxied.bin&proxy=true"],
        server,
        storage,
        size,
    )
    location = httpx.get(
        f"{api}/files/download", params={"path": "/bench/bytes/proxied.bin"}, headers=headers
    ).headers["location"]
    direct_down = _curl([location], server, storage, size)
    for path in ("/bench/bytes/proxied.bin", "/bench/bytes/direct.bin"):
        httpx.delete(f"{api}/files", params={"path": path}, headers=headers)
    return {
        "size_mib": size // MIB,
        "api_idle_rss_mib": round(idle / MIB, 1),
        "upload": {
            "proxied": proxied_up,
            "direct": direct_up,
            "ratio": round(proxied_up["mb_s"] / direct_up["mb_s"], 2),
        },
        "download": {
            "proxied": proxied_down,
            "direct": direct_down,
            "ratio": round(proxied_down["mb_s"] / direct_down["mb_s"], 2),
        },
    }
