"""CORS (DESIGN §10): the API's preflights and error responses, and the bucket's rule on the real
SeaweedFS, as a page on another origin sees them."""

import secrets

import httpx
from fastapi import FastAPI

from api.cors import DEVELOPMENT_ORIGINS, bucket_cors_rule, bucket_origins, install_cors
from infra.config import Settings
from infra.storage.adapter import Storage
from tests.helpers import Account

PAGE = "http://127.0.0.1:5173"  # the test settings allow any local page (development policy)


async def test_preflight_names_authorization_and_content_type(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/files/upload",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-max-age"] == "600"
    assert "x-request-id" in response.headers
    assert "access-control-allow-credentials" not in response.headers


async def test_error_responses_carry_the_cors_headers(
    client: httpx.AsyncClient, alice: Account
) -> None:
    anonymous = await client.get("/files", headers={"Origin": PAGE})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert anonymous.headers["access-control-allow-origin"] == PAGE
    exposed = anonymous.headers["access-control-expose-headers"].lower()
    for header in ("location", "x-request-id", "retry-after"):
        assert header in exposed
    missing = await client.get(
        "/files/download", params={"path": "/nope"}, headers={"Origin": PAGE, **alice.headers}
    )
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == PAGE


async def test_other_origins_get_no_cors_headers(client: httpx.AsyncClient) -> None:
    foreign = "http://evil.example"
    response = await client.get("/files", headers={"Origin": foreign})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/files", headers={"Origin": foreign, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


def production(**values: object) -> Settings:
    return Settings(
        environment="production",
        jwt_secret=secrets.token_hex(32),
        webhook_token=secrets.token_hex(16),
        **values,
    )


def test_origin_settings() -> None:
    assert production().cors.origins is None
    bare = FastAPI()
    install_cors(bare, production())
    assert bare.user_middleware == []  # production: no origin unless configured
    listed = production(cors_origins="https://app.example, https://admin.example/")
    assert listed.cors.origins == ["https://app.example", "https://admin.example"]
    assert production(cors_origins='["https://app.example"]').cors.origins == [
        "https://app.example"
    ]
    assert bucket_origins(listed) == ["https://app.example", "https://admin.example"]
    assert bucket_origins(Settings()) == ["*"]
    assert DEVELOPMENT_ORIGINS.startswith("^http://")


async def test_bucket_rule_lets_a_page_put_and_read_the_etag(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    await storage.put_bucket_cors(bucket_cors_rule(bucket_origins(Settings()), 600))
    ticket = (
        await client.post("/files/upload", json={"path": "/cors.txt"}, headers=alice.headers)
    ).json()["upload"]
    async with httpx.AsyncClient() as browser:
        preflight = await browser.options(
            ticket["url"],
            headers={
                "Origin": PAGE,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code in {200, 204}, preflight.text
        assert preflight.headers["access-control-allow-origin"] in {PAGE, "*"}
        assert "PUT" in preflight.headers["access-control-allow-methods"]
        assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
        put = await browser.put(
            ticket["url"], content=b"from a page", headers={**ticket["headers"], "Origin": PAGE}
        )
    assert put.status_code == 200, put.text
    assert put.headers["access-control-allow-origin"] in {PAGE, "*"}
    assert "etag" in put.headers["access-control-expose-headers"].lower()
