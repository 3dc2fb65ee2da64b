"""What instrumentation costs: upload intents per second and CPU per intent, metrics on and off.

    python -m bench.metrics_cost [--seconds 8] [--rounds 3] [--concurrency 16]
    python -m bench.metrics_cost --micro         # CPU per request of the timing middleware

Starts two API processes of its own next to the running `make run` stack (same PostgreSQL,
Redis and SeaweedFS; started here if none answers): one with FILESTORE_METRICS_ACCESS=off (no
request timing, no /metrics), one with metrics on in multiprocess mode as `make run` runs it.
wrk drives intents at each in turn, alternating, for ``--rounds`` rounds; each run reports
requests per second and the API process's CPU time per request (/proc/<pid>/stat). Prints a
JSON summary with the medians. On a busy machine the end-to-end figures are noisy; ``--micro``
measures the instrumentation alone: the request-timing middleware around an empty ASGI app,
against the bare app, in-process, in both modes (a subprocess each, since the mode is chosen
once per process).
"""

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import httpx

from api.http_protocol import HTTP
from api.prometheus import HttpMetricsMiddleware
from bench.stack import ROOT, ensure_wrk, running_stack
from bench.wrk import run_wrk
from infra import metrics
from infra.config import Settings
from scripts.seaweed import free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_api(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port), "--http", HTTP]
    process = subprocess.Popen(
        [*command, "--log-config", "infra/log_config.json", "--log-level", "warning"],
        cwd=ROOT,
        env={**env, "FILESTORE_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("a bench API process did not start")
        time.sleep(0.2)


def measure(seconds: int, rounds: int, concurrency: int) -> dict[str, Any]:
    wrk = ensure_wrk()
    base_env = {k: v for k, v in os.environ.items() if k != "FILESTORE_METRICS_DIR"}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        variants = {
            "off": {**base_env, "FILESTORE_METRICS_ACCESS": "off"},
            "on": {
                **base_env,
                "FILESTORE_METRICS_ACCESS": "open",
                "FILESTORE_METRICS_DIR": metrics_dir,
            },
        }
        ports = {name: free_port() for name in variants}
        processes = {name: start_api(ports[name], env) for name, env in variants.items()}
        try:
            api = f"http://127.0.0.1:{ports['off']}/api/v1"
            credentials = {"login": f"cost_{secrets.token_hex(4)}", "password": "metrics-cost-1"}
            httpx.post(f"{api}/user/register", json=credentials).raise_for_status()
            token = httpx.post(f"{api}/user/auth", json=credentials).json()["access_token"]
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
            for round_number in range(rounds):
                for name in variants:
                    pid = processes[name].pid
                    url = f"http://127.0.0.1:{ports[name]}"
                    run_id = f"cost-{name}-{round_number}-{secrets.token_hex(2)}"
                    before = cpu_seconds(pid)
                    load = run_wrk(wrk, url, "intents", [token, run_id], concurrency, seconds)
                    cpu = cpu_seconds(pid) - before
                    runs[name].append(
                        {
                            "rps": round(load.rps, 1),
                            "p50_ms": round(load.p50_ms, 2),
                            "cpu_us_per_request": round(cpu / max(load.requests, 1) * 1e6, 1),
                            "errors": load.errors,
                        }
                    )
        finally:
            for process in processes.values():
                process.send_signal(signal.SIGINT)
            for process in processes.values():
                process.wait(30)

    def median(name: str, key: str) -> float:
        return round(statistics.median(run[key] for run in runs[name]), 1)

    summary = {
        name: {"rps": median(name, "rps"), "cpu_us_per_request": median(name, "cpu_us_per_request")}
        for name in runs
    }
    return {
        "concurrency": concurrency,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "runs": runs,
        "median": summary,
        "rps_on_over_off": round(summary["on"]["rps"] / summary["off"]["rps"], 3),
        "cpu_us_added_per_request": round(
            summary["on"]["cpu_us_per_request"] - summary["off"]["cpu_us_per_request"], 1
        ),
    }


MICRO_REQUESTS = 20_000


async def _micro(requests: int) -> dict[str, float]:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return

    route = types.SimpleNamespace(path="/api/v1/files/upload")
    timed = HttpMetricsMiddleware(bare)
    result = {}
    for name, app in (("bare", bare), ("timed", timed)):
        started = time.process_time()
        for _ in range(requests):
            scope = {"type": "http", "method": "POST", "path": "/x", "route": route}
            await app(scope, receive, send)
        result[name] = (time.process_time() - started) / requests * 1e6
    return result


def micro(mode: str) -> dict[str, str | float]:
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as directory:
        metrics.configure(Settings(metrics_dir=directory if mode == "multiprocess" else None))
        result = asyncio.run(_micro(MICRO_REQUESTS))
    return {
        "mode": mode,
        "bare_us": round(result["bare"], 2),
        "timed_us": round(result["timed"], 2),
        "added_us_per_request": round(result["timed"] - result["bare"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--micro", action="store_true")
    parser.add_argument("--micro-mode", choices=["single", "multiprocess"])
    args = parser.parse_args()
    if args.micro_mode:
        print(json.dumps(micro(args.micro_mode)))
        return
    if args.micro:
        for mode in ("single", "multiprocess"):
            command = [sys.executable, "-m", "bench.metrics_cost", "--micro-mode", mode]
            subprocess.run(command, cwd=ROOT, check=True)
        return
    with running_stack(args.base_url):
        print(json.dumps(measure(args.seconds, args.rounds, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
