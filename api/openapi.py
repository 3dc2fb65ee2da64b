"""The OpenAPI document, patched to describe the error bodies this API really sends."""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.body import JsonBody
from domain.errors import (
    COMMON_ERRORS,
    ClientDisconnected,
    ErrorBody,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimeout,
    ValidationFailed,
    responses,
)

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _declare(operation: dict[str, Any], declared: dict[int | str, dict[str, Any]]) -> None:
    answers = operation.setdefault("responses", {})
    for status, response in declared.items():
        entry = answers.setdefault(str(status), {"description": ""})
        codes = response["description"].removeprefix("Error codes: ")
        known = entry.get("description", "").removeprefix("Error codes: ")
        merged = sorted({*codes.split(", "), *filter(None, known.split(", "))})
        entry["description"] = "Error codes: " + ", ".join(merged)
        entry.setdefault("content", {"application/json": {"schema": ERROR_REF}})


def _hoist_defs(node: Any, components: dict[str, Any]) -> Any:
    """Bodies declared with ``model_json_schema()`` carry their own ``$defs`` and refer to them
    as ``#/$defs/X``, which is not a place in the OpenAPI document (ReDoc refuses to render,
    Swagger UI shows an error): move them to the components and point there."""
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            components.setdefault(name, _hoist_defs(schema, components))
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                node[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                node[key] = _hoist_defs(value, components)
    elif isinstance(node, list):
        return [_hoist_defs(item, components) for item in node]
    return node


def _json_bodies(dependant: Dependant) -> Iterator[JsonBody[Any]]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, JsonBody):
            yield dependency.call
        yield from _json_bodies(dependency)


def _declare_json_bodies(app: FastAPI, schema: dict[str, Any]) -> None:
    """Each route's ``JsonBody`` dependency is its ``requestBody``: FastAPI cannot see a body
    that a dependency reads from the request itself."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path_format is None:
            continue
        for body in _json_bodies(route.original_route.dependant):
            operations = schema.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                if method.lower() in operations:
                    operations[method.lower()]["requestBody"] = body.openapi()


def document_error_bodies(app: FastAPI) -> None:
    """FastAPI declares its own ``HTTPValidationError`` (a list of details) for every 422; the
    API answers ``{"error", "detail"}`` like every other error. Every operation also declares
    the errors any route can answer (500, 503s, the HTTP protocol's 431) and, with a body,
    the body limit's 413, the client hanging up mid-body and the body deadlines' 408."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _declare_json_bodies(app, schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ErrorBody.model_json_schema()
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answers = operation.get("responses", {})
                if "422" in answers:
                    # FastAPI's own 422 goes; the codes a route declares there stay.
                    kept = answers["422"].get("description", "")
                    answers["422"] = {"description": kept if kept.startswith("Error codes") else ""}
                    _declare(operation, responses(ValidationFailed))
                _declare(operation, responses(*COMMON_ERRORS, HeadersTooLarge))
                if "requestBody" in operation:
                    body_errors = (PayloadTooLarge, ClientDisconnected, RequestTimeout)
                    _declare(operation, responses(*body_errors))
                    _hoist_defs(operation["requestBody"], components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
