"""A share's secrets: the token in its link (kept only as a hash) and the proof of an unlock.

The token is 32 random bytes (256 bits, 43 URL-safe characters); the database holds its SHA-256
and lookups go by that hash, so a leaked table names no working link. An unlocked password share
is remembered by a cookie holding the share's id, the cookie's expiry and an HMAC (keyed by the
JWT secret) of both: it proves nothing about another share, it cannot be stretched, and it names
its share without a lookup (so a download can check it in the statement that counts it).
"""

import hashlib
import hmac
import re
import secrets
import time
import uuid

TOKEN_BYTES = 32
# What secrets.token_urlsafe(32) gives: anything else is no token and is not looked up.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
COOKIE = "fs_share_unlock"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes | None:
    """The stored form of ``token``; ``None`` for a string that cannot be one."""
    if not _TOKEN.fullmatch(token):
        return None
    return hashlib.sha256(token.encode("ascii")).digest()


def _mac(secret: str, share_id: uuid.UUID, expires: int) -> str:
    message = b"share-unlock|" + share_id.bytes + b"|" + str(expires).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def unlock_proof(secret: str, share_id: uuid.UUID, seconds: int) -> str:
    """The cookie value that unlocks ``share_id`` for ``seconds``."""
    expires = int(time.time()) + seconds
    return f"{share_id.hex}.{expires}.{_mac(secret, share_id, expires)}"


def unlocked_share(secret: str, value: str | None) -> uuid.UUID | None:
    """The share a cookie value proves unlocked, if it is genuine and unexpired."""
    if not value:
        return None
    id_text, _, rest = value.partition(".")
    expires_text, _, mac = rest.partition(".")
    if len(id_text) != 32 or not expires_text.isdigit() or len(expires_text) > 12:
        return None
    try:
        share_id = uuid.UUID(hex=id_text)
    except ValueError:
        return None
    expires = int(expires_text)
    if expires <= time.time() or not hmac.compare_digest(mac, _mac(secret, share_id, expires)):
        return None
    return share_id


def proves_unlock(secret: str, share_id: uuid.UUID, value: str | None) -> bool:
    return unlocked_share(secret, value) == share_id
