"""Settings, read once from the environment (prefix ``FILESTORE_``), grouped by concern.

Each group is read on its own (``settings.storage.bucket`` is ``FILESTORE_S3_BUCKET``): a group
strips its prefix from its fields' names, and a field whose variable does not share that prefix
names its variable (``validation_alias``), so every variable is still the one it always was.
``FLAT_NAMES`` maps each variable's name without the prefix (``s3_bucket``) to its group and
field; ``Settings(**flat)`` and ``settings.with_changes(**flat)`` take those names.
"""

import json
import os
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105 - refused outside development
DEV_WEBHOOK_TOKEN = "dev-only-webhook-token"  # noqa: S105 - refused outside development
ENV_PREFIX = "FILESTORE_"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}{prefix}",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )


def _cron_interval(seconds: int) -> int:
    """A cron schedule's interval: a divisor of a minute, or whole minutes dividing an hour."""
    minutes, rest = divmod(seconds, 60)
    fits = 60 % seconds == 0 if seconds < 60 else rest == 0 and 60 % minutes == 0
    if not fits:
        raise ValueError("must divide a minute, or be whole minutes that divide an hour")
    return seconds


class Group(BaseSettings):
    """One concern's settings, read from the environment on its own."""

    model_config = _config("")

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

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Each field's environment variable."""
        prefix = cls.model_config.get("env_prefix", "")
        names = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            names[name] = alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper()
        return names


def _alias(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


class DatabaseSettings(Group):
    model_config = _config("DATABASE_")

    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/filestore"
    pool_size: int = 10
    # A ping on every pool checkout costs a round trip per checkout; without it, a connection
    # broken by a database restart fails one request (503) and the pool is invalidated.
    pool_pre_ping: bool = False
    pool_recycle_seconds: int = 1800
    # How long the API retries a transaction that failed transiently (a deadlock, a restarting
    # database) before it answers 503; recording a failed upload is retried as long again.
    transaction_retry_seconds: float = Field(
        default=5.0, ge=0, validation_alias=_alias("transaction_retry_seconds")
    )


class RedisSettings(Group):
    model_config = _config("REDIS_")

    url: str = "redis://127.0.0.1:6379/0"
    timeout_seconds: float = 0.5
    cache_ttl_seconds: int = Field(default=300, validation_alias=_alias("cache_ttl_seconds"))
    # Per API process: cached values kept in memory in front of Redis (0: Redis only).
    cache_memory_bytes: int = Field(
        default=8 * 1024 * 1024, validation_alias=_alias("cache_memory_bytes")
    )


class StorageSettings(Group):
    model_config = _config("S3_")

    endpoint_url: str = "http://127.0.0.1:8333"
    public_endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str = "filestore"
    secret_key: SecretStr = SecretStr("filestore-dev-secret")
    bucket: str = "filestore"
    key_prefix: str = "uploads"
    multipart_threshold_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    # A proxied upload's parts on their way to storage while the next is read.
    parts_in_flight: int = Field(default=1, ge=1)
    # SHA-256 of every body the API sends to S3 (botocore always does it over plain HTTP): about
    # a fifth of a proxied upload's CPU. Off, the payload is sent as UNSIGNED-PAYLOAD.
    sign_payload: bool = False

    @property
    def presign_endpoint_url(self) -> str:
        return self.public_endpoint_url or self.endpoint_url


class AuthSettings(Group):
    model_config = _config("AUTH_")

    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET), validation_alias=_alias("jwt_secret")
    )
    jwt_ttl_seconds: int = Field(default=3600, validation_alias=_alias("jwt_ttl_seconds"))
    webhook_token: SecretStr = Field(
        default=SecretStr(DEV_WEBHOOK_TOKEN), validation_alias=_alias("webhook_token")
    )
    max_failures_per_login: int = 10
    max_failures_per_address: int = 100
    failure_window_seconds: int = 300


class UploadSettings(Group):
    """Uploads of every kind: sizes, the quota and its reservations, their URLs' lives."""

    # S3's largest object (a multipart upload); the quota is the real cap.
    max_upload_bytes: int = 5 * 1024 * 1024 * 1024 * 1024
    user_quota_bytes: int = 50 * 1024 * 1024 * 1024
    # What an upload that declares no size reserves against the quota (at most what is left):
    # by default the most a single PUT can carry, so a URL handed out can never write past the
    # quota. A lower value lets more such uploads be open at once; a PUT that writes more
    # than its reservation is rejected at confirmation.
    undeclared_upload_reservation_bytes: int = Field(default=5 * 1024**3, ge=1)
    # Pending uploads a user may hold at once (intents nobody finishes hold one until expiry).
    max_open_uploads_per_user: int = Field(default=1000, ge=1)
    upload_url_ttl_seconds: int = 900
    # How long a pending upload may stay unconfirmed after its URL expired (a slow PUT in flight).
    upload_grace_seconds: int = 300
    # A proxied upload's pending row is a lease its API process renews while the bytes flow; when
    # the process dies, the lease runs out and reconcile marks the upload failed.
    proxied_upload_lease_seconds: int = Field(default=300, ge=3)
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


class RequestSettings(Group):
    """What a request may send, and how slowly."""

    # Every body but a multipart upload is a small JSON or form document.
    max_request_body_bytes: int = 1024 * 1024
    # Deeper JSON is refused before it is parsed (the parser recurses once per level).
    max_json_depth: int = Field(default=32, ge=1, le=500)
    # A request body that sends nothing for request_body_idle_seconds, or that averages under
    # request_body_min_rate_bytes a second over request_body_rate_window_seconds of waiting for
    # it (the first window is its grace), is cut with 408. Only time spent waiting for the
    # client counts: a body the API reads slowly (storage busy) is not blamed.
    request_body_idle_seconds: float = Field(default=30.0, gt=0)
    request_body_min_rate_bytes: int = Field(default=1024, ge=0)
    request_body_rate_window_seconds: float = Field(default=30.0, gt=0)
    # The request line and headers (python -m api.serve's HTTP protocol, 431 past it). The longest
    # legitimate request line, a listing with an 8 KiB cursor and a percent-encoded path, is
    # under 20 KiB; 1 MB headers were accepted before.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)


class FileSettings(Group):
    """Reading files back: downloads, listings' search, folder zips."""

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


class RetentionSettings(Group):
    """What a delete or an overwrite keeps, and the purge that ends it."""

    # How long a deleted file or folder stays in the trash (0: deleted at once), and how many
    # earlier contents an overwrite keeps per file (0: none). Both count against the quota.
    trash_retention_seconds: int = Field(default=30 * 24 * 3600, ge=0)
    versions_kept: int = Field(default=10, ge=0, le=1000)
    # The purge: trash entries past retention and versions beyond the limit, at most
    # purge_batch_size of each per run.
    purge_interval_seconds: int = Field(default=60, ge=1, le=3600)
    purge_batch_size: int = Field(default=100, ge=1, le=10_000)

    @field_validator("purge_interval_seconds")
    @classmethod
    def cron_interval(cls, seconds: int) -> int:
        return _cron_interval(seconds)


class ShareSettings(Group):
    """Share links (§15)."""

    model_config = _config("SHARE_")

    # The longest a link may live (a share lasts 7 days unless it asks for less, or at most
    # this), and how long unlocking a password share lasts in a browser (the cookie).
    max_seconds: int = Field(default=90 * 24 * 3600, ge=60)
    unlock_seconds: int = Field(default=3600, ge=60)
    # Downloads of shares without a limit are added up in each API process and written this
    # often (a limited share counts in the database on every click, to hold its limit).
    count_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # Upload intents one upload link takes a minute (429 past it), and how long a link stays in
    # its owner's list after it expired before the purge deletes it.
    uploads_per_minute: int = Field(default=60, ge=1)
    purge_after_seconds: int = Field(default=24 * 3600, ge=0)
    # The API's address as its users reach it (https://files.example.com), which links are
    # built on; unset, each request's own base URL.
    public_url: str | None = Field(default=None, validation_alias=_alias("public_url"))


class WorkerSettings(Group):
    """The arq worker processes."""

    model_config = _config("WORKER_")

    poll_delay_seconds: float = 0.05
    max_tries: int = 8
    max_jobs: int = 20
    # The arq worker serves its metrics on this port (same access rule); unset: none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # `python -m worker` processes make run starts (each runs max_jobs jobs at once).
    processes: int = Field(default=1, ge=1)


class JobSettings(Group):
    """The worker's periodic passes: how often and how much each does."""

    # How often reconcile (pending uploads), the outbox drain and the bucket sweep run: a
    # divisor of 60 seconds, or whole minutes that divide an hour (they are cron schedules).
    reconcile_interval_seconds: int = Field(default=60, ge=1, le=3600)
    outbox_drain_interval_seconds: int = Field(default=5, ge=1, le=3600)
    sweep_interval_seconds: int = Field(default=600, ge=1, le=3600)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    reconcile_batch_size: int = 500
    # Bucket garbage collection: objects (and multipart uploads) examined per sweep run, and the
    # age below which an unreferenced one is left alone (an upload may still be opening).
    sweep_batch_size: int = Field(default=1000, ge=1)
    sweep_grace_seconds: int = Field(default=3600, ge=0)

    @field_validator(
        "reconcile_interval_seconds", "outbox_drain_interval_seconds", "sweep_interval_seconds"
    )
    @classmethod
    def cron_interval(cls, seconds: int) -> int:
        return _cron_interval(seconds)


class CorsSettings(Group):
    model_config = _config("CORS_")

    # Origins allowed to call the API from a browser (a JSON list or comma-separated); unset:
    # none in production, any http://localhost:<port> and http://127.0.0.1:<port> otherwise.
    origins: Annotated[list[str] | None, NoDecode] = None
    # How long a browser may cache a preflight answer.
    max_age_seconds: int = Field(default=600, ge=0)

    @field_validator("origins", mode="before")
    @classmethod
    def origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
        return value


class ObservabilitySettings(Group):
    """Logs, metrics and health probes."""

    model_config = _config("METRICS_")

    log_level: str = Field(default="INFO", validation_alias=_alias("log_level"))
    # /metrics: off, open, or token (Authorization: Bearer <token>).
    access: Literal["off", "open", "token"] = "open"
    token: SecretStr | None = None
    # Several processes (API workers, arq workers) on one machine write their metrics here and
    # any /metrics sums them; it must be empty when they start. Unset: each process its own.
    dir: str | None = None
    # Per-service timeout of GET /files/ping, and per-dependency timeout of GET /readyz (an
    # orchestrator's probe must answer quickly).
    ping_timeout_seconds: float = Field(
        default=2.0, validation_alias=_alias("ping_timeout_seconds")
    )
    ready_timeout_seconds: float = Field(
        default=1.0, gt=0, validation_alias=_alias("ready_timeout_seconds")
    )

    @model_validator(mode="after")
    def token_when_required(self) -> Self:
        if self.access == "token" and not (self.token and len(self.token.get_secret_value()) >= 16):
            raise ValueError("FILESTORE_METRICS_TOKEN (16+ characters) is needed for token access")
        return self


class RunSettings(Group):
    """Where `make run` and ``python -m api.serve`` listen, and with how many processes."""

    model_config = _config("RUN_")

    host: str = "127.0.0.1"
    port: int = 8080
    # Where make run's embedded SeaweedFS keeps its data.
    data_dir: str = "var"
    # API processes serving one socket (python -m api.serve): every core by default.
    api_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, validation_alias=_alias("api_processes")
    )


GROUPS: dict[str, type[Group]] = {
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "storage": StorageSettings,
    "auth": AuthSettings,
    "uploads": UploadSettings,
    "requests": RequestSettings,
    "files": FileSettings,
    "retention": RetentionSettings,
    "shares": ShareSettings,
    "worker": WorkerSettings,
    "jobs": JobSettings,
    "cors": CorsSettings,
    "observability": ObservabilitySettings,
    "run": RunSettings,
}

# A variable's name without the prefix, lower case ("s3_bucket"): its group and field.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    env.removeprefix(ENV_PREFIX).lower(): (group, field)
    for group, model in GROUPS.items()
    for field, env in model.env_names().items()
}


class Settings(BaseModel):
    """Every setting, by group; ``Settings()`` reads the environment (and ``.env``)."""

    GROUP_NAMES: ClassVar[tuple[str, ...]] = tuple(GROUPS)

    environment: Literal["development", "test", "production"] = "development"
    database: DatabaseSettings
    redis: RedisSettings
    storage: StorageSettings
    auth: AuthSettings
    uploads: UploadSettings
    requests: RequestSettings
    files: FileSettings
    retention: RetentionSettings
    shares: ShareSettings
    worker: WorkerSettings
    jobs: JobSettings
    cors: CorsSettings
    observability: ObservabilitySettings
    run: RunSettings

    def __init__(self, **values: Any) -> None:
        """Read every group not given from the environment, with the flat names in ``values``
        (``s3_bucket=...``, ``environment=...``) in place of what they name."""
        given = {name: values.pop(name) for name in list(values) if name in GROUPS}
        super().__init__(**_grouped(values, given))

    def with_changes(self, **flat: Any) -> "Settings":
        """These settings with ``flat`` changed (``redis_url=...``), validated again."""
        groups = {name: getattr(self, name) for name in GROUPS}
        return Settings(**groups, **{"environment": self.environment, **flat})

    @model_validator(mode="after")
    def refuse_dev_secrets_in_production(self) -> Self:
        if self.environment == "production":
            if self.auth.jwt_secret.get_secret_value() == DEV_SECRET:
                raise ValueError("FILESTORE_JWT_SECRET must be set in production")
            if self.auth.webhook_token.get_secret_value() == DEV_WEBHOOK_TOKEN:
                raise ValueError("FILESTORE_WEBHOOK_TOKEN must be set in production")
        return self


class _Environment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"


def _named(model: type[Group], error: ValidationError) -> str:
    """A group's validation errors, each under its environment variable's name."""
    names = model.env_names()
    lines = [f"{len(error.errors())} invalid setting(s)"]
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if not field:
            lines.append(item["msg"])
            continue
        name = names.get(field) or names.get(_field_of(model, field), field)
        lines.append(f"{name}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def _field_of(model: type[Group], alias: str) -> str:
    for name, field in model.model_fields.items():
        if (
            isinstance(field.validation_alias, str)
            and field.validation_alias.lower() == alias.lower()
        ):
            return name
    return alias


def _grouped(flat: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``flat`` names sorted into their groups, each group built whole: from the one
    ``given``, else read from the environment."""
    changes: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    environment = flat.pop("environment", None)
    for name, value in flat.items():
        if name not in FLAT_NAMES:
            raise TypeError(f"no setting named {name!r}")
        group, field = FLAT_NAMES[name]
        changes[group][field] = value
    grouped: dict[str, Any] = {}
    for group, model in GROUPS.items():
        base = given.get(group)
        try:
            if base is None:
                grouped[group] = model(**changes[group])
            elif changes[group]:
                grouped[group] = model.model_validate({**base.model_dump(), **changes[group]})
            else:
                grouped[group] = base
        except ValidationError as error:
            raise ValueError(_named(model, error)) from error
    grouped["environment"] = environment or _Environment().environment
    return grouped


@lru_cache
def get_settings() -> Settings:
    return Settings()
