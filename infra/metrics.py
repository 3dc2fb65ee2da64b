"""Prometheus metrics of the API and the worker: every metric, and one call per event.

The places where state changes call one function here (``metrics.upload_issued(...)``), so
the counting rules live in this module alone. A process records only once it called
`configure` (the API app and the arq worker do); anywhere else the calls do nothing.

Counts that belong to a database change (an upload issued, confirmed, rejected) are made when
its transaction commits: a transaction retried after a deadlock, or rolled back, counts once
or not at all. The others are counted after the fact (reconcile's counts after its commit).

Several processes: with ``FILESTORE_METRICS_DIR`` set, every process writes its values to
files in that directory (prometheus-client's multiprocess mode) and ``/metrics`` sums them,
so one scrape of any API process shows the whole machine's API and workers. The directory must
be empty when the processes start (``make run`` makes a fresh one and removes it).

Labels never carry user data: routes are templates, reasons are fixed classes.
"""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.registry import REGISTRY
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from domain.errors import AppError, EmptyFile, PayloadTooLarge, QuotaExceeded, RequestTimeout
from infra.config import Settings
from infra.storage.adapter import LimitExceeded

__all__ = [
    "FailReason",
    "RejectReason",
    "bucket_swept",
    "configure",
    "count_bytes",
    "exposition_registry",
    "http_request",
    "job_failed",
    "job_finished",
    "outbox_drained",
    "proxied_upload_failed",
    "upload_aborted",
    "upload_confirmed",
    "upload_issued",
    "upload_rejected",
    "uploads_expired",
    "uploads_failed",
]

# prometheus-client's own variable: its value files go there (it reads it when one is opened).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# OpenTelemetry's HTTP server duration buckets, 5 ms to 10 s.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Object landed to confirmed: tens of ms through the notification, up to a reconcile interval
# (60 s by default) plus its run when the notification was lost.
CONFIRMATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

RejectReason = Literal[
    "empty", "size", "declared_size", "checksum", "quota", "file_deleted", "late"
]
FailReason = Literal[
    "too_large", "empty", "bad_request", "interrupted", "timeout", "error", "lease_expired"
]
JobOutcome = Literal["success", "failure", "retry"]


class _Metrics:
    """Every metric this service records, made once per process by `configure`."""

    def __init__(self) -> None:
        self.http_duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests, by method, route template and status.",
            ["http_request_method", "http_route", "http_response_status_code"],
            buckets=HTTP_BUCKETS,
        )
        self.issued = Counter(
            "filestore_uploads_issued", "Uploads opened (a signed intent or a stream).", ["kind"]
        )
        self.confirmed = Counter(
            "filestore_uploads_confirmed", "Uploads whose object became content.", ["kind"]
        )
        self.rejected = Counter(
            "filestore_uploads_rejected",
            "Uploads refused at confirmation, by reason class.",
            ["reason"],
        )
        self.expired = Counter(
            "filestore_uploads_expired", "Direct uploads closed unfinished past their expiry."
        )
        self.failed = Counter(
            "filestore_uploads_failed", "Proxied uploads that ended failed, by reason.", ["reason"]
        )
        self.aborted = Counter(
            "filestore_uploads_aborted", "Direct uploads aborted by their owner."
        )
        self.confirmation = Histogram(
            "filestore_upload_confirmation_seconds",
            "Direct uploads: object landed in storage (the notification's event time, else its"
            " receipt, else the object's Last-Modified) to confirmed.",
            buckets=CONFIRMATION_BUCKETS,
        )
        self.proxied_bytes = Counter(
            "filestore_proxied_bytes",
            "File bytes streamed through the API: in (proxied uploads), out (proxied downloads).",
            ["direction"],
        )
        self.job_runs = Counter("filestore_job_runs", "Worker job executions.", ["job"])
        self.job_failures = Counter(
            "filestore_job_failures", "Job executions that ended in a permanent error.", ["job"]
        )
        self.job_retries = Counter(
            "filestore_job_retries", "Job executions that failed transiently and retry.", ["job"]
        )
        self.job_duration = Histogram(
            "filestore_job_duration_seconds", "Job execution time.", ["job"], buckets=JOB_BUCKETS
        )
        self.outbox_deleted = Counter(
            "filestore_outbox_objects_deleted", "Objects the outbox drain deleted from storage."
        )
        self.purged = Counter(
            "filestore_purged",
            "The purge: trash entries deleted for good, versions beyond the limit dropped, dead "
            "share links deleted.",
            ["what"],
        )
        self.swept = Counter(
            "filestore_sweep_objects",
            "Bucket sweep: objects listed and deleted, multipart uploads aborted.",
            ["action"],
        )


_metrics: _Metrics | None = None
_multiprocess_dir: str | None = None


def configure(settings: Settings) -> None:
    """Start recording in this process (once; later calls keep the first configuration)."""
    global _metrics, _multiprocess_dir  # noqa: PLW0603 - one set of metrics per process
    if _metrics is not None:
        return
    directory = settings.observability.dir
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
        os.environ[MULTIPROC_ENV] = directory
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    else:
        values.ValueClass = values.MutexValue
    _multiprocess_dir = directory
    event.listen(Session, "after_commit", _run_pending)
    event.listen(Session, "after_transaction_end", _drop_pending)
    _metrics = _Metrics()


def exposition_registry() -> CollectorRegistry:
    """What a scrape shows: this process's metrics, or every process's, summed."""
    if _multiprocess_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=_multiprocess_dir)  # type: ignore[no-untyped-call]
    return registry


# -- counted when the transaction commits ------------------------------------------------------

_PENDING = "filestore.metrics.pending"


def _on_commit(session: AsyncSession, record: Callable[[], None]) -> None:
    if _metrics is not None:
        session.sync_session.info.setdefault(_PENDING, []).append(record)


def _run_pending(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release is no commit
        for record in session.info.pop(_PENDING, ()):
            record()


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back (a commit ran them already)
        session.info.pop(_PENDING, None)


def upload_issued(session: AsyncSession, kind: str) -> None:
    """An upload opened (``kind``: ``direct``, multipart ones too, or ``proxied``)."""

    def record() -> None:
        if _metrics is not None:
            _metrics.issued.labels(kind).inc()

    _on_commit(session, record)


def upload_confirmed(session: AsyncSession, kind: str, landed_at: datetime | None) -> None:
    """``landed_at``: when the object landed in storage (direct uploads; None: not measured)."""
    confirmed_at = time.time()

    def record() -> None:
        if _metrics is None:
            return
        _metrics.confirmed.labels(kind).inc()
        if landed_at is not None and kind != "proxied":
            _metrics.confirmation.observe(max(confirmed_at - landed_at.timestamp(), 0.0))

    _on_commit(session, record)


def upload_rejected(session: AsyncSession, reason: RejectReason) -> None:
    def record() -> None:
        if _metrics is not None:
            _metrics.rejected.labels(reason).inc()

    _on_commit(session, record)


def upload_aborted(session: AsyncSession) -> None:
    def record() -> None:
        if _metrics is not None:
            _metrics.aborted.inc()

    _on_commit(session, record)


# -- counted after the fact ------------------------------------------------------------------


def uploads_expired(count: int) -> None:
    if _metrics is not None and count:
        _metrics.expired.inc(count)


def uploads_failed(reason: FailReason, count: int = 1) -> None:
    if _metrics is not None and count:
        _metrics.failed.labels(reason).inc(count)


def proxied_upload_failed(error: BaseException) -> None:
    """A proxied upload ended failed because of ``error``: counted by its class."""
    uploads_failed(_fail_reason(error))


def _fail_reason(error: BaseException) -> FailReason:
    if isinstance(error, LimitExceeded | PayloadTooLarge | QuotaExceeded):
        return "too_large"
    if isinstance(error, EmptyFile):
        return "empty"
    if isinstance(error, asyncio.CancelledError):
        return "interrupted"
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, AppError):
        return "interrupted" if error.code == "client_disconnected" else "bad_request"
    return "error"


def outbox_drained(deleted: int) -> None:
    if _metrics is not None and deleted:
        _metrics.outbox_deleted.inc(deleted)


def purged(counts: dict[str, int]) -> None:
    """The purge's counts: ``trash_entries``, ``versions`` and ``shares``."""
    if _metrics is not None:
        for what in ("trash_entries", "versions", "shares"):
            _metrics.purged.labels(what).inc(counts.get(what, 0))


def bucket_swept(counts: dict[str, int]) -> None:
    """The sweep's counts: ``objects_listed``, ``objects_deleted``, ``multipart_aborted``."""
    if _metrics is not None:
        for action in ("objects_listed", "objects_deleted", "multipart_aborted"):
            _metrics.swept.labels(action.replace("objects_", "")).inc(counts.get(action, 0))


async def count_bytes(
    chunks: AsyncIterator[bytes], direction: Literal["in", "out"]
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, counting their bytes as they go."""
    counter = _metrics.proxied_bytes.labels(direction) if _metrics is not None else None
    async for chunk in chunks:
        if counter is not None:
            counter.inc(len(chunk))
        yield chunk


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    if _metrics is not None:
        method = method if method in HTTP_METHODS else "_OTHER"
        _metrics.http_duration.labels(method, route, str(status)).observe(seconds)


def job_finished(job: str, outcome: JobOutcome, seconds: float) -> None:
    if _metrics is None:
        return
    _metrics.job_runs.labels(job).inc()
    _metrics.job_duration.labels(job).observe(seconds)
    if outcome == "failure":
        _metrics.job_failures.labels(job).inc()
    elif outcome == "retry":
        _metrics.job_retries.labels(job).inc()


def job_failed(job: str) -> None:
    """A job that finished by recording its own permanent failure (it raised nothing)."""
    if _metrics is not None:
        _metrics.job_failures.labels(job).inc()
