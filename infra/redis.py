"""One Redis pool for cache, rate limits and the arq queue; it never connects at construction."""

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from infra.config import Settings


def create_redis(settings: Settings) -> ArqRedis:
    pool = ConnectionPool.from_url(
        settings.redis.url,
        socket_timeout=settings.redis.timeout_seconds,
        socket_connect_timeout=settings.redis.timeout_seconds,
        max_connections=256,
    )
    redis = ArqRedis(connection_pool=pool)
    redis.auto_close_connection_pool = True  # closing the client closes its pool
    return redis
