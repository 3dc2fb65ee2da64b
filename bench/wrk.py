"""Run wrk with one of bench/lua's scripts and read its JSON summary line."""

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True, slots=True)
class Load:
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "errors": self.errors,
        }


def run_wrk(
    wrk: str, base_url: str, script: str, args: list[str], concurrency: int, seconds: int
) -> Load:
    threads = min(concurrency, 2)
    # Written outside the source tree, so a run never leaves files in the checkout.
    handle, name = tempfile.mkstemp(prefix=f"wrk-{script}-", suffix=".lua")
    combined = Path(name)
    with os.fdopen(handle, "w") as lua:
        lua.write((LUA / f"{script}.lua").read_text() + (LUA / "report.lua").read_text())
    try:
        output = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(combined),
                base_url,
                "--",
                *args,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        combined.unlink(missing_ok=True)
    summary = json.loads(output.strip().splitlines()[-1])
    seconds_taken = summary["duration_us"] / 1e6
    return Load(
        concurrency=concurrency,
        rps=summary["requests"] / seconds_taken,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        requests=summary["requests"],
        errors=summary["socket_errors"] + summary["http_errors"],
    )
