"""Settings from the environment: an optional setting set to an empty value is unset."""

import subprocess
import sys

import pytest

from infra.config import Settings


def test_an_empty_optional_setting_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESTORE_METRICS_DIR", "")
    monkeypatch.setenv("FILESTORE_WORKER_METRICS_PORT", "")
    monkeypatch.setenv("FILESTORE_S3_PUBLIC_ENDPOINT_URL", "")
    settings = Settings()
    assert (settings.metrics_dir, settings.worker_metrics_port) == (None, None)
    assert settings.presign_endpoint_url == settings.s3_endpoint_url


def test_an_empty_required_setting_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILESTORE_RUN_PORT", "")
    with pytest.raises(ValueError, match="run_port"):
        Settings()


def test_the_api_starts_with_an_empty_metrics_dir() -> None:
    """It crashed at start-up with a raw FileNotFoundError (os.makedirs(""))."""
    code = "from api.main import create_app; create_app(); print('ok')"
    env = {"FILESTORE_METRICS_DIR": "", "FILESTORE_ENVIRONMENT": "test", "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
