"""``python -m scripts.setup_storage`` against the tests' SeaweedFS: what it checks and reports."""

import os
import secrets
import subprocess
import sys

from pydantic import SecretStr

from infra.config import Settings
from scripts.setup_storage import Options, Report, setup_storage
from tests.helpers import ROOT, Bucket


def _statuses(report: Report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def _fixes(report: Report) -> str:
    return " ".join(check.fix or "" for check in report.checks if check.status == "FAIL")


async def test_a_ready_bucket_passes_every_check(settings: Settings, bucket: Bucket) -> None:
    report = await setup_storage(settings, Options())

    assert not report.failed, report.render()
    statuses = _statuses(report)
    for name in ("bucket", "list", "multipart", "cors", "presigned", "delete"):
        assert statuses[name] == "ok", report.render()
    assert statuses["events"] == "skip"
    rendered = report.render()
    assert rendered.endswith("OK: storage is ready for filestore")
    assert settings.storage.secret_key.get_secret_value() not in rendered
    # The fixture names the bucket like the key, so look at the key's own place.
    assert f"access key ****{settings.storage.access_key[-4:]}" in rendered
    # The probe went under the prefix and is gone.
    assert not {key for key in await bucket.keys("uploads/") if ".setup-probe-" in key}
    cors = await bucket.client.get_bucket_cors(Bucket=bucket.name)
    assert "ETag" in cors["CORSRules"][0]["ExposeHeaders"]


async def test_a_missing_bucket_fails_without_create_bucket(settings: Settings) -> None:
    missing = settings.with_changes(**{"s3_bucket": f"missing-{secrets.token_hex(4)}"})

    report = await setup_storage(missing, Options())

    assert report.failed
    assert _statuses(report) == {"bucket": "FAIL"}
    assert "does not exist" in report.checks[0].detail
    assert "--create-bucket" in _fixes(report)
    assert report.render().splitlines()[-1].startswith("FAILED: 1 check(s) failed")


async def test_create_bucket_makes_it_ready(settings: Settings, bucket: Bucket) -> None:
    name = f"created-{secrets.token_hex(4)}"
    fresh = settings.with_changes(**{"s3_bucket": name})

    report = await setup_storage(fresh, Options(create_bucket=True))

    assert not report.failed, report.render()
    assert report.checks[0].detail == f"{name!r} created"
    await bucket.client.head_bucket(Bucket=name)
    cors = await bucket.client.get_bucket_cors(Bucket=name)
    assert cors["CORSRules"][0]["AllowedOrigins"] == ["*"]
    # Run again: nothing to create, still ready.
    again = await setup_storage(fresh, Options(create_bucket=True))
    assert not again.failed, again.render()
    assert again.checks[0].detail == f"{name!r} exists and these credentials reach it"
    await bucket.client.delete_bucket(Bucket=name)


async def test_a_wrong_secret_key_fails_clearly(settings: Settings) -> None:
    wrong_secret = secrets.token_hex(16)
    wrong = settings.with_changes(**{"s3_secret_key": SecretStr(wrong_secret)})

    report = await setup_storage(wrong, Options())

    assert report.failed
    assert _statuses(report) == {"credentials": "FAIL"}
    assert "SignatureDoesNotMatch" in report.checks[0].detail
    assert "FILESTORE_S3_SECRET_KEY" in _fixes(report)
    assert wrong_secret not in report.render()


async def test_an_unknown_access_key_is_named(settings: Settings) -> None:
    wrong = settings.with_changes(**{"s3_access_key": f"nobody-{secrets.token_hex(4)}"})

    report = await setup_storage(wrong, Options())

    assert _statuses(report) == {"credentials": "FAIL"}
    assert "FILESTORE_S3_ACCESS_KEY" in _fixes(report)


async def test_an_unreachable_public_endpoint_only_warns(settings: Settings) -> None:
    """From inside a container the host's published port is out of reach; clients may still
    reach it, so that is a warning, and --no-public-probe leaves it out."""
    elsewhere = settings.with_changes(**{"s3_public_endpoint_url": "http://127.0.0.1:9"})

    report = await setup_storage(elsewhere, Options())
    skipped = await setup_storage(elsewhere, Options(public_probe=False))

    assert not report.failed, report.render()
    assert _statuses(report)["public-url"] == "warn"
    assert _statuses(skipped)["public-url"] == "skip"


def test_the_command_exits_non_zero_on_failure(settings: Settings) -> None:
    """The module as compose's storage-setup runs it: settings from FILESTORE_*, a report on
    stdout, exit status 1 on a failed check (here a bucket that does not exist)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FILESTORE_ENVIRONMENT": "test",
        "FILESTORE_S3_ENDPOINT_URL": settings.storage.endpoint_url,
        "FILESTORE_S3_ACCESS_KEY": settings.storage.access_key,
        "FILESTORE_S3_SECRET_KEY": settings.storage.secret_key.get_secret_value(),
        "FILESTORE_S3_BUCKET": f"missing-{secrets.token_hex(4)}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.setup_storage", "--no-public-probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  bucket" in result.stdout
    assert "--create-bucket" in result.stdout
    assert settings.storage.secret_key.get_secret_value() not in result.stdout + result.stderr

    env["FILESTORE_S3_BUCKET"] = settings.storage.bucket
    result = subprocess.run(
        [sys.executable, "-m", "scripts.setup_storage"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("OK: storage is ready for filestore")


def test_invalid_settings_exit_2_without_echoing_them() -> None:
    secret = "not-a-real-" + secrets.token_hex(8)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FILESTORE_ENVIRONMENT": "production",
        "FILESTORE_JWT_SECRET": secret,
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.setup_storage"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FILESTORE_WEBHOOK_TOKEN" in result.stdout
    assert secret not in result.stdout + result.stderr
