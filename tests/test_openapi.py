"""The OpenAPI document declares every error the API answers, in the shape it really has."""

from typing import Any

import httpx
import pytest

PUBLIC = {("post", "/api/v1/user/register"), ("post", "/api/v1/user/auth")}


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
