"""``python -m scripts.setup_storage``: make a bucket ready for filestore, and say what is wrong.

With the service's own settings (``FILESTORE_*``, or an ``.env`` file) it checks, in order, that
the credentials reach the bucket (HeadBucket, then a listing names the reason of a refusal),
creates the bucket when asked (``--create-bucket``), lists the key prefix and its multipart
uploads as the worker's sweep does, puts the bucket CORS rule browsers need (``api.cors``), and
round-trips a presigned PUT and GET of a tiny probe object under the prefix, which it deletes.
It prints one line per check, with a fix for each failure, and exits non-zero on a failure.
Bucket notifications are not checked: each server configures them its own way (README,
"Running on your own S3"). Idempotent, so compose runs it on every ``up``. No secret is printed.
"""

import argparse
import asyncio
import json
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from api.cors import bucket_cors_rule, bucket_origins
from infra.config import Settings
from infra.storage.adapter import Storage, open_storage, signer_for

__all__ = ["Check", "Options", "Report", "main", "setup_storage"]

Status = Literal["ok", "FAIL", "warn", "skip"]
PROBE_BODY = b"filestore setup probe\n"
PROBE_CONTENT_TYPE = "text/plain"
PROBE_URL_TTL_SECONDS = 60
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=20)
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
S3_ERROR_CODE = re.compile(r"<Code>([^<]+)</Code>")
# What each refusal storage names means for the operator.
FIXES = {
    "InvalidAccessKeyId": "storage does not know this access key: check FILESTORE_S3_ACCESS_KEY "
    "(and that FILESTORE_S3_ENDPOINT_URL is the right server)",
    "SignatureDoesNotMatch": "the secret key does not match the access key: check "
    "FILESTORE_S3_SECRET_KEY (FILESTORE_S3_REGION is signed too)",
    "AuthorizationHeaderMalformed": "the region is wrong: set FILESTORE_S3_REGION to the "
    "bucket's region",
    "PermanentRedirect": "the bucket lives in another region: set FILESTORE_S3_REGION and "
    "FILESTORE_S3_ENDPOINT_URL to that region's",
    "301": "the bucket lives in another region: set FILESTORE_S3_REGION and "
    "FILESTORE_S3_ENDPOINT_URL to that region's",
    "AccessDenied": "the key lacks a permission on this bucket: grant it (see README, "
    "'Running on your own S3', for the list)",
    "403": "storage refused these credentials: check FILESTORE_S3_ACCESS_KEY, "
    "FILESTORE_S3_SECRET_KEY and their permissions on the bucket",
}


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    name: str
    detail: str
    fix: str | None = None


@dataclass
class Report:
    endpoint: str
    bucket: str
    prefix: str
    access_key: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(check.status == "FAIL" for check in self.checks)

    def add(self, status: Status, name: str, detail: str, fix: str | None = None) -> None:
        self.checks.append(Check(status, name, detail, fix))

    def render(self) -> str:
        lines = [
            f"filestore storage setup: {self.endpoint}, bucket {self.bucket!r}, "
            f"prefix {self.prefix!r}, access key {_masked(self.access_key)}",
        ]
        for check in self.checks:
            lines.append(f"  {check.status:<5} {check.name:<12} {check.detail}")
            if check.fix:
                lines.append(f"  {'':<5} {'':<12} fix: {check.fix}")
        failures = sum(check.status == "FAIL" for check in self.checks)
        if failures:
            lines.append(f"FAILED: {failures} check(s) failed; storage is not ready for filestore")
        else:
            lines.append("OK: storage is ready for filestore")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Options:
    create_bucket: bool = False
    cors: bool = True
    public_probe: bool = True


class ProbeFailed(Exception):
    """A presigned request of the probe was refused or answered wrongly."""


def _masked(access_key: str) -> str:
    """As ``aws configure list`` shows it: enough to tell keys apart, not to use one."""
    return f"****{access_key[-4:]}" if len(access_key) > 8 else "****"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _fix(code: str, default: str) -> str:
    return FIXES.get(code, default)


async def setup_storage(settings: Settings, options: Options) -> Report:
    """Run every check against the configured storage; the report says what passed."""
    prefix = f"{settings.storage.key_prefix.strip('/')}/"
    report = Report(
        settings.storage.endpoint_url, settings.storage.bucket, prefix, settings.storage.access_key
    )
    try:
        async with open_storage(settings) as storage:
            if not await _check_bucket(storage, options, report):
                return report
            await _check_listings(storage, prefix, report)
            if options.cors:
                await _check_cors(storage, settings, report)
            else:
                report.add("skip", "cors", "--no-cors: the bucket's CORS rule was left as it is")
            await _check_probe(storage, settings, prefix, options, report)
    except (BotoCoreError, OSError) as error:
        report.add(
            "FAIL",
            "endpoint",
            f"cannot reach {settings.storage.endpoint_url}: {type(error).__name__}",
            "check FILESTORE_S3_ENDPOINT_URL and that storage is up and reachable from here",
        )
        return report
    report.add(
        "skip",
        "events",
        "bucket notifications are not checked here: without them uploads that nobody "
        f"completes are confirmed by reconcile, every {settings.jobs.reconcile_interval_seconds} s",
    )
    return report


async def _check_bucket(storage: Storage, options: Options, report: Report) -> bool:
    try:
        await storage.ping()
    except ClientError as error:
        code = _code(error)
        if code not in MISSING_BUCKET_CODES:
            # HeadBucket answers a bare status; a listing's error names the reason.
            code = await _listing_refusal(storage) or code
            report.add(
                "FAIL",
                "credentials",
                f"storage refused HeadBucket on {storage.bucket!r} ({code})",
                _fix(code, "check FILESTORE_S3_ACCESS_KEY and FILESTORE_S3_SECRET_KEY"),
            )
            return False
        if not options.create_bucket:
            report.add(
                "FAIL",
                "bucket",
                f"bucket {storage.bucket!r} does not exist",
                "create it (or set FILESTORE_S3_BUCKET to an existing one), "
                "or run again with --create-bucket",
            )
            return False
        return await _create_bucket(storage, report)
    report.add("ok", "bucket", f"{storage.bucket!r} exists and these credentials reach it")
    return True


async def _listing_refusal(storage: Storage) -> str | None:
    try:
        await storage.list_objects("", None, 1)
    except ClientError as error:
        return _code(error)
    return None


async def _create_bucket(storage: Storage, report: Report) -> bool:
    try:
        created = await storage.create_bucket()
    except ClientError as error:
        code = _code(error)
        report.add(
            "FAIL",
            "bucket",
            f"could not create bucket {storage.bucket!r} ({code})",
            _fix(
                code,
                "create it with the server's own tool (it may need an admin key), "
                "or pick another FILESTORE_S3_BUCKET (names are global on AWS)",
            ),
        )
        return False
    what = "created" if created else "already existed (created meanwhile)"
    report.add("ok", "bucket", f"{storage.bucket!r} {what}")
    return True


async def _check_listings(storage: Storage, prefix: str, report: Report) -> None:
    """The worker's sweep lists objects and multipart uploads under the prefix."""
    try:
        await storage.list_objects(prefix, None, 1)
        report.add("ok", "list", f"ListObjectsV2 under {prefix} (the bucket sweep's listing)")
    except ClientError as error:
        code = _code(error)
        report.add(
            "FAIL",
            "list",
            f"ListObjectsV2 under {prefix} refused ({code})",
            _fix(code, "grant s3:ListBucket on the bucket"),
        )
    try:
        await storage.list_multipart_uploads(prefix, 1)
        report.add("ok", "multipart", f"ListMultipartUploads under {prefix}")
    except ClientError as error:
        code = _code(error)
        report.add(
            "FAIL",
            "multipart",
            f"ListMultipartUploads under {prefix} refused ({code})",
            _fix(code, "grant s3:ListBucketMultipartUploads on the bucket"),
        )


async def _check_cors(storage: Storage, settings: Settings, report: Report) -> None:
    origins = bucket_origins(settings)
    if not origins:
        report.add(
            "skip",
            "cors",
            "no FILESTORE_CORS_ORIGINS (production): no page may upload straight to storage",
        )
        return
    rule = bucket_cors_rule(origins, settings.cors.max_age_seconds)
    try:
        await storage.put_bucket_cors(rule)
    except ClientError as error:
        code = _code(error)
        by_hand = f"or apply this rule yourself and use --no-cors: {json.dumps(rule)}"
        if code == "NotImplemented":
            report.add(
                "warn",
                "cors",
                "this server has no bucket CORS API (PutBucketCors: NotImplemented)",
                "MinIO: set MINIO_API_CORS_ALLOW_ORIGIN to the same origins; " + by_hand,
            )
            return
        report.add(
            "FAIL",
            "cors",
            f"PutBucketCors refused ({code})",
            _fix(code, "grant s3:PutBucketCORS") + "; " + by_hand,
        )
        return
    report.add("ok", "cors", f"rule applied: origins {', '.join(origins)}; exposes ETag, Location")


async def _check_probe(
    storage: Storage, settings: Settings, prefix: str, options: Options, report: Report
) -> None:
    key = f"{prefix}.setup-probe-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession(timeout=PROBE_TIMEOUT, auto_decompress=False) as http:
        try:
            await _round_trip(http, settings, settings.storage.endpoint_url, key)
        except (ProbeFailed, aiohttp.ClientError, TimeoutError) as error:
            report.add(
                "FAIL",
                "presigned",
                f"presigned PUT/GET of {key} through {settings.storage.endpoint_url}: {error}",
                "storage must accept SigV4 query-string signatures (path-style URLs); "
                "check FILESTORE_S3_REGION and the key's s3:PutObject and s3:GetObject",
            )
        else:
            report.add("ok", "presigned", f"PUT then GET of {key} through presigned URLs")
        public = settings.storage.presign_endpoint_url
        if public != settings.storage.endpoint_url:
            await _check_public(http, settings, public, key, options, report)
    await _delete_probe(storage, key, report)


async def _check_public(
    http: aiohttp.ClientSession,
    settings: Settings,
    public: str,
    key: str,
    options: Options,
    report: Report,
) -> None:
    """Clients get URLs for FILESTORE_S3_PUBLIC_ENDPOINT_URL; storage must accept them there."""
    if not options.public_probe:
        report.add("skip", "public-url", f"--no-public-probe: {public} not tried from here")
        return
    try:
        await _round_trip(http, settings, public, key)
    except (aiohttp.ClientConnectionError, TimeoutError) as error:
        report.add(
            "warn",
            "public-url",
            f"{public} is not reachable from here ({type(error).__name__})",
            "clients (browsers, the filestore command) must reach FILESTORE_S3_PUBLIC_ENDPOINT_URL;"
            " if they do, ignore this",
        )
    except (ProbeFailed, aiohttp.ClientError) as error:
        report.add(
            "FAIL",
            "public-url",
            f"presigned PUT/GET through {public}: {error}",
            "a proxy in front of storage must pass the Host header and the query unchanged "
            "(the signature covers them)",
        )
    else:
        report.add("ok", "public-url", f"PUT then GET through {public} (what clients get)")


async def _round_trip(
    http: aiohttp.ClientSession, settings: Settings, endpoint_url: str, key: str
) -> None:
    signer = signer_for(settings, endpoint_url)
    headers = {"Content-Type": PROBE_CONTENT_TYPE}
    put_url = signer.presign_url(
        "PUT", settings.storage.bucket, key, PROBE_URL_TTL_SECONDS, headers=headers
    )
    async with http.put(put_url, data=PROBE_BODY, headers=headers) as answer:
        if answer.status != 200:
            raise ProbeFailed(f"PUT answered {answer.status} {_s3_code(await answer.text())}")
    get_url = signer.presign_url("GET", settings.storage.bucket, key, PROBE_URL_TTL_SECONDS)
    async with http.get(get_url) as answer:
        body = await answer.read()
        if answer.status != 200:
            code = _s3_code(body.decode(errors="replace"))
            raise ProbeFailed(f"GET answered {answer.status} {code}")
        if body != PROBE_BODY:
            raise ProbeFailed(f"GET returned {len(body)} bytes, not the {len(PROBE_BODY)} sent")


def _s3_code(text: str) -> str:
    found = S3_ERROR_CODE.search(text)
    return f"({found.group(1)})" if found else ""


async def _delete_probe(storage: Storage, key: str, report: Report) -> None:
    """The worker deletes replaced objects: the probe goes the same way."""
    try:
        await storage.delete(key)
        left = await storage.head(key)
    except ClientError as error:
        code = _code(error)
        report.add(
            "FAIL",
            "delete",
            f"DeleteObject of {key} refused ({code}); delete it by hand",
            _fix(code, "grant s3:DeleteObject (the worker deletes replaced objects)"),
        )
        return
    if left is not None:
        report.add("FAIL", "delete", f"{key} is still there after DeleteObject", None)
    else:
        report.add("ok", "delete", "probe object deleted (the worker deletes replaced objects)")


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.setup_storage",
        description="Check (and set up) the S3 bucket filestore's FILESTORE_* settings name.",
    )
    parser.add_argument(
        "--create-bucket", action="store_true", help="create the bucket when it does not exist"
    )
    parser.add_argument(
        "--no-cors",
        dest="cors",
        action="store_false",
        help="leave the bucket's CORS rule alone (applied by hand, or no browser uploads)",
    )
    parser.add_argument(
        "--no-public-probe",
        dest="public_probe",
        action="store_false",
        help="do not try FILESTORE_S3_PUBLIC_ENDPOINT_URL from here (a container network)",
    )
    parsed = parser.parse_args(argv)
    return Options(parsed.create_bucket, parsed.cors, parsed.public_probe)


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        # Without the input values: they may be secrets.
        print("filestore storage setup: the FILESTORE_* settings are invalid:")
        for problem in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            print(f"  {where}: {problem['msg']}")
        return 2
    report = asyncio.run(setup_storage(settings, options))
    print(report.render(), flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
