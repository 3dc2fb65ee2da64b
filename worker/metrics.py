"""The worker's metrics: every job run timed and counted, and an optional port to scrape.

With ``FILESTORE_METRICS_DIR`` shared with the API, the API's ``/metrics`` already shows the
worker's values; ``FILESTORE_WORKER_METRICS_PORT`` serves them from the worker itself (where
no directory can be shared, e.g. one container per process), under the same access rule.
"""

import contextlib
import functools
import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ParamSpec, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from arq import Retry
from prometheus_client import make_wsgi_app

from infra import metrics
from infra.config import Settings

__all__ = ["instrumented", "start"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def instrumented(job: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Count and time each run of ``job`` (named by its function): a ``Retry`` is a retry,
    any other exception (a timeout's cancellation too) a failure."""
    name = job.__name__

    @functools.wraps(job)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            result = await job(*args, **kwargs)
        except Retry:
            metrics.job_finished(name, "retry", time.perf_counter() - started)
            raise
        except BaseException:
            metrics.job_finished(name, "failure", time.perf_counter() - started)
            raise
        metrics.job_finished(name, "success", time.perf_counter() - started)
        return result

    return run


class _QuietHandler(WSGIRequestHandler):
    """wsgiref writes a plain-text line per request to stderr; every line we write is JSON."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def _guarded(app: WSGIApplication, token: str) -> WSGIApplication:
    expected = f"Bearer {token}".encode()

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(given, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")],
            )
            return [b'{"error":"not_authenticated","detail":"Missing or wrong metrics token."}']
        return app(environ, start_response)

    return guarded


def start(settings: Settings, stack: contextlib.AsyncExitStack) -> None:
    """Record metrics in this worker and serve them when a port is set; ``stack`` stops it."""
    metrics.configure(settings)
    port = settings.worker.metrics_port
    if port is None or settings.observability.access == "off":
        return
    app = make_wsgi_app(metrics.exposition_registry())
    if settings.observability.access == "token" and settings.observability.token is not None:
        app = _guarded(app, settings.observability.token.get_secret_value())
    server: WSGIServer = make_server(
        settings.worker.metrics_host, port, app, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    log.info("worker metrics served", extra={"host": settings.worker.metrics_host, "port": port})
