"""CPU cost of signing: microseconds of process time per presigned URL, for the API's signer."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from api.config import Settings
from api.storage import open_storage

SHA256_B64 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="


async def _measure(settings: Settings, count: int) -> dict[str, Any]:
    async with open_storage(settings) as storage:
        key = f"{settings.s3_key_prefix}/bench/object"
        kinds: dict[str, Callable[[], Awaitable[object]]] = {
            "get": lambda: storage.presign_get(key, 'attachment; filename="a.bin"', None),
            "put": lambda: storage.presign_put(key, "application/octet-stream", None, None),
            "put_with_size_and_sha256": lambda: storage.presign_put(
                key, "application/octet-stream", 1024, SHA256_B64
            ),
            "post": lambda: storage.presign_post(key, "application/octet-stream", 1024),
        }
        result: dict[str, Any] = {"urls_each": count}
        for name, sign in kinds.items():
            for _ in range(50):
                await sign()
            started = time.process_time()
            for _ in range(count):
                await sign()
            result[f"{name}_us"] = round((time.process_time() - started) / count * 1e6, 1)
    return result


def measure(settings: Settings, count: int) -> dict[str, Any]:
    return asyncio.run(_measure(settings, count))
