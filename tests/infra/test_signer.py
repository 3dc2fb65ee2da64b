"""The SigV4 presigner against AWS's published example and botocore, then the real S3 server."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.storage.adapter import Storage
from infra.storage.signer import SigV4Presigner

AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_matches_the_aws_documentation_example() -> None:
    """docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (virtual host)."""
    signer = SigV4Presigner(
        "https://examplebucket.s3.amazonaws.com", "us-east-1", AWS_ACCESS_KEY, AWS_SECRET
    )
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{AWS_ACCESS_KEY}/20130524/us-east-1/s3/aws4_request",
        "X-Amz-Date": "20130524T000000Z",
        "X-Amz-Expires": "86400",
        "X-Amz-SignedHeaders": "host",
    }
    signature = signer.signature(
        "GET", "/test.txt", query, {"host": "examplebucket.s3.amazonaws.com"}, "20130524T000000Z"
    )
    assert signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_matches_botocore_for_the_same_request(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime(2026, 11, 27, 5, 30, 0, tzinfo=UTC)
    endpoint = "http://127.0.0.1:8333"
    signer = SigV4Presigner(endpoint, "eu-west-1", AWS_ACCESS_KEY, AWS_SECRET)
    key = "uploads/owner/отчёт 2024+x.txt"
    ours = signer.presign_url(
        "PUT",
        "bucket",
        key,
        900,
        headers={"Content-Type": "text/plain", "Content-Length": "5"},
        params={"response-content-disposition": "attachment; filename*=UTF-8''%D0%BE"},
        now=moment,
    )
    url = urlsplit(ours)
    params = {"response-content-disposition": "attachment; filename*=UTF-8''%D0%BE"}
    base = f"{endpoint}/bucket/{quote(key, safe='/~')}?{urlencode(params, quote_via=quote)}"
    request = AWSRequest(
        method="PUT",
        url=base,
        headers={"Content-Type": "text/plain", "Content-Length": "5", "Host": "127.0.0.1:8333"},
    )
    auth = S3SigV4QueryAuth(Credentials(AWS_ACCESS_KEY, AWS_SECRET), "s3", "eu-west-1", expires=900)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: moment.replace(tzinfo=None))
    auth.add_auth(request)
    theirs = parse_qs(urlsplit(str(request.url)).query)["X-Amz-Signature"][0]
    assert parse_qs(url.query)["X-Amz-Signature"][0] == theirs


async def test_the_s3_server_accepts_its_urls(storage: Storage) -> None:
    key = "uploads/signer/ключ с пробелом+плюс~тильда.txt"
    put = storage.presign_put(key, "text/plain", 5, None)
    async with httpx.AsyncClient() as plain:
        assert (await plain.put(put.url, content=b"hello", headers=put.headers)).status_code == 200
        get = storage.presign_get(key, "attachment; filename*=UTF-8''%D0%BA.txt", "text/plain")
        fetched = await plain.get(get)
        assert fetched.status_code == 200
        assert fetched.content == b"hello"
        assert fetched.headers["content-disposition"] == "attachment; filename*=UTF-8''%D0%BA.txt"
