"""Which failures are transient: one classifier for the API (retry or 503) and the worker (retry).

A failure is transient when trying again later can succeed without anything changing on our
side: a backing service down or restarting, a dropped connection, a deadlock or serialization
failure (PostgreSQL aborted one transaction so another could go on), storage's 5xx or throttle,
storage without our bucket. Everything else (a constraint violation, any other 4xx from storage,
a bug) is permanent.
"""

import enum

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class Backend(enum.StrEnum):
    """The service a transient failure came from; it picks the 503's error code."""

    database = "database"
    storage = "storage"
    redis = "redis"
    network = "network"


# SQLSTATEs (and classes) of failures that a new attempt can get past.
RETRYABLE_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "40003",  # statement_completion_unknown
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
    }
)
RETRYABLE_SQLSTATE_CLASSES = ("08", "53")  # connection exception, insufficient resources
# A missing bucket (deleted, not created yet, a wrong FILESTORE_S3_BUCKET) is an outage of
# storage as far as a request can tell: nothing in it can fix that, and the same request works
# once the bucket is there (``/readyz`` fails meanwhile). Not a 500, and not a job's last try.
NO_SUCH_BUCKET = "NoSuchBucket"
STORAGE_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalError",
        NO_SUCH_BUCKET,
    }
)


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a driver error, if any."""
    code = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(
        error, "sqlstate", None
    )
    return code if isinstance(code, str) else None


def storage_error(error: BaseException) -> ClientError | None:
    """The storage refusal behind ``error`` (itself, its cause, or the one of a group)."""
    if isinstance(error, ClientError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = storage_error(inner)
            if found is not None:
                return found
    if error.__cause__ is not None and error.__cause__ is not error:
        return storage_error(error.__cause__)
    return None


def storage_fields(error: BaseException) -> dict[str, str]:
    """What a log line says about a storage refusal: S3's code, and the bucket storage named
    when it has none of that name (so the line says which one is missing)."""
    found = storage_error(error)
    if found is None:
        return {}
    details: dict[str, object] = dict(found.response.get("Error", {}))  # BucketName is untyped
    fields = {"s3_code": str(details.get("Code", ""))}
    if fields["s3_code"] == NO_SUCH_BUCKET and details.get("BucketName"):
        fields["bucket"] = str(details["BucketName"])
    return fields


def _storage_transient(error: ClientError) -> bool:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    code = str(error.response.get("Error", {}).get("Code", ""))
    return status >= 500 or code in STORAGE_RETRYABLE_CODES


def classify(error: BaseException) -> Backend | None:
    """The backend whose transient failure ``error`` is, or ``None`` when it is permanent.

    An exception group (task groups in the ASGI stack raise them) is transient when every
    exception in it is; an error raised *because of* a transient one (its ``__cause__``, as
    when a session refuses work after its connection died) is transient too."""
    if isinstance(error, BaseExceptionGroup):
        found = {classify(inner) for inner in error.exceptions}
        return found.pop() if len(found) == 1 else None
    backend = _classify_one(error)
    if backend is None and error.__cause__ is not None and error.__cause__ is not error:
        return classify(error.__cause__)
    return backend


def _classify_one(error: BaseException) -> Backend | None:
    if isinstance(error, ClientError):
        return Backend.storage if _storage_transient(error) else None
    if isinstance(error, BotoCoreError):
        return Backend.storage
    if isinstance(error, (DBAPIError, asyncpg.PostgresError)):
        code = sqlstate(error)
        if code is not None:
            retryable = code in RETRYABLE_SQLSTATES or code.startswith(RETRYABLE_SQLSTATE_CLASSES)
            return Backend.database if retryable else None
    if isinstance(error, DBAPIError):
        connection_lost = isinstance(error, (OperationalError, InterfaceError))
        return Backend.database if connection_lost or error.connection_invalidated else None
    if isinstance(error, asyncpg.ConnectionDoesNotExistError):
        return Backend.database
    if isinstance(error, PoolTimeout):
        return Backend.database
    if isinstance(error, RedisError):
        return Backend.redis
    if isinstance(error, (OSError, TimeoutError)):
        return Backend.network
    return None


def is_transient(error: BaseException) -> bool:
    return classify(error) is not None
