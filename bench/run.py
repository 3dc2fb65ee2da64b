"""The benchmark: every figure next to its baseline, measured side by side in one run.

    python -m bench.run            # full run, a few minutes
    python -m bench.run --quick    # smoke run, under two minutes

Runs against the stack of `make run` (started here if not running) with wrk for HTTP load.
"""

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import confirm_latency, listing, processes, signing, small_uploads, transfer
from bench.stack import ROOT, ensure_wrk, running_stack
from bench.wrk import run_wrk
from infra.config import get_settings

RESULTS = ROOT / "bench" / "results"


def _account(api: str) -> tuple[uuid.UUID, str]:
    login, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    credentials = {"login": login, "password": password}
    user = httpx.post(f"{api}/user/register", json=credentials)
    user.raise_for_status()
    token = httpx.post(f"{api}/user/auth", json=credentials).json()["access_token"]
    return uuid.UUID(user.json()["id"]), token


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 2) if baseline else 0.0


def _against_baseline(
    wrk: str,
    base_url: str,
    token: str,
    script: str,
    args: list[str],
    levels: list[int],
    seconds: int,
) -> list[dict[str, Any]]:
    rows = []
    for concurrency in levels:
        baseline = run_wrk(wrk, base_url, "get", [token, "/api/v1/user/me"], concurrency, seconds)
        measured = run_wrk(wrk, base_url, script, args, concurrency, seconds)
        rows.append(
            {
                **measured.as_dict(),
                "baseline": baseline.as_dict(),
                "rps_ratio": _ratio(measured.rps, baseline.rps),
                "p50_ratio": _ratio(measured.p50_ms, baseline.p50_ms),
            }
        )
    return rows


def run(base_url: str, quick: bool) -> dict[str, Any]:
    settings = get_settings()
    wrk = ensure_wrk()
    api = f"{base_url}/api/v1"
    seconds = 3 if quick else 10
    levels = [1, 16, 64]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": _machine(),
        "wrk_seconds_per_level": seconds,
    }
    owner_id, token = _account(api)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        started = time.monotonic()
        run_id = secrets.token_hex(3)
        results["upload_intents"] = _against_baseline(
            wrk, base_url, token, "intents", [token, run_id], levels, seconds
        )
        httpx.post(
            f"{api}/files/upload",
            headers=headers,
            data={"path": "/bench/download.bin"},
            files={"file": ("download.bin", os.urandom(4096))},
        ).raise_for_status()
        results["download_redirects"] = _against_baseline(
            wrk,
            base_url,
            token,
            "get",
            [token, "/api/v1/files/download?path=/bench/download.bin"],
            levels,
            seconds,
        )
        server = processes.api(urlsplit(base_url).port or 80)
        results["api_processes"] = len(server.pids())
        results["small_uploads"] = {
            "proxied": small_uploads.proxied(
                wrk, base_url, token, run_id, seconds, server, processes.workers()
            ),
            "direct": small_uploads.direct(base_url, token, run_id, seconds),
        }
        size = (128 if quick else 1024) * transfer.MIB
        workdir = Path(tempfile.gettempdir())
        results["bytes"] = transfer.measure(api, token, server, processes.storage(), size, workdir)
        results["confirmation_latency"] = asyncio.run(
            confirm_latency.measure(base_url, 20 if quick else 200)
        )
        file_count = 10_000 if quick else 100_000
        paths = listing.seed_sync(settings.database.url, owner_id, file_count)
        hit = run_wrk(wrk, base_url, "get", [token, "/api/v1/files?limit=100"], 16, seconds)
        with tempfile.TemporaryDirectory() as tmp:
            cursors = listing.write_cursors(paths, Path(tmp) / "cursors.txt", 20_000)
            miss = run_wrk(wrk, base_url, "pages", [token, str(cursors), "2"], 16, seconds)
        results["listing"] = {
            "files": file_count,
            "page": 100,
            "cache_hit": hit.as_dict(),
            "cache_miss": miss.as_dict(),
            "miss_over_hit_p50": _ratio(miss.p50_ms, hit.p50_ms),
        }
        results["signing"] = signing.measure(settings, 500 if quick else 5000)
        results["duration_seconds"] = round(time.monotonic() - started, 1)
    finally:
        asyncio.run(listing.remove_user(settings.database.url, owner_id))
    return results


def _cpu(transfer: dict[str, Any]) -> str:
    """The CPU seconds spent on a transfer, and the machine's busy cores meanwhile."""
    return (
        f"CPU s: API {transfer['api_cpu_s']}, storage {transfer['storage_cpu_s']}, "
        f"{transfer['cores_busy']} cores busy"
    )


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | baseline | ratio |", "|---|---|---|---|"]

    def load(name: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            base = row["baseline"]
            lines.append(
                f"| {name}, c={row['concurrency']} | {row['rps']} req/s, p50 {row['p50_ms']} ms, "
                f"p99 {row['p99_ms']} ms | whoami {base['rps']} req/s, p50 {base['p50_ms']} ms, "
                f"p99 {base['p99_ms']} ms | {row['rps_ratio']}x req/s |"
            )

    load("POST /files/upload (JSON intent)", results["upload_intents"])
    load("GET /files/download (307)", results["download_redirects"])
    small = results["small_uploads"]
    proxied, direct = small["proxied"], small["direct"]
    lines.append(
        f"| {proxied['size_kib']} KiB upload, proxied, c={proxied['concurrency']} | "
        f"{proxied['rps']} uploads/s, p50 {proxied['p50_ms']} ms, p99 {proxied['p99_ms']} ms, "
        f"{proxied['errors']} errors; CPU per upload: API {proxied['api_cpu_ms_per_upload']} ms, "
        f"worker {proxied['worker_cpu_ms_per_upload']} ms | direct (intent + PUT, until listed) "
        f"{direct['rps']} uploads/s, p50 {direct['p50_ms']} ms, p99 {direct['p99_ms']} ms, "
        f"{direct['errors']} errors, last listed {direct['last_confirmed_after_ms']} ms after "
        f"the last PUT | {_ratio(proxied['rps'], direct['rps'])}x |"
    )
    size = results["bytes"]["size_mib"]
    for direction in ("upload", "download"):
        item = results["bytes"][direction]
        proxied, direct = item["proxied"], item["direct"]
        lines.append(
            f"| {size} MiB {direction}, proxied | {proxied['mb_s']} MB/s, API peak RSS "
            f"{proxied['api_peak_rss_mib']} MiB; {_cpu(proxied)} | direct presigned "
            f"{direct['mb_s']} MB/s, API peak RSS {direct['api_peak_rss_mib']} MiB; "
            f"{_cpu(direct)} | {item['ratio']}x |"
        )
    confirm = results["confirmation_latency"]
    lines.append(
        f"| confirmation latency ({confirm['uploads']} uploads) | p50 {confirm['p50_ms']} ms, "
        f"p95 {confirm['p95_ms']} ms, max {confirm['max_ms']} ms | goal: p50 <= 250 ms | |"
    )
    page = results["listing"]
    miss, hit = page["cache_miss"], page["cache_hit"]
    lines.append(
        f"| list 100 of {page['files']} files, c=16 | miss: {miss['rps']} req/s, p50 "
        f"{miss['p50_ms']} ms, p99 {miss['p99_ms']} ms | hit: {hit['rps']} req/s, p50 "
        f"{hit['p50_ms']} ms, p99 {hit['p99_ms']} ms | {page['miss_over_hit_p50']}x p50 |"
    )
    ours, theirs = results["signing"]["api_signer_us"], results["signing"]["botocore_us"]
    for kind in ("get", "put", "put_with_size_and_sha256", "post"):
        lines.append(
            f"| CPU per presigned {kind.replace('_', ' ')} | {ours[kind]} µs "
            "(infra/storage/signer.py) | "
            f"{theirs[kind]} µs (botocore) | {results['signing']['speedup'][kind]}x faster |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the JSON goes (default: a temporary file; with --update the committed one)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        default=os.environ.get("UPDATE") == "1",
        help="write bench/results/latest.json, the committed results (UPDATE=1)",
    )
    args = parser.parse_args()
    if args.output is None:
        fresh = Path(tempfile.mkdtemp(prefix="bench-")) / "latest.json"
        args.output = RESULTS / "latest.json" if args.update else fresh
    with running_stack(args.base_url):
        results = run(args.base_url, args.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
