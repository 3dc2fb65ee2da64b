"""The bench's own smoke test: a quick run produces every figure (no timing is asserted).

Run with `make bench-smoke`; it is not part of `make test` (it needs the whole stack and wrk and
takes about two minutes).
"""

import json
import subprocess
import sys
from pathlib import Path

from bench.stack import ROOT

FIGURES = {
    "upload_intents",
    "download_redirects",
    "small_uploads",
    "bytes",
    "confirmation_latency",
    "listing",
    "signing",
}


def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results.keys() >= FIGURES
    for figure in ("upload_intents", "download_redirects"):
        assert [row["concurrency"] for row in results[figure]] == [1, 16, 64]
        for row in results[figure]:
            assert row["requests"] > 0
            assert row["errors"] == 0
            assert row["baseline"]["errors"] == 0
    for path in ("proxied", "direct"):
        small = results["small_uploads"][path]
        assert small["rps"] > 0
        assert small["errors"] == 0
    assert results["small_uploads"]["proxied"]["api_cpu_ms_per_upload"] > 0
    assert (
        results["small_uploads"]["direct"]["confirmed"]
        == results["small_uploads"]["direct"]["uploads"]
    )
    for direction in ("upload", "download"):
        transfer = results["bytes"][direction]
        assert transfer["proxied"]["mb_s"] > 0
        assert transfer["direct"]["mb_s"] > 0
    assert results["confirmation_latency"]["uploads"] == 20
    assert results["listing"]["cache_miss"]["errors"] == 0
    assert set(results["signing"]["speedup"]) == {"get", "put", "put_with_size_and_sha256", "post"}
    assert "| figure | measured | baseline | ratio |" in run.stdout
