"""What a browser gets from the API's host: the web page, and docs with no external asset."""

import json
import re

import httpx

from api.pages import DOCS_ASSETS, WEB_ASSETS

EXTERNAL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


async def test_the_page_and_its_assets_are_served_by_the_api(client: httpx.AsyncClient) -> None:
    page = await client.get("http://test/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in page.text
    assert not EXTERNAL.search(page.text)
    for asset in ("app.js", "style.css"):
        served = await client.get(f"http://test{WEB_ASSETS}/{asset}")
        assert served.status_code == 200, asset
        assert "http://" not in served.text and "https://" not in served.text


async def test_docs_and_redoc_load_their_assets_from_the_api(client: httpx.AsyncClient) -> None:
    docs = await client.get("http://test/docs")
    assert docs.status_code == 200
    assert f"{DOCS_ASSETS}/swagger-ui-bundle.js" in docs.text
    assert '"validatorUrl": null' in docs.text
    assert not EXTERNAL.search(docs.text)
    redoc = await client.get("http://test/redoc")
    assert redoc.status_code == 200
    assert f"{DOCS_ASSETS}/redoc.standalone.js" in redoc.text
    assert not EXTERNAL.search(redoc.text)
    assert "fonts.googleapis" not in redoc.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        served = await client.get(f"http://test{DOCS_ASSETS}/{asset}")
        assert served.status_code == 200, asset
    assert (await client.get("http://test/docs/oauth2-redirect")).status_code == 200
    bundle = await client.get(f"http://test{DOCS_ASSETS}/redoc.standalone.js")
    assert "cdn.redoc.ly" not in bundle.text  # its sidebar logo, pointed at our favicon
    assert docs.headers["content-security-policy"].startswith("default-src 'self'")


async def test_the_upload_form_shows_file_and_path_and_the_intent_has_examples(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("http://test/openapi.json")).json()
    body = schema["paths"]["/api/v1/files/upload"]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]
    assert list(form["properties"]) == ["path", "file"]  # path first: it must precede the file
    examples = body["application/json"]["examples"]
    assert {e["value"]["path"] for e in examples.values()} == {"/docs/", "/big/disk.img"}
    paths = schema["paths"]
    assert not {"/", "/docs", "/redoc"} & set(paths)
    # Every $ref points into the document (bodies' own $defs moved to the components).
    text = json.dumps(schema)
    assert "$defs" not in text
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs <= set(schema["components"]["schemas"]), refs - set(schema["components"]["schemas"])
