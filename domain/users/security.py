"""Password hashing (argon2id) and access tokens (JWT, HS256 pinned)."""

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from infra.config import Settings

ALGORITHM = "HS256"

_hasher = PasswordHash((Argon2Hasher(),))
# Verifying against this keeps a wrong login as slow as a wrong password (no user enumeration).
_DUMMY_HASH = _hasher.hash("filestore-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    try:
        return _hasher.verify(password, password_hash)
    except ValueError:
        return False


def create_access_token(user_id: uuid.UUID, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(seconds=settings.auth.jwt_ttl_seconds),
    }
    return jwt.encode(claims, settings.auth.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


class TokenReader:
    """Verifies access tokens, remembering the ones already verified until they expire.

    A client sends the same token with every request; PyJWT's full decode costs about a quarter
    of a millisecond. The key is the whole token (signature included) and the expiry is checked
    on every use, so a remembered token is exactly as valid as a freshly decoded one.
    """

    def __init__(
        self, settings: Settings, capacity: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = settings.auth.jwt_secret.get_secret_value()
        self._clock = clock
        self._capacity = capacity
        self._verified: OrderedDict[str, tuple[uuid.UUID, float]] = OrderedDict()

    def read(self, token: str) -> uuid.UUID | None:
        """The user id of a valid token; ``None`` for anything tampered, expired or malformed."""
        known = self._verified.get(token)
        if known is not None:
            user_id, expires = known
            if self._clock() < expires:
                self._verified.move_to_end(token)
                return user_id
            del self._verified[token]
            return None
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
            user_id = uuid.UUID(str(claims["sub"]))
            expires = float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        self._verified[token] = (user_id, expires)
        if len(self._verified) > self._capacity:
            self._verified.popitem(last=False)
        return user_id
