"""Reading a JSON body by hand, for routes that also accept other content types."""

import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import MalformedJson, ValidationFailed, describe_validation

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], data: object) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(describe_validation(error.errors())) from None


async def read_json_value(request: Request) -> object:
    try:
        value: object = json.loads(await request.body())
    except ValueError:
        raise MalformedJson() from None
    return value


async def read_json(request: Request, model: type[Model]) -> Model:
    return validate(model, await read_json_value(request))
