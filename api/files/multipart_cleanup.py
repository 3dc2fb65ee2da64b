"""Aborting the storage-side multipart uploads of intents that reconcile closed."""

import logging
from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from api.storage import Storage

log = logging.getLogger(__name__)


async def abort_expired_multipart(storage: Storage, uploads: Mapping[str, str]) -> int:
    """Abort each ``object_key → multipart upload id``; returns how many were aborted.

    Their rows are closed already, so one that fails here is unclaimed: the bucket sweep
    aborts it after its grace period.
    """
    aborted = 0
    for object_key, upload_id in uploads.items():
        try:
            await storage.abort_multipart_upload(object_key, upload_id)
        except (ClientError, BotoCoreError, OSError) as error:
            log.warning(
                "expired multipart upload not aborted; the sweep will",
                extra={"object_key": object_key, "error": repr(error)},
            )
            continue
        aborted += 1
        log.info(
            "expired multipart upload aborted",
            extra={"object_key": object_key, "multipart_upload_id": upload_id},
        )
    return aborted
