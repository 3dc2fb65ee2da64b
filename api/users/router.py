from typing import Any, TypeVar

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

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
from domain.users.schemas import AccountOut, Credentials, LoginAttempt, TokenOut, UserOut
from infra.ratelimit import AuthThrottle

router = APIRouter(prefix="/user", tags=["users"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
Body = TypeVar("Body", bound=BaseModel)


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """Both bodies are read by hand (``read_json``: size, depth and text limits; or a form), so
    they are documented here rather than inferred from a parameter."""
    form = {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": {"type": "string", "description": "The login (or a field named login)."},
            "password": {"type": "string", "format": "password"},
            "grant_type": {"type": "string"},
        },
    }
    content = {"application/json": {"schema": model.model_json_schema()}}
    content.update({media: {"schema": form} for media in FORM_TYPES[:1]})
    return {"requestBody": {"required": True, "content": content}}


async def _read_credentials(request: Request, model: type[Body], limit: int) -> Body:
    """A JSON body, or a form with ``username`` (OAuth2's name; ``login`` also) and ``password``."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return await read_json(request, model, limit)
    form = await request.form()
    if not {"username", "login"} & set(form) and any(k.lstrip().startswith("{") for k in form):
        raise ValidationFailed(
            "The body is JSON but its Content-Type says a form: send it with "
            "'Content-Type: application/json', or send the form fields username and password."
        )
    fields = {
        "login": str(form.get("username", form.get("login", ""))),
        "password": str(form.get("password", "")),
    }
    where = find_unclean_text(fields)
    if where is not None:
        raise ValidationFailed(f"{where}: {RULE}")
    return validate(model, fields)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(LoginTaken, MalformedJson, PayloadTooLarge, ValidationFailed),
    openapi_extra=_body(Credentials),
)
async def register(request: Request, database: DatabaseDep, settings: SettingsDep) -> UserOut:
    """Create an account (JSON, or a form like ``auth``'s). Logins are unique regardless of
    case."""
    credentials = await _read_credentials(
        request, Credentials, settings.requests.max_request_body_bytes
    )
    user = await database.transaction(lambda session: service.register(session, credentials))
    return UserOut.model_validate(user)


@router.post(
    "/auth",
    responses=responses(
        InvalidCredentials, TooManyAttempts, MalformedJson, PayloadTooLarge, ValidationFailed
    ),
    openapi_extra=_body(LoginAttempt),
)
async def auth(
    request: Request, database: DatabaseDep, settings: SettingsDep, redis: QueueDep
) -> TokenOut:
    """Exchange a login and password for a bearer token (JSON, or the OAuth2 password form)."""
    attempt = await _read_credentials(
        request, LoginAttempt, settings.requests.max_request_body_bytes
    )
    address = request.client.host if request.client else "unknown"
    throttle = AuthThrottle(redis, settings)
    async with database.reading() as session:  # counted attempts must not run twice
        return await service.authenticate(session, throttle, settings, attempt, address)


@router.get("/me", responses=responses(Unauthorized))
async def me(user: CurrentUser, settings: SettingsDep) -> AccountOut:
    """The account the bearer token belongs to, and what it keeps against its quota."""
    return AccountOut.of(user, settings.uploads.user_quota_bytes)
