"""Registration and authentication."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidCredentials, LoginTaken
from domain.models import User
from domain.users.repository import UserRepository
from domain.users.schemas import Credentials, LoginAttempt, TokenOut
from domain.users.security import create_access_token, hash_password, verify_password
from infra.config import Settings
from infra.ratelimit import AuthThrottle

log = logging.getLogger(__name__)


async def register(session: AsyncSession, credentials: Credentials) -> User:
    # argon2 costs tens of milliseconds of CPU: keep it off the event loop.
    password_hash = await asyncio.to_thread(hash_password, credentials.password)
    user = await UserRepository(session).create(credentials.login, password_hash)
    if user is None:
        raise LoginTaken()
    log.info("user registered", extra={"user_id": str(user.id), "login": user.login})
    return user


async def authenticate(
    session: AsyncSession,
    throttle: AuthThrottle,
    settings: Settings,
    credentials: LoginAttempt,
    address: str,
) -> TokenOut:
    # Counted before the password is checked: concurrent guesses cannot outrun the limit.
    await throttle.attempt(credentials.login, address)
    user = await UserRepository(session).get_by_login(credentials.login)
    stored_hash = user.password_hash if user else None
    valid = await asyncio.to_thread(verify_password, credentials.password, stored_hash)
    if user is None or not valid:
        log.info("authentication failed", extra={"login": credentials.login, "address": address})
        raise InvalidCredentials()
    await throttle.succeeded(credentials.login, address)
    log.info("user authenticated", extra={"user_id": str(user.id)})
    return TokenOut(
        access_token=create_access_token(user.id, settings),
        expires_in=settings.auth.jwt_ttl_seconds,
    )
