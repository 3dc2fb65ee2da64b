"""A declared SHA-256 checked by reading the object, where storage reported none.

A presigned PUT signs ``x-amz-checksum-sha256``, and a storage server that verifies it refuses
other bytes and reports the checksum on HEAD. Some servers ignore the header (moto, older
gateways): the HEAD then carries no checksum, and only the bytes themselves can tell whether
they are the declared ones. They are read in ``stream_chunk_bytes`` chunks, never whole (a
single PUT may be 5 GiB).
"""

import dataclasses
import hashlib
import logging
import time

from domain.models import Upload
from infra.storage.adapter import ObjectInfo, Storage

log = logging.getLogger(__name__)


def needs_reading(upload: Upload, info: ObjectInfo) -> bool:
    """The upload declared a SHA-256 and storage reported none for its object."""
    return upload.sha256 is not None and info.sha256 is None


async def with_computed_sha256(storage: Storage, object_key: str) -> ObjectInfo | None:
    """What a GET of the object reports, with the SHA-256 of the bytes it returned; ``None``
    once the object is gone. The facts all come from that one GET, so a PUT that replaced the
    object since the HEAD cannot pair one version's size with another's digest."""
    started = time.monotonic()
    stream = await storage.open(object_key)
    if stream is None:
        return None
    digest = hashlib.sha256()
    read = 0
    async for chunk in stream.body:
        digest.update(chunk)
        read += len(chunk)
    if read != stream.info.size:  # cut short: a digest of part of it says nothing
        raise ConnectionError(f"read {read} of {stream.info.size} bytes of {object_key}")
    log.info(
        "object checksum computed",
        extra={
            "object_key": object_key,
            "size": read,
            "sha256": digest.hexdigest(),
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return dataclasses.replace(stream.info, sha256=digest.hexdigest())
