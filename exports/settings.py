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

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    signing_secret: str = "dev-insecure-signing-secret-change-me"
    download_url_ttl_seconds: int = 3600
    report_retention_days: int = 7
    environment: Literal["development", "test", "production"] = "development"
    # Per-account limits on report creation (token bucket shared by all API processes via the
    # app database) and on how many reports may wait or run at once.
    api_rate_per_second: float = 1.0
    api_rate_burst: int = 30
    max_pending_per_account: int = 100

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

    @field_validator("state_dir", "storage_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """For tests and CLIs that change PAYREPORTS_* variables at run time."""
    get_settings.cache_clear()
