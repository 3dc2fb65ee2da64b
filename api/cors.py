"""Cross-origin requests from browsers (DESIGN §10): the API's CORS policy and the bucket's rule.

The API answers preflights and adds the CORS headers to every response it makes inside the
middleware stack, error responses included (a page that gets an error without them only sees
"Failed to fetch"). ``Authorization`` is listed by name: a ``*`` does not cover it. Requests
carry bearer tokens, never cookies, so credentials are not allowed.

The bucket needs a rule of its own, or a page can neither PUT/POST to presigned URLs nor read a
part's ``ETag``; ``bucket_cors_rule`` is that rule (``make run`` applies it to SeaweedFS, the
README shows it for AWS, compose sets MinIO's global setting instead).
"""

import asyncio
import time
from typing import Any

from botocore.exceptions import ClientError
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from infra.config import Settings
from infra.storage.adapter import open_storage

__all__ = [
    "ALLOWED_HEADERS",
    "DEVELOPMENT_ORIGINS",
    "EXPOSED_HEADERS",
    "apply_bucket_cors",
    "bucket_cors_rule",
    "bucket_origins",
    "install_cors",
]

ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
# What clients read: a redirect's target, the request id, how long to wait after 429/503.
EXPOSED_HEADERS = ("Location", "X-Request-ID", "Retry-After", "WWW-Authenticate")
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
# Without FILESTORE_CORS_ORIGINS, development (and tests) accept any local page.
DEVELOPMENT_ORIGINS = r"^http://(localhost|127\.0\.0\.1)(:\d{1,5})?$"
# The bucket's rule: what a browser may send to presigned URLs and read back.
BUCKET_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
BUCKET_EXPOSED = ["ETag", "Location"]


def _policy(settings: Settings) -> tuple[list[str], str | None]:
    """Explicit origins, or a pattern; production without a setting allows none."""
    if settings.cors.origins is not None:
        return list(settings.cors.origins), None
    if settings.environment == "production":
        return [], None
    return [], DEVELOPMENT_ORIGINS


def install_cors(app: FastAPI, settings: Settings) -> None:
    origins, pattern = _policy(settings)
    if not origins and pattern is None:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_origin_regex=pattern,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=settings.cors.max_age_seconds,
    )


def bucket_origins(settings: Settings) -> list[str]:
    """The bucket rule's origins. Development allows any (``*``): S3 has no patterns, and
    SeaweedFS does not match a wildcard port (``http://localhost:*``). Presigned URLs stay
    signed either way; the rule only decides what a page may read."""
    origins, pattern = _policy(settings)
    if pattern is not None:
        return ["*"]
    return origins


def bucket_cors_rule(origins: list[str], max_age_seconds: int) -> dict[str, Any]:
    """A PutBucketCors ``CORSConfiguration``. It replaces a server's permissive default, so it
    keeps every request header allowed (``Content-Type`` above all) and exposes ``ETag``."""
    return {
        "CORSRules": [
            {
                "AllowedOrigins": origins,
                "AllowedMethods": BUCKET_METHODS,
                "AllowedHeaders": ["*"],
                "ExposeHeaders": BUCKET_EXPOSED,
                "MaxAgeSeconds": max_age_seconds,
            }
        ]
    }


async def apply_bucket_cors(settings: Settings, wait_seconds: float = 30.0) -> None:
    """Put the bucket rule on the configured bucket (``make run``: SeaweedFS, whose bucket
    appears a moment after its S3 port answers, hence the wait)."""
    origins = bucket_origins(settings)
    if not origins:
        return
    rule = bucket_cors_rule(origins, settings.cors.max_age_seconds)
    deadline = time.monotonic() + wait_seconds
    async with open_storage(settings) as storage:
        while True:
            try:
                await storage.put_bucket_cors(rule)
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code != "NoSuchBucket" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)
