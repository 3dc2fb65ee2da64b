"""``Annotated`` dependency aliases that keep routes short and typed."""

import uuid
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from domain.errors import Unauthorized
from domain.models import User
from domain.shares.tally import DownloadTally
from domain.uploads.slots import UploadSlots
from domain.users.security import TokenReader
from infra.cache import Cache
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import Storage

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/user/auth", auto_error=False)

# The getters are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_redis(request: Request) -> ArqRedis:
    redis: ArqRedis = request.app.state.redis
    return redis


async def get_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_upload_slots(request: Request) -> UploadSlots:
    slots: UploadSlots = request.app.state.upload_slots
    return slots


async def get_download_tally(request: Request) -> DownloadTally:
    tally: DownloadTally = request.app.state.download_tally
    return tally


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
QueueDep = Annotated[ArqRedis, Depends(get_redis)]
CacheDep = Annotated[Cache, Depends(get_cache)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
DownloadTallyDep = Annotated[DownloadTally, Depends(get_download_tally)]


async def current_user_id(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> uuid.UUID:
    """The id of a valid token's user, without loading the user.

    For routes whose own statement finds out whether the user exists (and answers 401 if not):
    a separate load would cost a round trip for nothing.
    """
    tokens: TokenReader = request.app.state.tokens
    user_id = tokens.read(token) if token else None
    if user_id is None:
        raise Unauthorized()
    return user_id


CurrentUserId = Annotated[uuid.UUID, Depends(current_user_id)]


async def current_user(user_id: CurrentUserId, database: DatabaseDep) -> User:
    """The token's user, loaded in a short session of its own.

    Not the request session: a streaming upload must not hold a pooled connection while the
    bytes flow. The row also carries ``generation``, which keys the user's cache entries.
    """
    async with database.reading() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized()
    return user


CurrentUser = Annotated[User, Depends(current_user)]
