"""One settings object for every component (CLI, Dagster code, API, tests).

Every value comes from an environment variable prefixed ``PAYREPORTS_`` (or a ``.env`` file),
with embedded defaults: an embedded Postgres under the state dir, the embedded ClickHouse engine
(chdb) under the state dir, and local file storage. Production sets URLs instead; no business
code asks "am I embedded?" except the warehouse lock that chdb's single-process rule forces.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIGNING_SECRET = "dev-insecure-signing-secret-change-me"
MIN_SECRET_BYTES = 32
# Words that mark a value someone was meant to replace (the example env files used them).
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "replace-me", "example",
                       "insecure", "dev-password", "secret-here", "xxxx")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYREPORTS_", env_file=".env", extra="ignore")

    # --- where local state lives (embedded Postgres data, chdb data, files, Dagster home)
    state_dir: Path = Field(default=REPO_ROOT / ".state")

    # --- Postgres. Unset URLs mean "the embedded server under state_dir", with one database each.
    source_database_url: str | None = None  # the payment platform's OLTP (read replica in prod)
    app_database_url: str | None = None  # report_requests, templates, api keys, deliveries
    dagster_database_url: str | None = None  # Dagster's run/event/schedule storage
    embedded_postgres_port: int = 54329
    # Host:port at which the *ClickHouse engine* reaches the source Postgres for postgresql().
    # Differs from source_database_url's host when ClickHouse runs on another machine.
    source_host_for_clickhouse: str | None = None

    # --- ClickHouse: chdb:///abs/path (embedded) or http(s)://user:pass@host:8123
    clickhouse_url: str | None = None
    warehouse_raw_database: str = "raw"
    warehouse_marts_database: str = "analytics"

    # --- replication
    # Rows are re-pulled from (watermark - overlap) so a transaction that committed late with an
    # older updated_at is still picked up; ReplacingMergeTree makes the re-pull idempotent.
    replication_overlap_seconds: int = 600
    # The marts_fresh asset check fails when reports' data-available time is older than this
    # (the daily refresh plus slack).
    marts_max_lag_hours: float = 26.0

    # --- file storage for generated reports
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None  # default: <state_dir>/files
    s3_bucket: str = "payreports"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_sse: Literal["AES256", "aws:kms", "none"] = "AES256"
    s3_prefix: str = "reports"

    # --- API / downloads
    public_base_url: str = "http://127.0.0.1:8000"
    signing_secret: str = DEFAULT_SIGNING_SECRET
    download_url_ttl_seconds: int = 3600
    report_retention_days: int = 7
    environment: Literal["development", "test", "production"] = "development"
    # Per-account limits on report creation (token bucket shared by all API processes via the
    # app database) and on how many reports may wait or run at once.
    api_rate_per_second: float = 1.0
    api_rate_burst: int = 30
    max_pending_per_account: int = 100
    # Report templates: how many one account may keep, and the shortest interval between two
    # due times of a schedule (a "* * * * *" cron would otherwise queue a report every minute).
    max_templates_per_account: int = 50
    min_schedule_interval_seconds: int = 3600
    # A scheduled report that finds its account at max_pending_per_account is deferred (not
    # dropped) and retried this often until there is room.
    schedule_deferral_retry_seconds: int = 60

    # --- web app (api/web) and its embeddable reports view
    # Lifetime of an embed session token minted by POST /v1/embed_sessions (at most 10 minutes).
    embed_session_ttl_seconds: int = Field(default=600, ge=30, le=600)
    # Who may frame /embed/* (the CSP frame-ancestors sources, space-separated), e.g.
    # "https://dashboard.platform.example". Every other page of the app refuses to be framed.
    embed_frame_ancestors: str = "'self'"

    # --- reports
    max_report_span_days: int = 366
    pdf_itemized_row_limit: int = 10_000

    # --- delivery
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    email_from: str = "reports@payreports.local"
    email_attachment_max_bytes: int = 5 * 1024 * 1024
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 5
    # Webhooks to loopback/private/link-local/reserved addresses (exports/delivery/netguard.py)
    # are refused unless this is set: for development and tests only, refused in production.
    webhook_allow_private_targets: bool = False
    # After POST /v1/webhook_secret/rotate the previous secret keeps signing (a second v1=) for
    # this long, so receivers can switch without dropping events.
    webhook_secret_rotation_grace_seconds: int = 24 * 3600

    # --- database faults: give up instead of hanging (the API answers 503 with Retry-After)
    database_connect_timeout_seconds: int = Field(default=2, ge=2)  # libpq's minimum is 2
    # For the app database (report requests, templates, deliveries): its queries are small.
    database_statement_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- worker scratch space: per-run temp dirs live under <temp_root>; ones left by a killed
    # worker (owner PID gone, or older than this) are removed when a worker starts.
    temp_dir: Path | None = None  # default: <system temp>/payreports-<uid>
    stale_temp_max_age_hours: float = 24.0

    @field_validator("state_dir", "storage_dir", "temp_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @model_validator(mode="after")
    def _secure_in_production(self) -> Settings:
        """Production refuses to start with a setting that would make it unsafe; the error names
        every offending variable."""
        if self.environment != "production":
            return self
        problems = [f"{name}: {why}" for name, why in production_problems(self)]
        if problems:
            raise ValueError("insecure settings for PAYREPORTS_ENVIRONMENT=production:\n  "
                             + "\n  ".join(problems))
        return self

    # ---- derived locations
    @property
    def embedded_postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def chdb_dir(self) -> Path:
        return self.state_dir / "clickhouse"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster"

    @property
    def logs_dir(self) -> Path:
        """Logs of `payreports ui`'s processes. Not $DAGSTER_HOME/logs: Dagster's telemetry
        uploader uses that as its spool and deletes it."""
        return self.state_dir / "logs"

    @property
    def files_dir(self) -> Path:
        return self.storage_dir or (self.state_dir / "files")

    @property
    def resolved_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.chdb_dir}"

    @property
    def warehouse_is_embedded(self) -> bool:
        return self.resolved_clickhouse_url.startswith("chdb:")

    @property
    def secure_cookies(self) -> bool:
        """Session cookies get the Secure flag in production or whenever served over https."""
        return self.environment == "production" or self.public_base_url.startswith("https://")

    @property
    def uses_embedded_postgres(self) -> bool:
        return not (self.source_database_url and self.app_database_url and self.dagster_database_url)


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS) or len(set(value)) < 8


def production_problems(settings: Settings) -> list[tuple[str, str]]:
    """(variable, reason) for each setting that production must not run with."""
    from urllib.parse import urlsplit

    problems: list[tuple[str, str]] = []
    secret = settings.signing_secret
    if secret == DEFAULT_SIGNING_SECRET or _is_placeholder(secret):
        problems.append(("PAYREPORTS_SIGNING_SECRET", "is the default or a placeholder; "
                         "generate one with `openssl rand -hex 32`"))
    elif len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(("PAYREPORTS_SIGNING_SECRET",
                         f"must be at least {MIN_SECRET_BYTES} bytes (got {len(secret.encode())})"))
    if settings.uses_embedded_postgres:
        missing = [f"PAYREPORTS_{name.upper()}" for name in
                   ("source_database_url", "app_database_url", "dagster_database_url")
                   if not getattr(settings, name)]
        problems.append((", ".join(missing), "must be set: the embedded Postgres accepts every local "
                         "connection as superuser without a password"))
    if settings.webhook_allow_private_targets:
        problems.append(("PAYREPORTS_WEBHOOK_ALLOW_PRIVATE_TARGETS",
                         "lets accounts make the workers POST to internal services; unset it"))
    base = urlsplit(settings.public_base_url)
    if base.scheme != "https" and base.hostname not in ("127.0.0.1", "localhost", "::1"):
        problems.append(("PAYREPORTS_PUBLIC_BASE_URL",
                         "must be https (signed download links would travel in the clear)"))
    if (settings.smtp_username or settings.smtp_password) and not (settings.smtp_starttls or settings.smtp_ssl):
        problems.append(("PAYREPORTS_SMTP_STARTTLS",
                         "SMTP credentials would be sent in the clear; set PAYREPORTS_SMTP_STARTTLS "
                         "or PAYREPORTS_SMTP_SSL"))
    for name in ("source_database_url", "app_database_url", "dagster_database_url", "clickhouse_url"):
        url = getattr(settings, name)
        password = urlsplit(url).password if url else None
        if password and _is_placeholder(password):
            problems.append((f"PAYREPORTS_{name.upper()}", "carries a placeholder or trivial password"))
    if settings.s3_secret_access_key and _is_placeholder(settings.s3_secret_access_key):
        problems.append(("PAYREPORTS_S3_SECRET_ACCESS_KEY", "is a placeholder or trivial"))
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """For tests and CLIs that change PAYREPORTS_* variables at run time."""
    get_settings.cache_clear()
