"""Reading a JSON body by hand, for routes that also accept other content types."""

import json
from collections.abc import AsyncIterator
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from api.error_handlers import describe_validation
from domain.errors import ClientDisconnected, MalformedJson, PayloadTooLarge, ValidationFailed
from domain.text import RULE, find_unclean_text, json_text_is_clean, nesting_exceeds
from infra.config import Settings

Model = TypeVar("Model", bound=BaseModel)

# One match per bracket: everything before it (strings included, so a bracket inside a string
# does not count) is consumed by the regex engine, possessively, so nothing backtracks. The
# ``\Z`` alternative lets the last match swallow the tail instead of failing at every offset.


def validate(model: type[Model], data: object) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(describe_validation(error.errors())) from None


def parse_json(body: bytes, max_depth: int) -> object:
    """``body`` decoded as ``json.loads`` would (UTF-8/16/32), no deeper than ``max_depth``."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        raise MalformedJson() from None
    if nesting_exceeds(text, max_depth):
        raise MalformedJson(f"The JSON body is nested more than {max_depth} levels deep.")
    try:
        value: object = json.loads(text)
    except ValueError:
        raise MalformedJson() from None
    where = None if json_text_is_clean(text) else find_unclean_text(value)
    if where is not None:
        raise ValidationFailed(f"{where or 'body'}: {RULE}")
    return value


async def read_json_value(request: Request, limit: int) -> object:
    """The decoded JSON body, read no further than ``limit`` bytes.

    Every JSON body goes through here: too deep a document is a 400 ``malformed_json`` and text
    with NUL or unpaired surrogates a 422 ``validation_error``, wherever it sits.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    settings: Settings = request.app.state.settings
    return parse_json(bytes(body), settings.max_json_depth)


async def read_json(request: Request, model: type[Model], limit: int) -> Model:
    return validate(model, await read_json_value(request, limit))


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body's chunks; a client that goes away mid-body is ``ClientDisconnected``, the
    domain's own error, so nothing below the routes needs to know the framework's."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientDisconnected() from None
