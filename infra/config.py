"""Settings, read once from the environment (prefix ``FILESTORE_``), grouped by concern."""

import json
import os
from functools import lru_cache
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105 - refused outside development
DEV_WEBHOOK_TOKEN = "dev-only-webhook-token"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILESTORE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/filestore"
    database_pool_size: int = 10
    # A ping on every pool checkout costs a round trip per checkout; without it, a connection
    # broken by a database restart fails one request (503) and the pool is invalidated.
    database_pool_pre_ping: bool = False
    database_pool_recycle_seconds: int = 1800

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_seconds: float = 0.5
    ping_timeout_seconds: float = 2.0
    cache_ttl_seconds: int = 300
    # Per API process: cached values kept in memory in front of Redis (0: Redis only).
    cache_memory_bytes: int = 8 * 1024 * 1024

    s3_endpoint_url: str = "http://127.0.0.1:8333"
    s3_public_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str = "filestore"
    s3_secret_key: SecretStr = SecretStr("filestore-dev-secret")
    s3_bucket: str = "filestore"
    s3_key_prefix: str = "uploads"
    s3_multipart_threshold_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    s3_part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    # A proxied upload's parts on their way to storage while the next is read.
    s3_parts_in_flight: int = Field(default=1, ge=1)
    # SHA-256 of every body the API sends to S3 (botocore always does it over plain HTTP): about
    # a fifth of a proxied upload's CPU. Off, the payload is sent as UNSIGNED-PAYLOAD.
    s3_sign_payload: bool = False

    jwt_secret: SecretStr = SecretStr(DEV_SECRET)
    jwt_ttl_seconds: int = 3600
    webhook_token: SecretStr = SecretStr(DEV_WEBHOOK_TOKEN)

    # S3's largest object (a multipart upload); the quota is the real cap.
    max_upload_bytes: int = 5 * 1024 * 1024 * 1024 * 1024
    # Every body but a multipart upload is a small JSON or form document.
    max_request_body_bytes: int = 1024 * 1024
    # Deeper JSON is refused before it is parsed (the parser recurses once per level).
    max_json_depth: int = Field(default=32, ge=1, le=500)
    user_quota_bytes: int = 50 * 1024 * 1024 * 1024
    # What an upload that declares no size reserves against the quota (at most what is left):
    # by default the most a single PUT can carry, so a URL handed out can never write past the
    # quota. A lower value lets more such uploads be open at once; a PUT that writes more
    # than its reservation is rejected at confirmation.
    undeclared_upload_reservation_bytes: int = Field(default=5 * 1024**3, ge=1)
    # Pending uploads a user may hold at once (intents nobody finishes hold one until expiry).
    max_open_uploads_per_user: int = Field(default=1000, ge=1)
    upload_url_ttl_seconds: int = 900
    download_url_ttl_seconds: int = 300
    download_proxy_default: bool = False
    stream_chunk_bytes: int = 1024 * 1024
    # Search reads at most this many of a user's files in path order looking for a page of
    # matches (cheap when matches are common); failing that, up to this many matches are
    # sorted whole, and more mean a common word whose matches sort late (walked unbounded).
    search_scan_rows: int = Field(default=2_000, ge=100)
    # A folder zip reads its listing this many files at a time; a folder with at most this many
    # is sized (its length known before the first byte, so a browser shows progress).
    zip_page_files: int = Field(default=10_000, ge=1, le=1_000_000)

    # How long a deleted file or folder stays in the trash (0: deleted at once), and how many
    # earlier contents an overwrite keeps per file (0: none). Both count against the quota.
    trash_retention_seconds: int = Field(default=30 * 24 * 3600, ge=0)
    versions_kept: int = Field(default=10, ge=0, le=1000)

    # Share links (§15): the longest a link may live (a share lasts 7 days unless it asks for
    # less, or at most this), and how long unlocking a password share lasts in a browser (the
    # cookie). public_url: the API's address as its users reach it (https://files.example.com),
    # which links are built on; unset, each request's own base URL.
    share_max_seconds: int = Field(default=90 * 24 * 3600, ge=60)
    share_unlock_seconds: int = Field(default=3600, ge=60)
    # Downloads of shares without a limit are added up in each API process and written this
    # often (a limited share counts in the database on every click, to hold its limit).
    share_count_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # Upload intents one upload link takes a minute (429 past it), and how long a link stays in
    # its owner's list after it expired before the purge deletes it.
    share_uploads_per_minute: int = Field(default=60, ge=1)
    share_purge_after_seconds: int = Field(default=24 * 3600, ge=0)
    public_url: str | None = None

    auth_max_failures_per_login: int = 10
    auth_max_failures_per_address: int = 100
    auth_failure_window_seconds: int = 300

    worker_poll_delay_seconds: float = 0.05
    worker_max_tries: int = 8
    worker_max_jobs: int = 20
    # How often reconcile (pending uploads), the outbox drain and the bucket sweep run: a
    # divisor of 60 seconds, or whole minutes that divide an hour (they are cron schedules).
    reconcile_interval_seconds: int = Field(default=60, ge=1, le=3600)
    outbox_drain_interval_seconds: int = Field(default=5, ge=1, le=3600)
    sweep_interval_seconds: int = Field(default=600, ge=1, le=3600)
    # The purge: trash entries past retention and versions beyond the limit, at most
    # purge_batch_size of each per run.
    purge_interval_seconds: int = Field(default=60, ge=1, le=3600)
    purge_batch_size: int = Field(default=100, ge=1, le=10_000)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    reconcile_batch_size: int = 500
    # How long a pending upload may stay unconfirmed after its URL expired (a slow PUT in flight).
    upload_grace_seconds: int = 300
    # A proxied upload's pending row is a lease its API process renews while the bytes flow; when
    # the process dies, the lease runs out and reconcile marks the upload failed.
    proxied_upload_lease_seconds: int = Field(default=300, ge=3)
    # How long the API retries a transaction that failed transiently (a deadlock, a restarting
    # database) before it answers 503; recording a failed upload is retried as long again.
    transaction_retry_seconds: float = Field(default=5.0, ge=0)
    # Bucket garbage collection: objects (and multipart uploads) examined per sweep run, and the
    # age below which an unreferenced one is left alone (an upload may still be opening).
    sweep_batch_size: int = Field(default=1000, ge=1)
    sweep_grace_seconds: int = Field(default=3600, ge=0)

    # Request limits. A request body that sends nothing for request_body_idle_seconds, or that
    # averages under request_body_min_rate_bytes a second over request_body_rate_window_seconds
    # of waiting for it (the first window is its grace), is cut with 408. Only time spent
    # waiting for the client counts: a body the API reads slowly (storage busy) is not blamed.
    request_body_idle_seconds: float = Field(default=30.0, gt=0)
    request_body_min_rate_bytes: int = Field(default=1024, ge=0)
    request_body_rate_window_seconds: float = Field(default=30.0, gt=0)
    # The request line and headers (python -m api.serve's HTTP protocol, 431 past it). The longest
    # legitimate request line, a listing with an 8 KiB cursor and a percent-encoded path, is
    # under 20 KiB; 1 MB headers were accepted before.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    # Proxied uploads streaming at once, per API process (503 past it) and per user across
    # processes (429). Each holds up to a part per part in flight plus the one being read.
    proxied_uploads_per_process: int = Field(default=16, ge=1)
    proxied_uploads_per_user: int = Field(default=4, ge=1)

    # Direct uploads larger than this are presigned multipart uploads (a single PUT is at most
    # 5 GiB); ``multipart: true`` asks for one at any size.
    multipart_threshold_bytes: int = Field(
        default=100 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024 * 1024 * 1024
    )
    # How long a presigned multipart upload may take before reconcile aborts it (each signed
    # part URL lives ``upload_url_ttl_seconds``).
    multipart_upload_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # Origins allowed to call the API from a browser (a JSON list or comma-separated); unset:
    # none in production, any http://localhost:<port> and http://127.0.0.1:<port> otherwise.
    cors_origins: Annotated[list[str] | None, NoDecode] = None
    # How long a browser may cache a preflight answer.
    cors_max_age_seconds: int = Field(default=600, ge=0)

    # Observability. /metrics: off, open, or token (Authorization: Bearer <metrics_token>).
    metrics_access: Literal["off", "open", "token"] = "open"
    metrics_token: SecretStr | None = None
    # Several processes (API workers, arq workers) on one machine write their metrics here and
    # any /metrics sums them; it must be empty when they start. Unset: each process its own.
    metrics_dir: str | None = None
    # The arq worker serves its metrics on this port (same access rule); unset: none.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # Per-dependency timeout of GET /readyz (an orchestrator's probe must answer quickly).
    ready_timeout_seconds: float = Field(default=1.0, gt=0)

    # Where the API listens (python -m api.serve, make run) and where make run's embedded
    # SeaweedFS keeps its data.
    run_host: str = "127.0.0.1"
    run_port: int = 8080
    run_data_dir: str = "var"
    # API processes serving one socket (python -m api.serve): every core by default.
    api_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # `python -m worker` processes make run starts (each runs worker_max_jobs jobs at once).
    worker_processes: int = Field(default=1, ge=1)

    @field_validator("*", mode="before")
    @classmethod
    def empty_is_unset(cls, value: object, info: ValidationInfo) -> object:
        """``FILESTORE_X=`` (set, empty: what compose's ``${X:-}`` gives) means unset for a
        setting that may be unset, instead of an empty path, URL or port."""
        if value == "" and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if type(None) in get_args(annotation):
                return None
        return value

    @field_validator(
        "reconcile_interval_seconds",
        "outbox_drain_interval_seconds",
        "sweep_interval_seconds",
        "purge_interval_seconds",
    )
    @classmethod
    def cron_interval(cls, seconds: int) -> int:
        minutes, rest = divmod(seconds, 60)
        fits = 60 % seconds == 0 if seconds < 60 else rest == 0 and 60 % minutes == 0
        if not fits:
            raise ValueError("must divide a minute, or be whole minutes that divide an hour")
        return seconds

    @field_validator("cors_origins", mode="before")
    @classmethod
    def origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def refuse_dev_secrets_in_production(self) -> "Settings":
        if self.environment == "production":
            if self.jwt_secret.get_secret_value() == DEV_SECRET:
                raise ValueError("FILESTORE_JWT_SECRET must be set in production")
            if self.webhook_token.get_secret_value() == DEV_WEBHOOK_TOKEN:
                raise ValueError("FILESTORE_WEBHOOK_TOKEN must be set in production")
        return self

    @model_validator(mode="after")
    def metrics_token_when_required(self) -> "Settings":
        if self.metrics_access == "token" and not (
            self.metrics_token and len(self.metrics_token.get_secret_value()) >= 16
        ):
            raise ValueError("FILESTORE_METRICS_TOKEN (16+ characters) is needed for token access")
        return self

    @property
    def presign_endpoint_url(self) -> str:
        return self.s3_public_endpoint_url or self.s3_endpoint_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
