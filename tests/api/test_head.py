"""Every GET route answers HEAD with the same status and headers and no body (issue 18)."""

import os

import httpx

from tests.helpers import Account, upload

GET_HEADERS = ("content-type", "content-length", "etag", "last-modified", "content-disposition")


async def test_head_mirrors_get_without_a_body(client: httpx.AsyncClient, alice: Account) -> None:
    content = os.urandom(3000)
    assert (await upload(client, alice, "/h/a.bin", content)).status_code == 201
    for url in ("/files", "/files/ping", "/files/download?path=/h/a.bin&proxy=true"):
        got = await client.get(url, headers=alice.headers)
        head = await client.head(url, headers=alice.headers)
        assert head.status_code == got.status_code, url
        assert head.content == b"", url
        # The ping's latencies differ from one answer to the next, and so its length.
        compared = [name for name in GET_HEADERS if not (url == "/files/ping" and "length" in name)]
        for name in compared:
            assert head.headers.get(name) == got.headers.get(name), (url, name)
    proxied = await client.head("/files/download?path=/h/a.bin&proxy=true", headers=alice.headers)
    assert proxied.headers["content-length"] == "3000"
    ranged = await client.head(
        "/files/download?path=/h/a.bin&proxy=true",
        headers={**alice.headers, "Range": "bytes=0-99"},
    )
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == "bytes 0-99/3000"
    assert ranged.headers["content-length"] == "100"


async def test_head_of_a_redirect_and_of_errors(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await upload(client, alice, "/r.txt", b"hello")).status_code == 201
    redirect = await client.head("/files/download?path=/r.txt", headers=alice.headers)
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith("http")
    assert redirect.content == b""
    missing = await client.head("/files/download?path=/nope.txt", headers=alice.headers)
    assert missing.status_code == 404
    assert missing.content == b""
    assert (await client.head("/files")).status_code == 401
    assert (await client.head("/user/register")).status_code == 405  # POST only
