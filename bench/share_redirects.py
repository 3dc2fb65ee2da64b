"""A share link's download redirect (issue 21) against the owner's own download redirect of the
same file, side by side in one run at each concurrency: requests a second, p50 and p99.

    python -m bench.share_redirects [--seconds 10] [--levels 1,16,64]

Uses the running `make run` stack, or starts one. Both answer 307 to a presigned GET; the share's
path has no account, looks the link up by its token's hash and counts the download (one UPDATE)
on every click, where the owner's is a signed-in lookup. Each level runs owner, share, owner,
share, and reports each side's better run, so a burst of load elsewhere hits both alike."""

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.run import _account, _ratio
from bench.stack import ensure_wrk, running_stack
from bench.wrk import Load, run_wrk

BASE_URL = "http://127.0.0.1:8080"
FILE = "/bench/shared.bin"


def _setup(api: str) -> tuple[str, str]:
    """A user with one small file and a share of it: the user's token and the share's path."""
    _, token = _account(api)
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(
        f"{api}/files/upload",
        headers=headers,
        data={"path": FILE},
        files={"file": ("shared.bin", b"x" * 4096)},
    ).raise_for_status()
    share = httpx.post(f"{api}/shares", headers=headers, json={"path": FILE})
    share.raise_for_status()
    return token, urlsplit(share.json()["url"]).path


def _best(first: Load, second: Load) -> Load:
    return first if first.rps >= second.rps else second


def measure(base_url: str, levels: list[int], seconds: int) -> dict[str, Any]:
    wrk = ensure_wrk()
    api = f"{base_url}/api/v1"
    token, share_path = _setup(api)
    owner_args = [token, f"/api/v1/files/download?path={FILE}"]
    share_args = [f"{share_path}/download"]
    rows = []
    for concurrency in levels:
        runs: dict[str, list[Load]] = {"owner": [], "share": []}
        for _ in range(2):
            runs["owner"].append(run_wrk(wrk, base_url, "get", owner_args, concurrency, seconds))
            runs["share"].append(
                run_wrk(wrk, base_url, "anonymous", share_args, concurrency, seconds)
            )
        owner, share = _best(*runs["owner"]), _best(*runs["share"])
        rows.append(
            {
                "concurrency": concurrency,
                "owner": owner.as_dict(),
                "share": share.as_dict(),
                "rps_ratio": _ratio(share.rps, owner.rps),
                "p50_ratio": _ratio(share.p50_ms, owner.p50_ms),
            }
        )
    downloads = httpx.get(f"{api}/shares", headers={"Authorization": f"Bearer {token}"})
    counted = downloads.json()["shares"][0]["downloads"]
    return {"seconds_per_run": seconds, "levels": rows, "share_downloads_counted": counted}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| c | owner 307: req/s, p50, p99 | share 307: req/s, p50, p99 | share / owner req/s |",
        "|---|---|---|---|",
    ]
    for row in result["levels"]:
        owner, share = row["owner"], row["share"]
        lines.append(
            f"| {row['concurrency']} | {owner['rps']}, {owner['p50_ms']} ms, {owner['p99_ms']} ms "
            f"| {share['rps']}, {share['p50_ms']} ms, {share['p99_ms']} ms "
            f"| {row['rps_ratio']}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels, comma-separated")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    with running_stack(BASE_URL):
        result = measure(BASE_URL, levels, args.seconds)
    json.dump(result, sys.stdout, indent=2)
    print()
    print(table(result))


if __name__ == "__main__":
    main()
