import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Login = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[\w.@+-]+$"),
]
Password = Annotated[str, Field(min_length=8, max_length=256)]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: Login
    password: Password


class LoginAttempt(BaseModel):
    """Looser than ``Credentials``: a wrong password of any length is a 401, not a 422."""

    model_config = ConfigDict(extra="forbid")

    login: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    login: str
    created_at: datetime


class Usage(BaseModel):
    """Every byte the account keeps, by where it is; the quota holds their sum."""

    files: int = Field(description="Current files.")
    versions: int = Field(description="Earlier contents kept by overwrites.")
    trash: int = Field(description="Deleted files and folders not yet purged.")
    quota: int


class AccountOut(UserOut):
    usage: Usage

    @classmethod
    def of(cls, user: Any, quota: int) -> "AccountOut":
        kept = user.used_bytes - user.version_bytes - user.trash_bytes
        usage = Usage(files=kept, versions=user.version_bytes, trash=user.trash_bytes, quota=quota)
        return cls(id=user.id, login=user.login, created_at=user.created_at, usage=usage)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
