"""Structured JSON log lines, each carrying the request id of the request that caused it (set
by ``api.request_context``; none in the worker)."""

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# uvicorn adds ``color_message``, the message again with terminal colour codes.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}
_default_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamp the request id when the record is made (formatting may happen later, elsewhere)."""
    record = _default_factory(*args, **kwargs)
    request_id = request_id_var.get()
    if request_id:
        record.request_id = request_id
    return record


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    logging.setLogRecordFactory(_record_with_request_id)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware logs each request with its id; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").disabled = True


def redact_url(url: str) -> str:
    """A presigned URL without its query string (which carries the signature)."""
    return url.split("?", 1)[0] + ("?…" if "?" in url else "")
