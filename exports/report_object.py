"""The report as clients see it: the one serializer of a `report_requests` row, used by the Report
API's responses and by webhook events (`data.object`), so both see the same object.

Timestamps are Unix seconds. `download_url` is set only while the report is completed and its
file exists; the link lives `settings.download_url_ttl_seconds` (and never past the file's
expiry) — an API client or webhook receiver holding a stale link gets a fresh one from
`GET /v1/reports/{id}`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from exports.reports.params import file_options
from exports.requests.store import PRIORITY_BY_SOURCE, STATUSES
from exports.settings import Settings
from exports.storage import get_storage


class ReportError(BaseModel):
    message: str = Field(description="Why the report failed, in words a user can act on.")


class ReportObject(BaseModel):
    id: str
    object: Literal["report"] = "report"
    report_type: str
    status: str = Field(description=f"One of {', '.join(STATUSES)}.")
    status_reason: str | None = Field(
        default=None, description="Why a pending report is not being generated yet: "
                                  "\"waiting for data up to …\", \"retrying …\".")
    progress: int = Field(ge=0, le=100)
    parameters: dict[str, Any]
    format: str
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The file options this format uses, as applied (defaults included): csv_bom "
                    "and timestamp_format for CSV, locale for PDF. Set them in `parameters`.")
    row_count: int | None = None
    file_size: int | None = Field(default=None, description="Bytes.")
    sha256: str | None = None
    totals_minor: dict[str, Any] | None = Field(
        default=None, description="Totals of the report's money columns, integers in minor units.")
    created_at: int
    started_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = Field(default=None, description="When the file is deleted.")
    data_version: int | None = None
    error: ReportError | None = None
    download_url: str | None = Field(default=None, description="A signed, expiring link to the file.")
    download_url_expires_at: int | None = None
    source: str = Field(default="api", description=f"One of {', '.join(PRIORITY_BY_SOURCE)}.")
    template: str | None = Field(default=None, description="The report template that requested it.")
    scheduled_for: int | None = Field(default=None, description="The schedule's due time it covers.")


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _link_ttl(row: dict[str, Any], settings: Settings, now: float) -> int:
    ttl = settings.download_url_ttl_seconds
    if row.get("expires_at") is not None:
        ttl = min(ttl, int(row["expires_at"].timestamp() - now))
    return max(ttl, 1)


def report_object(row: dict[str, Any], settings: Settings, *, now: float | None = None) -> ReportObject:
    now = time.time() if now is None else now
    download_url = download_expires = None
    if row["status"] == "completed" and row.get("file_key"):
        ttl = _link_ttl(row, settings, now)
        download_url = get_storage(settings).download_url(
            row["file_key"], ttl, row["file_key"].rsplit("/", 1)[-1])
        download_expires = int(now + ttl)
    return ReportObject(
        id=row["id"], report_type=row["report_type"], status=row["status"],
        status_reason=row.get("status_reason"), progress=row.get("progress") or 0,
        parameters=row["parameters"] or {}, format=row["format"],
        options=((row.get("manifest") or {}).get("extra") or {}).get("options")
        or file_options(row["format"], row["parameters"]),
        row_count=row.get("row_count"), file_size=row.get("file_size_bytes"), sha256=row.get("sha256"),
        totals_minor=(row.get("manifest") or {}).get("totals_minor"),
        created_at=unix(row["created_at"]), started_at=unix(row.get("started_at")),
        completed_at=unix(row.get("completed_at")), expires_at=unix(row.get("expires_at")),
        data_version=unix(row.get("data_version")),
        error=ReportError(message=row["error_message"]) if row.get("error_message") else None,
        download_url=download_url, download_url_expires_at=download_expires,
        source=row.get("source") or "api", template=row.get("template_id"),
        scheduled_for=unix(row.get("scheduled_for")),
    )
