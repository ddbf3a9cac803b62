"""Request and response bodies of the Report API (Stripe-like objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CreateReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_type: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)
    format: str = "csv"
    email_to: list[str] | None = Field(default=None, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")


class ReportError(BaseModel):
    message: str


class ReportObject(BaseModel):
    id: str
    object: Literal["report"] = "report"
    report_type: str
    status: str
    # Why a pending report is not being generated yet: "waiting for data up to …", "retrying …".
    status_reason: str | None = None
    progress: int
    parameters: dict[str, Any]
    format: str
    row_count: int | None = None
    file_size: int | None = None
    sha256: str | None = None
    created_at: int
    started_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    data_version: int | None = None
    error: ReportError | None = None
    download_url: str | None = None
    source: str = "api"


class ReportList(BaseModel):
    object: Literal["list"] = "list"
    url: str = "/v1/reports"
    data: list[ReportObject]
    has_more: bool


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def report_object(row: dict, download_url: str | None = None) -> ReportObject:
    return ReportObject(
        id=row["id"], report_type=row["report_type"], status=row["status"],
        status_reason=row.get("status_reason"), progress=row["progress"],
        parameters=row["parameters"], format=row["format"], row_count=row["row_count"],
        file_size=row["file_size_bytes"], sha256=row["sha256"], created_at=unix(row["created_at"]),
        started_at=unix(row["started_at"]), completed_at=unix(row["completed_at"]),
        expires_at=unix(row["expires_at"]), data_version=unix(row["data_version"]),
        error=ReportError(message=row["error_message"]) if row["error_message"] else None,
        download_url=download_url, source=row["source"],
    )
