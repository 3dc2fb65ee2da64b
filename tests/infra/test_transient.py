"""One classifier decides what is transient, for the API (503) and the worker (retry)."""

from typing import Any

import asyncpg
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from infra.transient import Backend, classify


class DriverError(Exception):
    """What SQLAlchemy's asyncpg adapter puts in ``orig``: the server's SQLSTATE."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def db(sqlstate: str | None, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("SELECT 1", {}, DriverError(sqlstate))


def s3(status: int, code: str) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")


def caused_by(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


CASES: list[tuple[str, BaseException, Backend | None]] = [
    ("deadlock", db("40P01"), Backend.database),
    ("serialization failure", db("40001"), Backend.database),
    ("admin shutdown", db("57P01"), Backend.database),
    ("cannot connect now", db("57P03"), Backend.database),
    ("connection failure", db("08006"), Backend.database),
    ("too many connections", db("53300"), Backend.database),
    ("unique violation", db("23505", IntegrityError), None),
    ("syntax error", db("42601"), None),
    ("connection lost, no sqlstate", db(None, OperationalError), Backend.database),
    ("interface error, no sqlstate", db(None, InterfaceError), Backend.database),
    ("other driver error, no sqlstate", db(None), None),
    ("raw asyncpg deadlock", asyncpg.DeadlockDetectedError("x"), Backend.database),
    ("raw asyncpg unique violation", asyncpg.UniqueViolationError("x"), None),
    ("asyncpg connection gone", asyncpg.ConnectionDoesNotExistError("x"), Backend.database),
    ("pool exhausted", PoolTimeout("pool"), Backend.database),
    ("storage 500", s3(500, "InternalError"), Backend.storage),
    ("storage 503 slow down", s3(503, "SlowDown"), Backend.storage),
    ("storage 404", s3(404, "NoSuchKey"), None),
    ("storage 403", s3(403, "AccessDenied"), None),
    ("storage 400 request timeout", s3(400, "RequestTimeout"), Backend.storage),
    ("storage unreachable", EndpointConnectionError(endpoint_url="http://x"), Backend.storage),
    ("storage read timeout", ReadTimeoutError(endpoint_url="http://x"), Backend.storage),
    ("redis down", RedisConnectionError("refused"), Backend.redis),
    ("redis timeout", RedisTimeout("slow"), Backend.redis),
    ("connection refused", ConnectionRefusedError(), Backend.network),
    ("timeout", TimeoutError(), Backend.network),
    ("a bug", ValueError("bug"), None),
    ("a group of outages", ExceptionGroup("g", [db("57P01"), db("08006")]), Backend.database),
    ("a group with a bug in it", ExceptionGroup("g", [db("57P01"), ValueError()]), None),
    ("raised because of an outage", caused_by(RuntimeError("gone"), db("57P01")), Backend.database),
    ("raised because of a bug", caused_by(RuntimeError("gone"), KeyError("k")), None),
    ("another bug", KeyError("k"), None),
]


@pytest.mark.parametrize(("error", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(error: BaseException, expected: Backend | None) -> None:
    assert classify(error) == expected
