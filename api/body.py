"""Reading JSON bodies ourselves (bounded, depth-checked, clean text), as typed dependencies."""

import json
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from api.error_handlers import describe_validation
from domain.errors import ClientDisconnected, MalformedJson, PayloadTooLarge, ValidationFailed
from domain.text import RULE, find_unclean_text, json_text_is_clean, nesting_exceeds
from infra.config import Settings

Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"

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


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, read no further than ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    return bytes(body)


async def read_json_value(request: Request, limit: int) -> object:
    """The decoded JSON body, read no further than ``limit`` bytes.

    Every JSON body goes through here: too deep a document is a 400 ``malformed_json`` and text
    with NUL or unpaired surrogates a 422 ``validation_error``, wherever it sits.
    """
    settings: Settings = request.app.state.settings
    return parse_json(await read_body(request, limit), settings.requests.max_json_depth)


async def read_json(request: Request, model: type[Model], limit: int) -> Model:
    return validate(model, await read_json_value(request, limit))


class JsonBody(Generic[Model]):
    """A route's JSON body as ``model``: a dependency that reads it through ``read_json_value``
    and declares it in the OpenAPI document (``api.openapi``), so no route writes either.

    ``optional``: an empty body is ``None``. ``others``: the media types the route also reads
    itself (each with its OpenAPI schema); then only a JSON request is read here, and any other
    gives ``None`` for the route to read or refuse.
    """

    def __init__(
        self,
        model: type[Model],
        *,
        optional: bool = False,
        examples: dict[str, Any] | None = None,
        others: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.optional = optional
        self.examples = examples
        self.others = others or {}

    async def __call__(self, request: Request) -> Model | None:
        if self.others and not request.headers.get("content-type", "").startswith(JSON):
            return None
        settings: Settings = request.app.state.settings
        body = await read_body(request, settings.requests.max_request_body_bytes)
        if self.optional and not body.strip():
            return None
        return validate(self.model, parse_json(body, settings.requests.max_json_depth))

    def openapi(self) -> dict[str, Any]:
        """The operation's ``requestBody``."""
        json_type: dict[str, Any] = {"schema": self.model.model_json_schema()}
        if self.examples:
            json_type["examples"] = self.examples
        content = {JSON: json_type}
        content.update({media: {"schema": schema} for media, schema in self.others.items()})
        return {"required": not self.optional, "content": content}


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body's chunks; a client that goes away mid-body is ``ClientDisconnected``, the
    domain's own error, so nothing below the routes needs to know the framework's."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientDisconnected() from None
