"""The OpenAPI document declares every error the API answers, in the shape it really has."""

import json
from typing import Any

import httpx
import pytest

from domain.errors import AppError

PUBLIC = {
    ("post", "/api/v1/user/register"),
    ("post", "/api/v1/user/auth"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


@pytest.fixture
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("http://test/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_error_response_is_an_error_body(schema: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"]
                expected = "Ping" if path.endswith("/ping") and status == "503" else "ErrorBody"
                assert ref.endswith(f"/{expected}"), (method, path, status)


async def test_authenticated_routes_declare_401(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (method, path) in PUBLIC:
                continue
            assert "401" in operation["responses"], (method, path)


async def test_swagger_authorize_uses_the_oauth2_form(schema: dict[str, Any]) -> None:
    [scheme] = schema["components"]["securitySchemes"].values()
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/user/auth"
    form = schema["paths"]["/api/v1/user/auth"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form


def _error_classes() -> set[type[AppError]]:
    found: set[type[AppError]] = set()
    pending: list[type[AppError]] = [AppError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return found


# Answered before any route is matched, so no operation can declare them; and a base class
# that is only ever raised through its subclasses.
ROUTELESS = {"not_found", "method_not_allowed", "conflict"}


async def test_every_error_code_is_declared_where_it_can_occur(schema: dict[str, Any]) -> None:
    declared = {
        code
        for operations in schema["paths"].values()
        for operation in operations.values()
        for response in operation["responses"].values()
        for code in response.get("description", "").removeprefix("Error codes: ").split(", ")
    }
    codes = {error.code for error in _error_classes()}
    assert codes - ROUTELESS <= declared, sorted(codes - ROUTELESS - declared)


async def test_routes_reading_a_json_body_declare_it(schema: dict[str, Any]) -> None:
    """The bodies a dependency reads (``JsonBody``) are documented like FastAPI's own."""
    paths = schema["paths"]
    for path in (
        "/api/v1/files/upload",
        "/api/v1/files/uploads/{upload_id}/complete",
        "/api/v1/files/uploads/sign",
        "/api/v1/files/uploads/{upload_id}/parts",
    ):
        body = paths[path]["post"]["requestBody"]
        assert "$ref" in json.dumps(body["content"]["application/json"]["schema"]) or body[
            "content"
        ]["application/json"]["schema"].get("properties"), path
    assert (
        paths["/api/v1/files/uploads/{upload_id}/complete"]["post"]["requestBody"]["required"]
        is False
    )
