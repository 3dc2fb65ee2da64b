"""A folder zip (issue 21) against proxied downloads of the same bytes, side by side in one run:
MB/s of each, and the peak RSS of the API's processes (summed) during each, over their idle RSS.

    python -m bench.folder_zip [--files 5] [--mib 1024]

Uses the running `make run` stack, or starts one. The files go up as presigned PUTs of one
temporary file (each its own object); the zip is read by curl to /dev/null and checked only by
its length (the tests check its content)."""

import argparse
import json
import subprocess
import sys
import tempfile
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import processes
from bench.run import _account
from bench.stack import running_stack
from bench.transfer import MIB, _curl

BASE_URL = "http://127.0.0.1:8080"


def _upload(api: str, headers: dict[str, str], path: str, blob: str, size: int) -> None:
    ticket = httpx.post(
        f"{api}/files/upload",
        json={"path": path, "size": size, "multipart": False},
        headers=headers,
    ).json()["upload"]
    subprocess.run(
        [
            "curl", "-sS", "--fail", "-o", "/dev/null", "-X", "PUT",
            "-H", f"Content-Type: {ticket['headers']['Content-Type']}",
            "-T", blob, ticket["url"],
        ],
        check=True,
    )  # fmt: skip
    complete = httpx.post(f"{api}/files/uploads/{ticket['id']}/complete", headers=headers)
    complete.raise_for_status()


def measure(api: str, files: int, size: int) -> dict[str, Any]:
    _, token = _account(api)
    headers = {"Authorization": f"Bearer {token}"}
    auth = ["-H", f"Authorization: Bearer {token}"]
    with tempfile.NamedTemporaryFile() as blob:
        chunk = bytes(range(256)) * 4096
        for index in range(size // MIB):
            blob.write(chunk[: MIB - 8] + index.to_bytes(8, "big"))
        blob.flush()
        for index in range(files):
            _upload(api, headers, f"/zip/f{index}.bin", blob.name, size)
    server = processes.api(urlsplit(api).port or 80)
    storage = processes.storage()
    idle = server.rss_bytes()
    total = files * size
    zipped = _curl([*auth, f"{api}/files/download?path=/zip/&format=zip"], server, storage, total)
    downloads = [f"{api}/files/download?path=/zip/f{i}.bin&proxy=true" for i in range(files)]
    proxied = _curl(
        [arg for url in downloads for arg in (*auth, "-o", "/dev/null", url)],
        server,
        storage,
        total,
    )
    httpx.delete(f"{api}/files", params={"path": "/zip/"}, headers=headers)
    return {
        "files": files,
        "total_mib": total // MIB,
        "api_idle_rss_mib": round(idle / MIB, 1),
        "zip": zipped,
        "proxied": proxied,
        "ratio": round(zipped["mb_s"] / proxied["mb_s"], 2),
        "zip_rss_over_idle_mib": round(zipped["api_peak_rss_mib"] - idle / MIB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024, help="size of each file")
    args = parser.parse_args()
    with running_stack(BASE_URL):
        result = measure(f"{BASE_URL}/api/v1", args.files, args.mib * MIB)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
