"""Request and response bodies of the Report API (Stripe-like objects), and the error responses
each route documents. Timestamps are Unix seconds everywhere.

Request bodies are strict: a JSON value of the wrong type is a 400 naming the field, never
coerced ("false" is not a boolean), and unknown fields are rejected whatever their value."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.errors import ErrorResponse
from exports.report_object import ReportObject
from exports.scheduling.templates import (
    MAX_ADDRESS_CHARS, MAX_RECIPIENTS, FormatName, NewTemplate, Parameters, ReportTypeName,
    TemplateChanges,
)

__all__ = ["CreateReportBody", "ReportObject", "ReportList", "NewTemplate", "TemplateChanges",
           "error_responses"]


class CreateReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"report_type": "balance.summary", "format": "csv",
         "parameters": {"interval_start": "2024-05-01", "interval_end": "2024-06-01",
                        "timezone": "Europe/Berlin"}},
        {"report_type": "balance_change_from_activity.itemized", "format": "xlsx",
         "parameters": {"relative_range": "last_month", "currency": "usd"},
         "email_to": ["finance@example.com"]},
    ]})

    report_type: ReportTypeName
    parameters: Parameters = Field(default_factory=dict)
    format: FormatName = "csv"
    email_to: list[Annotated[str, Field(max_length=MAX_ADDRESS_CHARS)]] | None = Field(
        default=None, max_length=MAX_RECIPIENTS, description="Who gets the report by email.")
    webhook_url: Annotated[str, WithJsonSchema(
        {"type": "string", "maxLength": 500, "pattern": "^$|^[Hh][Tt][Tt][Pp][Ss]?://"})] | None = Field(
        default=None, description="Where the report.succeeded / report.failed event is POSTed "
                                  "(empty: none).")


class ReportList(BaseModel):
    object: Literal["list"] = "list"
    url: str = "/v1/reports"
    data: list[ReportObject]
    has_more: bool


class TemplateObject(BaseModel):
    id: str
    object: Literal["report_template"] = "report_template"
    name: str
    description: str | None
    report_type: str
    parameters: dict[str, Any]
    format: str
    schedule_enabled: bool
    schedule_cron: str | None
    timezone: str
    relative_range: str | None
    catch_up: str
    email_recipients: list[str]
    webhook_url: str | None
    next_run_at: int | None
    last_scheduled_for: int | None
    created: int
    updated: int


class TemplateList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TemplateObject]
    has_more: bool


class DeletedTemplate(BaseModel):
    id: str
    object: Literal["report_template"] = "report_template"
    deleted: Literal[True] = True


class DeliveryAttempt(BaseModel):
    attempt: int
    status: str = Field(description="sent or failed")
    error: str | None
    response_code: int | None
    at: int


class DeliveryObject(BaseModel):
    id: str
    object: Literal["delivery"] = "delivery"
    report: str
    channel: str = Field(description="email, webhook or in_app")
    target: str
    event: str = Field(description="report.succeeded or report.failed")
    status: str = Field(description="pending, sent or failed")
    attempt_count: int
    next_attempt_at: int | None
    last_error: str | None
    sent_at: int | None
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryObject]


class NotificationObject(BaseModel):
    id: str
    object: Literal["notification"] = "notification"
    event: str
    report: str
    title: str
    body: str
    created: int
    read_at: int | None


class NotificationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[NotificationObject]


class WebhookSecret(BaseModel):
    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str


class ReportTypeObject(BaseModel):
    # The catalog's entry (exports.reports.catalog.describe) may grow fields: allowed here.
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["report_type"] = "report_type"
    title: str
    description: str
    data_available_start: int | None = Field(description="Unix seconds; null when unknown.")
    data_available_end: int | None = Field(
        description="Unix seconds: reports may cover time strictly before this; null while "
                    "nothing has been replicated.")


class ReportTypeList(BaseModel):
    object: Literal["list"] = "list"
    url: str = "/v1/report_types"
    data: list[ReportTypeObject]
    has_more: bool


_DESCRIPTIONS = {
    400: "Invalid request: `error.param` names the field.",
    401: "No API key, or an invalid or revoked one.",
    403: "A restricted API key without the scope this route needs, or (downloads) a link that is "
         "invalid or has expired.",
    404: "No such object (another account's objects are not found either).",
    409: "Conflict with the object's state (an Idempotency-Key reused with another body, a report "
         "not ready for download) or a per-account limit reached (report templates).",
    410: "The report's file was deleted when it expired.",
    413: "The request body is larger than the API accepts (2 MiB).",
    429: "Too many requests or too many pending reports: retry after `Retry-After` seconds.",
    503: "A service the API needs (the database) is unavailable: retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, each with the error body; every route that
    reads the database can also answer 503."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted({*codes, 503}):
        out[code] = {"model": ErrorResponse, "description": _DESCRIPTIONS[code]}
        if code in (429, 503):
            out[code]["headers"] = _RETRY_AFTER
    return out


AUTHENTICATED = (400, 401, 403)  # 403: a restricted API key without the route's scope
