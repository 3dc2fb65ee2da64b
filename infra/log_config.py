"""Every process logs JSON lines from its first line: one logging configuration for all.

``infra/log_config.json`` is given to uvicorn (``--log-config infra/log_config.json``) and, as
``LOG_CONFIG``, to arq (``--custom-log-dict infra.log_config.LOG_CONFIG``); both apply it before
they write anything, where their own defaults would print plain text. The level is INFO until
the app or the worker starts and applies ``FILESTORE_LOG_LEVEL`` (``configure_logging``).
"""

import json
from pathlib import Path
from typing import Any

__all__ = ["LOG_CONFIG", "LOG_CONFIG_FILE"]

LOG_CONFIG_FILE = Path(__file__).with_name("log_config.json")
LOG_CONFIG: dict[str, Any] = json.loads(LOG_CONFIG_FILE.read_text())
