"""``python -m api.serve``: the API on every core.

uvicorn with ``FILESTORE_API_PROCESSES`` processes (default: the machine's cores) sharing one
socket on ``FILESTORE_RUN_HOST:FILESTORE_RUN_PORT``. Each process has its own engine, pools,
caches and token memo, and logs JSON from its first line. Metrics must add up across them: with
more than one process and no ``FILESTORE_METRICS_DIR``, they get an empty one of their own,
removed when the server stops.
"""

import logging
import os
import shutil
import sys
import tempfile

import uvicorn

from api.http_protocol import HTTP
from infra.config import get_settings
from infra.log_config import LOG_CONFIG_FILE
from infra.logging import configure_logging

log = logging.getLogger("filestore.serve")


def main() -> int:
    settings = get_settings()
    configure_logging(settings.observability.log_level)
    own_metrics_dir = None
    if settings.run.api_processes > 1 and settings.observability.dir is None:
        own_metrics_dir = tempfile.mkdtemp(prefix="filestore-metrics-")
        os.environ["FILESTORE_METRICS_DIR"] = own_metrics_dir  # read by each spawned process
    log.info(
        "api starting",
        extra={
            "host": settings.run.host,
            "port": settings.run.port,
            "processes": settings.run.api_processes,
        },
    )
    try:
        uvicorn.run(
            "api.main:app",
            host=settings.run.host,
            port=settings.run.port,
            workers=settings.run.api_processes,
            http=HTTP,  # httptools, with FILESTORE_MAX_HEADER_BYTES on the request's headers
            log_config=str(LOG_CONFIG_FILE),
            log_level=settings.observability.log_level.lower(),
            access_log=False,  # api.request logs every request, with its id and duration
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
