"""CPU cost of signing: microseconds of process time per presigned URL, for the signer the API
uses (infra/storage/signer.py) and, as the baseline, botocore's presigner with the same inputs."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from infra.config import Settings
from infra.storage.adapter import open_storage

SHA256_B64 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
CONTENT_TYPE = "application/octet-stream"


def _per_call_us(sign: Callable[[], object], count: int) -> float:
    for _ in range(min(count, 50)):
        sign()
    started = time.process_time()
    for _ in range(count):
        sign()
    return round((time.process_time() - started) / count * 1e6, 1)


async def _botocore_us(storage: Any, bucket: str, key: str, count: int) -> dict[str, float]:
    client = storage._client
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "get": ("get_object", {"ResponseContentDisposition": 'attachment; filename="a.bin"'}),
        "put": ("put_object", {"ContentType": CONTENT_TYPE}),
        "put_with_size_and_sha256": (
            "put_object",
            {"ContentType": CONTENT_TYPE, "ContentLength": 1024, "ChecksumSHA256": SHA256_B64},
        ),
    }
    result = {}
    for name, (operation, extra) in calls.items():
        params = {"Bucket": bucket, "Key": key, **extra}
        started = time.process_time()
        for _ in range(count):
            await client.generate_presigned_url(operation, Params=params, ExpiresIn=900)
        result[name] = round((time.process_time() - started) / count * 1e6, 1)
    started = time.process_time()
    for _ in range(count):
        await client.generate_presigned_post(
            bucket,
            key,
            Fields={"Content-Type": CONTENT_TYPE},
            Conditions=[{"Content-Type": CONTENT_TYPE}, ["content-length-range", 1, 1024]],
            ExpiresIn=900,
        )
    result["post"] = round((time.process_time() - started) / count * 1e6, 1)
    return result


async def _measure(settings: Settings, count: int) -> dict[str, Any]:
    async with open_storage(settings) as storage:
        key = f"{settings.storage.key_prefix}/bench/object"
        ours = {
            "get": _per_call_us(
                lambda: storage.presign_get(key, 'attachment; filename="a.bin"', None), count
            ),
            "put": _per_call_us(lambda: storage.presign_put(key, CONTENT_TYPE, None, None), count),
            "put_with_size_and_sha256": _per_call_us(
                lambda: storage.presign_put(key, CONTENT_TYPE, 1024, SHA256_B64), count
            ),
            "post": _per_call_us(lambda: storage.presign_post(key, CONTENT_TYPE, 1024), count),
        }
        botocore = await _botocore_us(storage, storage.bucket, key, count)
    return {
        "urls_each": count,
        "api_signer_us": ours,
        "botocore_us": botocore,
        "speedup": {name: round(botocore[name] / ours[name], 1) for name in ours},
    }


def measure(settings: Settings, count: int) -> dict[str, Any]:
    return asyncio.run(_measure(settings, count))
