import uuid
from datetime import datetime
from typing import Annotated, Literal

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


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
