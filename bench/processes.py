"""The stack's processes, read from /proc: the API (a server process and its workers), the arq
worker(s) and the S3 server, with their CPU time and resident memory summed over each group;
and how busy the whole machine was."""

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[1])


def with_descendants(roots: list[int]) -> list[int]:
    pids = _all_pids()
    parents = {pid: _parent(pid) for pid in pids}
    group = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in group and pid not in group:
                group.add(pid)
                grew = True
    return sorted(group)


@dataclass(frozen=True, slots=True)
class Group:
    """A set of processes found by their command line, re-read on every call (workers that a
    server restarts are counted too)."""

    name: str
    roots: tuple[int, ...]

    def pids(self) -> list[int]:
        return with_descendants(list(self.roots))

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS_PER_SECOND

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except OSError:
                continue
        return total


def api(port: int) -> Group:
    """`python -m api.serve` (what `make run` starts), or a uvicorn serving api.main:app on
    ``port``, and every process it started."""
    roots = tuple(pid for pid in _all_pids() if _is_api(_argv(pid), port))
    if not roots:
        raise SystemExit(f"no api.serve or api.main:app server on port {port}")
    return Group("api", roots)


def _is_api(argv: list[bytes], port: int) -> bool:
    if _runs_module(argv, b"api.serve"):
        return True
    return b"api.main:app" in argv and str(port).encode() in argv


def workers() -> Group:
    """Every `python -m worker` process (and what it started)."""
    roots = tuple(pid for pid in _all_pids() if _runs_module(_argv(pid), b"worker"))
    return Group("worker", roots)


def storage() -> Group:
    """The S3 server `make run` starts (SeaweedFS: every `weed` process)."""
    roots = tuple(pid for pid in _all_pids() if Path(_argv(pid)[0].decode()).name == "weed")
    return Group("storage", roots)


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent on anything but idling and waiting, since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS_PER_SECOND


def _runs_module(argv: list[bytes], module: bytes) -> bool:
    return any(argv[index : index + 2] == [b"-m", module] for index in range(len(argv) - 1))
