"""The audit's quota repros (issue 17), replayed: what storage holds for a user against the quota.

    python -m bench.quota_repro          # make quota-repro

Starts `python -m scripts.run` with a 1 MiB quota on spare ports, with a database, a Redis db
and a data directory of its own, then as one user:

- 20 multipart intents of 1 MiB each, at once, and every accepted part uploaded;
- an Uppy multipart upload without a size: 5 MiB parts signed and sent until the signer refuses
  (the audit sent 48 MiB);
- 3,000 intents of one byte, as fast as one client sends them.

For each it prints what was accepted and the bytes storage holds for the user (objects and the
parts of open multipart uploads), as JSON.
"""

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
from aiobotocore.session import get_session

from bench.stack import ROOT
from infra.config import Settings
from scripts.seaweed import free_port

MIB = 1024 * 1024
QUOTA = MIB
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DB = 7


@contextlib.contextmanager
def own_stack(env: dict[str, str], api: str, log_path: str) -> Iterator[None]:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{api}/healthz", timeout=1).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the stack did not start; see {log_path}")
                time.sleep(0.3)
            yield
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def bucket_client(settings: Settings) -> AsyncIterator[Any]:
    client = get_session().create_client(
        "s3",
        endpoint_url=settings.storage.endpoint_url,
        region_name=settings.storage.region,
        aws_access_key_id=settings.storage.access_key,
        aws_secret_access_key=settings.storage.secret_key.get_secret_value(),
    )
    async with client as s3:
        yield s3


async def held_bytes(s3: Any, bucket: str, prefix: str) -> int:
    """Objects under ``prefix`` plus the parts of its open multipart uploads."""
    total = 0
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += sum(item["Size"] for item in page.get("Contents", []))
    uploads = await s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    for item in uploads.get("Uploads", []):
        parts = await s3.list_parts(Bucket=bucket, Key=item["Key"], UploadId=item["UploadId"])
        total += sum(part["Size"] for part in parts.get("Parts", []))
    return total


async def multipart_intents(
    api: httpx.AsyncClient, s3: Any, bucket: str, prefix: str
) -> dict[str, Any]:
    answers = await asyncio.gather(
        *(
            api.post("/files/upload", json={"path": f"/m{n}.bin", "size": MIB, "multipart": True})
            for n in range(20)
        )
    )
    accepted = [answer.json() for answer in answers if answer.status_code == 201]
    async with httpx.AsyncClient(timeout=60) as plain:
        for pending in accepted:
            ticket = pending["upload"]
            signed = await api.post(
                f"/files/uploads/{ticket['id']}/parts", json={"parts": [{"number": 1}]}
            )
            part = signed.json()["parts"][0]
            sent = await plain.put(part["url"], content=os.urandom(MIB), headers=part["headers"])
            sent.raise_for_status()
    statuses = sorted(answer.status_code for answer in answers)
    report: dict[str, Any] = {"intents": 20}
    report["statuses"] = {str(s): statuses.count(s) for s in set(statuses)}
    report["storage_held_bytes"] = await held_bytes(s3, bucket, prefix)
    for pending in accepted:  # frees the quota for the next repro
        (await api.delete(f"/files/uploads/{pending['upload']['id']}")).raise_for_status()
    return report


async def uppy_unsized(api: httpx.AsyncClient) -> dict[str, Any]:
    created = await api.post("/files/uploads/sign", json={"method": "POST", "key": "/u.bin"})
    key = created.json()["key"]
    sent_bytes, refused = 0, None
    async with httpx.AsyncClient(timeout=60) as page:
        opened = await page.post(created.json()["url"])
        match = re.search(r"<UploadId>([^<]*)</UploadId>", opened.text)
        assert match, opened.text
        upload_id = match.group(1)
        for number in range(1, 11):
            request = {"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": number}
            signed = await api.post("/files/uploads/sign", json=request)
            if signed.status_code != 200:
                refused = {"part": number, "status": signed.status_code, **signed.json()}
                break
            (await page.put(signed.json()["url"], content=os.urandom(5 * MIB))).raise_for_status()
            sent_bytes += 5 * MIB
    return {"parts_sent_bytes": sent_bytes, "refused": refused}


async def many_intents(api: httpx.AsyncClient, count: int) -> dict[str, Any]:
    started = time.monotonic()
    statuses: list[int] = []
    for batch in range(0, count, 50):
        answers = await asyncio.gather(
            *(
                api.post("/files/upload", json={"path": f"/i/{n}.txt", "size": 1})
                for n in range(batch, min(batch + 50, count))
            )
        )
        statuses += [answer.status_code for answer in answers]
    seconds = time.monotonic() - started
    return {
        "intents": count,
        "seconds": round(seconds, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


async def replay(api_url: str, settings: Settings) -> dict[str, Any]:
    credentials = {"login": f"repro_{secrets.token_hex(4)}", "password": secrets.token_hex(8)}
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", timeout=60) as anonymous:
        user = (await anonymous.post("/user/register", json=credentials)).json()
        token = (await anonymous.post("/user/auth", json=credentials)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    prefix = f"{settings.storage.key_prefix}/{user['id']}/"
    report: dict[str, Any] = {"quota_bytes": QUOTA}
    async with (
        httpx.AsyncClient(base_url=f"{api_url}/api/v1", headers=headers, timeout=60) as api,
        bucket_client(settings) as s3,
    ):
        report["multipart_intents"] = await multipart_intents(
            api, s3, settings.storage.bucket, prefix
        )
        report["uppy_unsized"] = await uppy_unsized(api)
        report["uppy_unsized"]["storage_held_bytes"] = await held_bytes(
            s3, settings.storage.bucket, prefix
        )
        report["many_intents"] = await many_intents(api, 3000)
    return report


def main() -> int:
    run_id = secrets.token_hex(4)
    database = f"filestore_quota_repro_{run_id}"
    data_dir = tempfile.mkdtemp(prefix="filestore-quota-repro-")
    port, s3_port = free_port(), free_port()
    env = {
        **os.environ,
        "FILESTORE_USER_QUOTA_BYTES": str(QUOTA),
        "FILESTORE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "FILESTORE_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "FILESTORE_RUN_PORT": str(port),
        "FILESTORE_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "FILESTORE_RUN_DATA_DIR": data_dir,
        "FILESTORE_API_PROCESSES": "1",
        "FILESTORE_LOG_LEVEL": "WARNING",
    }
    settings = Settings(s3_endpoint_url=env["FILESTORE_S3_ENDPOINT_URL"], user_quota_bytes=QUOTA)
    api_url = f"http://127.0.0.1:{port}"
    try:
        with own_stack(env, api_url, os.path.join(data_dir, "run.log")):
            report = asyncio.run(replay(api_url, settings))
    finally:
        asyncio.run(_drop(database))
    print(json.dumps(report, indent=2))
    return 0


async def _drop(database: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    sys.exit(main())
