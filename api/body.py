"""Reading a JSON body by hand, for routes that also accept other content types."""

import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import MalformedJson, PayloadTooLarge, ValidationFailed, describe_validation

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], data: object) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(describe_validation(error.errors())) from None


async def read_json_value(request: Request, limit: int) -> object:
    """The decoded JSON body, read no further than ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    try:
        value: object = json.loads(body)
    except ValueError:
        raise MalformedJson() from None
    return value


async def read_json(request: Request, model: type[Model], limit: int) -> Model:
    return validate(model, await read_json_value(request, limit))
