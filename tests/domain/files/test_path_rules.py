"""A name is a file or a folder, never both (issue 18): on every route that creates a path, a
path naming an existing folder is that folder, and a path below a file is 409 path_taken."""

import asyncio

import httpx

from tests.domain.uploads.test_uppy_signer import sign
from tests.helpers import Account, intent, listed, upload


async def test_a_path_naming_a_folder_goes_inside_it(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert (await upload(client, alice, "/photos/a.jpg", b"a")).status_code == 201
    proxied = await upload(client, alice, "/photos", b"beach", filename="beach.jpg")
    assert proxied.status_code == 201, proxied.text
    assert proxied.json()["path"] == "/photos/beach.jpg"
    direct = await intent(client, alice, path="/photos", name="sea.png", size=3)
    assert direct.status_code == 201
    assert direct.json()["path"] == "/photos/sea.png"
    multipart = await intent(
        client, alice, path="/photos", name="big.bin", size=6 * 1024 * 1024, multipart=True
    )
    assert multipart.json()["path"] == "/photos/big.bin"
    unnamed = await intent(client, alice, path="/photos", size=3)
    assert unnamed.json()["path"] == "/photos/photos"  # its own name is the path's last one
    uppy = await sign(client, alice, method="PUT", key="/photos", contentType="text/plain")
    assert uppy.status_code == 200, uppy.text
    paths = {file["path"] for file in await listed(client, alice)}
    assert "/photos" not in paths
    assert {"/photos/a.jpg", "/photos/beach.jpg"} <= paths


async def test_nothing_goes_below_a_file(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await upload(client, alice, "/photos/beach.jpg", b"b")).status_code == 201
    for answer in (
        await upload(client, alice, "/photos/beach.jpg/x.txt", b"x"),
        await intent(client, alice, path="/photos/beach.jpg/x.txt", size=1),
        await intent(client, alice, path="/photos/beach.jpg/deep/", name="y.txt", size=1),
        await sign(client, alice, method="POST", key="/photos/beach.jpg/z.bin"),
    ):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "path_taken"
        assert "/photos/beach.jpg" in answer.json()["detail"]
    # An overwrite of the file itself is not a conflict, and another user's names are theirs.
    assert (await upload(client, alice, "/photos/beach.jpg", b"c")).status_code == 200


async def test_a_pending_upload_claims_its_path_too(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    assert (await intent(client, alice, path="/doc", size=5)).status_code == 201  # pending
    below = await intent(client, alice, path="/doc/page.txt", size=1)
    assert below.status_code == 409
    assert (await intent(client, bob, path="/doc/page.txt", size=1)).status_code == 201


async def test_racing_a_file_and_a_folder_of_one_name_leaves_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """The owner's path lock serialises the check and the insert: of a file /n and a file
    /n/x sent at once, never both become paths."""
    for round_ in range(10):
        name = f"/n{round_}"
        file, inside = await asyncio.gather(
            upload(client, alice, name, b"f", filename="f"),
            upload(client, alice, f"{name}/x", b"x"),
        )
        paths = {entry["path"] for entry in await listed(client, alice)}
        assert not (name in paths and f"{name}/x" in paths), paths
        assert {file.status_code, inside.status_code} <= {201, 409}
