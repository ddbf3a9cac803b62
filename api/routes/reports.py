"""/v1/reports: create, retrieve, list, download, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import RedirectResponse

from api.auth import current_account, enforce_create_limits, get_settings_dep
from api.errors import ReportExpired, ReportNotReady
from api.schemas import AUTHENTICATED, CreateReportBody, ReportList, ReportObject, error_responses
from exports.report_object import report_object
from exports.requests import store
from exports.scheduling.templates import validate_email_recipients, validate_webhook_url
from exports.settings import Settings

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Account = Annotated[str, Depends(current_account)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
Status = Literal[tuple(store.STATUSES)]  # type: ignore[valid-type]


# For clients and stateful testers: the id a create returns is what the other operations take.
_REPORT_LINKS = {name: {"operationId": name, "parameters": {"report_id": "$response.body#/id"}}
                 for name in ("retrieve_report", "download_report", "cancel_report",
                              "list_report_deliveries")}


@router.post("", response_model=ReportObject,
             responses={200: {"links": _REPORT_LINKS}, **error_responses(*AUTHENTICATED, 413, 409, 429)})
def create_report(body: CreateReportBody, account_id: Account, settings: SettingsDep,
                  idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
                  ) -> ReportObject:
    """Request a report. With an `Idempotency-Key`, a retry returns the report the first call
    created (without spending rate-limit budget); the same key with another body is a 409."""
    row = submit_report(account_id, body.report_type, body.parameters, body.format, settings,
                        email_to=body.email_to, webhook_url=body.webhook_url,
                        idempotency_key=idempotency_key)
    return report_object(row, settings)


def submit_report(account_id: str, report_type: str, parameters: dict, fmt: str, settings: Settings, *,
                  email_to: list[str] | None = None, webhook_url: str | None = None,
                  idempotency_key: str | None = None, requested_by: str | None = None) -> dict:
    """The one way a report is requested on demand, for this route and the web app's form:
    delivery targets checked as templates check them (email syntax, the SSRF guard), the replay
    of an Idempotency-Key, the rate limit, the engine's validation, the pending cap. Returns the
    request row; raises ReportingError naming the field."""
    new = store.NewRequest(account_id=account_id, report_type=report_type, parameters=parameters,
                           format=fmt,
                           email_recipients=validate_email_recipients(email_to, param="email_to")
                           if email_to is not None else None,
                           webhook_url=validate_webhook_url(webhook_url, settings),
                           requested_by=requested_by, idempotency_key=idempotency_key, source="api")
    replayed = store.find_replay(new, settings)
    if replayed is not None:
        return replayed
    enforce_create_limits(account_id, settings)
    from exports.reports.engine import account_timezone, validate_report_request

    validate_report_request(account_id, report_type, parameters, fmt,
                            settings=settings, account_timezone=account_timezone(account_id, settings))
    # The cap is checked under a per-account lock in the insert's transaction.
    row, _created = store.create(new, settings, max_pending=settings.max_pending_per_account)
    return row


@router.get("", response_model=ReportList, responses=error_responses(*AUTHENTICATED))
def list_reports(account_id: Account, settings: SettingsDep,
                 limit: Annotated[int, Query(ge=1, le=store.MAX_LIST_LIMIT)] = 10,
                 starting_after: Annotated[str | None, Query(max_length=255)] = None,
                 status: Status | None = None,
                 report_type: Annotated[str | None, Query(alias="type", max_length=255)] = None,
                 ) -> ReportList:
    rows, has_more = store.list_requests(account_id, limit=limit, starting_after=starting_after,
                                         status=status, report_type=report_type, settings=settings)
    return ReportList(data=[report_object(r, settings) for r in rows], has_more=has_more)


@router.get("/{report_id}", response_model=ReportObject, responses=error_responses(*AUTHENTICATED, 404))
def retrieve_report(report_id: str, account_id: Account, settings: SettingsDep) -> ReportObject:
    return report_object(store.get(report_id, account_id, settings), settings)


@router.get("/{report_id}/download", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "Redirect to a signed, expiring link to the file.",
                             "headers": {"Location": {"schema": {"type": "string"}}}},
                       **error_responses(*AUTHENTICATED, 404, 409, 410)})
def download_report(report_id: str, account_id: Account, settings: SettingsDep) -> RedirectResponse:
    row = store.get(report_id, account_id, settings)
    if row["status"] == "expired":
        raise ReportExpired(f"The file of report {report_id} was deleted when it expired; "
                            "request the report again.", param="id")
    url = report_object(row, settings).download_url
    if url is None:
        raise ReportNotReady(f"Report {report_id} is {row['status']}; a file is available only "
                             "when it is completed.", param="id")
    return RedirectResponse(url, status_code=302)


@router.post("/{report_id}/cancel", response_model=ReportObject,
             responses=error_responses(*AUTHENTICATED, 404))
def cancel_report(report_id: str, account_id: Account, settings: SettingsDep) -> ReportObject:
    """Cancel a pending or processing report; a finished one answers 400 naming its status."""
    return report_object(store.cancel(report_id, account_id, settings), settings)
