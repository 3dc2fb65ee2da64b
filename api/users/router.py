from typing import Any

from fastapi import APIRouter, Request, status

from api.body import read_json, validate
from api.deps import CurrentUser, DatabaseDep, QueueDep, SettingsDep
from domain.errors import (
    InvalidCredentials,
    LoginTaken,
    MalformedJson,
    PayloadTooLarge,
    TooManyAttempts,
    Unauthorized,
    ValidationFailed,
    responses,
)
from domain.text import RULE, find_unclean_text
from domain.users import service
from domain.users.schemas import Credentials, LoginAttempt, TokenOut, UserOut
from infra.ratelimit import AuthThrottle

router = APIRouter(prefix="/user", tags=["users"])

# Both bodies are read by hand (``read_json``: size, depth and text limits), so they are
# documented here rather than inferred from a parameter.
_REGISTER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Credentials.model_json_schema()}},
    }
}

_AUTH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginAttempt.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(LoginTaken, MalformedJson, PayloadTooLarge, ValidationFailed),
    openapi_extra=_REGISTER_BODY,
)
async def register(request: Request, database: DatabaseDep, settings: SettingsDep) -> UserOut:
    """Create an account. Logins are unique regardless of case."""
    credentials = await read_json(request, Credentials, settings.max_request_body_bytes)
    user = await database.transaction(lambda session: service.register(session, credentials))
    return UserOut.model_validate(user)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _read_attempt(request: Request, limit: int) -> LoginAttempt:
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        form = await request.form()
        if "username" not in form and any(key.lstrip().startswith("{") for key in form):
            raise ValidationFailed(
                "The body is JSON but its Content-Type says a form: send it with "
                "'Content-Type: application/json', or send the form fields username and password."
            )
        fields = {name: str(form.get(name, "")) for name in ("username", "password")}
        where = find_unclean_text(fields)
        if where is not None:
            raise ValidationFailed(f"{where}: {RULE}")
        return validate(LoginAttempt, {"login": fields["username"], "password": fields["password"]})
    return await read_json(request, LoginAttempt, limit)


@router.post(
    "/auth",
    responses=responses(
        InvalidCredentials, TooManyAttempts, MalformedJson, PayloadTooLarge, ValidationFailed
    ),
    openapi_extra=_AUTH_BODY,
)
async def auth(
    request: Request, database: DatabaseDep, settings: SettingsDep, redis: QueueDep
) -> TokenOut:
    """Exchange a login and password for a bearer token (JSON, or the OAuth2 password form)."""
    attempt = await _read_attempt(request, settings.max_request_body_bytes)
    address = request.client.host if request.client else "unknown"
    throttle = AuthThrottle(redis, settings)
    async with database.reading() as session:  # counted attempts must not run twice
        return await service.authenticate(session, throttle, settings, attempt, address)


@router.get("/me", responses=responses(Unauthorized))
async def me(user: CurrentUser) -> UserOut:
    """The account the bearer token belongs to."""
    return UserOut.model_validate(user)
