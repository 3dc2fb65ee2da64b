"""AWS Signature Version 4 presigning (query-string URLs and POST policies), path-style.

botocore's presigner resolves endpoints and emits events on every call, about half a
millisecond of CPU per URL (bench/README.md); signing is pure HMAC work and needs none of it.
The signing key depends only on the date, so it is derived once a day.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRY_SECONDS = 7 * 24 * 3600


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(value: str, safe: str = "") -> str:
    """RFC 3986 encoding as SigV4 wants it: everything but unreserved characters."""
    return quote(value, safe=safe)


@dataclass(frozen=True, slots=True)
class SignedPost:
    url: str
    fields: dict[str, str]


class SigV4Presigner:
    def __init__(
        self, endpoint_url: str, region: str, access_key: str, secret_key: str, service: str = "s3"
    ) -> None:
        parts = urlsplit(endpoint_url)
        default_port = {"http": 80, "https": 443}.get(parts.scheme)
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._path_prefix = parts.path.rstrip("/")
        self._host = (parts.hostname or "") if parts.port in {None, default_port} else parts.netloc
        self._region = region
        self._service = service
        self._access_key = access_key
        self._secret = secret_key
        self._keys: dict[str, bytes] = {}

    def _scope(self, datestamp: str) -> str:
        return f"{datestamp}/{self._region}/{self._service}/aws4_request"

    def _signing_key(self, datestamp: str) -> bytes:
        key = self._keys.get(datestamp)
        if key is None:
            key = _hmac(f"AWS4{self._secret}".encode(), datestamp)
            for part in (self._region, self._service, "aws4_request"):
                key = _hmac(key, part)
            self._keys = {datestamp: key}
        return key

    def signature(
        self,
        method: str,
        canonical_uri: str,
        query: dict[str, str],
        headers: dict[str, str],
        amz_date: str,
    ) -> str:
        """The hex signature of a request whose payload is not signed."""
        canonical_query = "&".join(
            f"{_encode(name)}={_encode(value)}" for name, value in sorted(query.items())
        )
        canonical_headers = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
        canonical_request = "\n".join(
            (
                method,
                canonical_uri,
                canonical_query,
                canonical_headers,
                ";".join(sorted(headers)),
                UNSIGNED_PAYLOAD,
            )
        )
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                amz_date,
                self._scope(amz_date[:8]),
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        return hmac.new(
            self._signing_key(amz_date[:8]), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()

    def presign_url(
        self,
        method: str,
        bucket: str,
        key: str,
        expires_in: int,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> str:
        """A URL valid for ``expires_in`` seconds; ``headers`` must be sent exactly as signed."""
        moment = now or datetime.now(UTC)
        amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
        signed_headers = {name.lower(): value.strip() for name, value in (headers or {}).items()}
        signed_headers["host"] = self._host
        query = {
            **(params or {}),
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{self._access_key}/{self._scope(amz_date[:8])}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(min(expires_in, MAX_EXPIRY_SECONDS)),
            "X-Amz-SignedHeaders": ";".join(sorted(signed_headers)),
        }
        path = f"/{bucket}/{key}"
        canonical_uri = _encode(self._path_prefix + path, safe="/")
        signature = self.signature(method, canonical_uri, query, signed_headers, amz_date)
        encoded = "&".join(f"{_encode(name)}={_encode(value)}" for name, value in query.items())
        return f"{self._base}{_encode(path, safe='/')}?{encoded}&X-Amz-Signature={signature}"

    def presign_post(
        self,
        bucket: str,
        key: str,
        expires_in: int,
        fields: dict[str, str],
        conditions: list[Any],
        now: datetime | None = None,
    ) -> SignedPost:
        """A browser form upload: the policy pins bucket, key, ``fields`` and ``conditions``."""
        moment = now or datetime.now(UTC)
        amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
        credential = f"{self._access_key}/{self._scope(amz_date[:8])}"
        signed_fields = {
            **fields,
            "key": key,
            "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": credential,
            "x-amz-date": amz_date,
        }
        expiration = moment + timedelta(seconds=min(expires_in, MAX_EXPIRY_SECONDS))
        policy = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [
                *conditions,
                {"bucket": bucket},
                *({name: value} for name, value in signed_fields.items()),
            ],
        }
        encoded_policy = base64.b64encode(json.dumps(policy).encode()).decode()
        signature = hmac.new(
            self._signing_key(amz_date[:8]), encoded_policy.encode(), hashlib.sha256
        ).hexdigest()
        return SignedPost(
            url=f"{self._base}/{bucket}",
            fields={**signed_fields, "policy": encoded_policy, "x-amz-signature": signature},
        )
