"""Settings from the environment: grouped by concern under the variables' unchanged names; an
optional setting set to an empty value is unset; the README's table is the code's."""

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra.config import FLAT_NAMES, GROUPS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_an_empty_optional_setting_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESTORE_METRICS_DIR", "")
    monkeypatch.setenv("FILESTORE_WORKER_METRICS_PORT", "")
    monkeypatch.setenv("FILESTORE_S3_PUBLIC_ENDPOINT_URL", "")
    settings = Settings()
    assert (settings.observability.dir, settings.worker.metrics_port) == (None, None)
    assert settings.storage.presign_endpoint_url == settings.storage.endpoint_url


def test_an_empty_required_setting_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESTORE_RUN_PORT", "")
    with pytest.raises(ValueError, match="FILESTORE_RUN_PORT"):
        Settings()


def test_every_variable_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group strips its prefix, or names its variable: both read the same variable."""
    monkeypatch.setenv("FILESTORE_S3_BUCKET", "from-env")
    monkeypatch.setenv("FILESTORE_PUBLIC_URL", "https://files.example.com")
    monkeypatch.setenv("FILESTORE_API_PROCESSES", "3")
    monkeypatch.setenv("FILESTORE_CORS_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("FILESTORE_SWEEP_INTERVAL_SECONDS", "120")
    settings = Settings()
    assert settings.storage.bucket == "from-env"
    assert settings.shares.public_url == "https://files.example.com"
    assert settings.run.api_processes == 3
    assert settings.cors.origins == ["https://a.example", "https://b.example"]
    assert settings.jobs.sweep_interval_seconds == 120
    monkeypatch.setenv("FILESTORE_SWEEP_INTERVAL_SECONDS", "7")
    with pytest.raises(ValueError, match="FILESTORE_SWEEP_INTERVAL_SECONDS"):
        Settings()


def test_with_changes_validates_and_leaves_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESTORE_S3_BUCKET", "from-env")
    settings = Settings(redis_url="redis://127.0.0.1:6379/3")
    assert (settings.redis.url, settings.storage.bucket) == ("redis://127.0.0.1:6379/3", "from-env")
    changed = settings.with_changes(s3_bucket="other", auth_max_failures_per_address=3)
    assert (changed.storage.bucket, changed.auth.max_failures_per_address) == ("other", 3)
    assert (settings.storage.bucket, changed.redis.url) == ("from-env", settings.redis.url)
    assert changed.database is settings.database
    with pytest.raises(TypeError, match="no setting named 'bucket'"):
        settings.with_changes(bucket="x")
    with pytest.raises(ValueError, match="FILESTORE_METRICS_TOKEN"):
        settings.with_changes(metrics_access="token", metrics_token=SecretStr("short"))
    with pytest.raises(ValueError, match="FILESTORE_JWT_SECRET must be set"):
        settings.with_changes(environment="production")


def _readme_rows() -> dict[str, str]:
    text = README.read_text()
    table = text[text.index("| variable | group | default | meaning |") :]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `FILESTORE_"):
            break
        variable, group = (cell.strip() for cell in line.split("|")[1:3])
        rows[variable.strip("`")] = group.strip("`")
    return rows


def test_the_readme_table_lists_every_variable_in_its_group() -> None:
    in_code = {f"FILESTORE_{flat.upper()}": group for flat, (group, _) in FLAT_NAMES.items()}
    in_code["FILESTORE_ENVIRONMENT"] = "(top level)"
    assert _readme_rows() == in_code
    assert set(GROUPS) == {group for group, _ in FLAT_NAMES.values()}


def test_the_api_starts_with_an_empty_metrics_dir() -> None:
    """It crashed at start-up with a raw FileNotFoundError (os.makedirs(""))."""
    code = "from api.main import create_app; create_app(); print('ok')"
    env = {"FILESTORE_METRICS_DIR": "", "FILESTORE_ENVIRONMENT": "test", "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
