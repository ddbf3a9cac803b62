"""/v1/reports: create, retrieve, list, download, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import RedirectResponse

from api.auth import current_account, enforce_create_limits, get_settings_dep
from api.errors import ReportExpired, ReportNotReady
from api.schemas import CreateReportBody, ReportList, ReportObject, report_object
from exports.requests import store
from exports.settings import Settings
from exports.storage import get_storage

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Account = Annotated[str, Depends(current_account)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _download_url(row: dict, settings: Settings) -> str | None:
    if row["status"] != "completed" or not row["file_key"]:
        return None
    filename = row["file_key"].rsplit("/", 1)[-1]
    return get_storage(settings).download_url(row["file_key"], settings.download_url_ttl_seconds, filename)


def _object(row: dict, settings: Settings) -> ReportObject:
    return report_object(row, _download_url(row, settings))


@router.post("", response_model=ReportObject, response_model_exclude_none=False)
def create_report(body: CreateReportBody, account_id: Account, settings: SettingsDep,
                  idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> ReportObject:
    enforce_create_limits(account_id, settings)
    from exports.reports.engine import account_timezone, validate_report_request

    validate_report_request(account_id, body.report_type, body.parameters, body.format,
                            settings=settings, account_timezone=account_timezone(account_id, settings))
    from exports.scheduling.templates import validate_webhook_url

    new = store.NewRequest(account_id=account_id, report_type=body.report_type,
                           parameters=body.parameters, format=body.format,
                           email_recipients=body.email_to,
                           webhook_url=validate_webhook_url(body.webhook_url, settings),
                           idempotency_key=idempotency_key, source="api")
    # The cap is checked under a per-account lock in the insert's transaction (a replay of an
    # accepted request is returned even at the cap).
    row, _created = store.create(new, settings, max_pending=settings.max_pending_per_account)
    return _object(row, settings)


@router.get("", response_model=ReportList)
def list_reports(account_id: Account, settings: SettingsDep,
                 limit: Annotated[int, Query(ge=1, le=store.MAX_LIST_LIMIT)] = 10,
                 starting_after: str | None = None, status: str | None = None,
                 report_type: str | None = Query(default=None, alias="type")) -> ReportList:
    rows, has_more = store.list_requests(account_id, limit=limit, starting_after=starting_after,
                                         status=status, report_type=report_type, settings=settings)
    return ReportList(data=[_object(r, settings) for r in rows], has_more=has_more)


@router.get("/{report_id}", response_model=ReportObject)
def retrieve_report(report_id: str, account_id: Account, settings: SettingsDep) -> ReportObject:
    return _object(store.get(report_id, account_id, settings), settings)


@router.get("/{report_id}/download", status_code=302, response_class=RedirectResponse)
def download_report(report_id: str, account_id: Account, settings: SettingsDep) -> RedirectResponse:
    row = store.get(report_id, account_id, settings)
    if row["status"] == "expired":
        raise ReportExpired(f"The file of report {report_id} was deleted when it expired; "
                            "request the report again.", param="id")
    url = _download_url(row, settings)
    if url is None:
        raise ReportNotReady(f"Report {report_id} is {row['status']}; a file is available only "
                             "when it is completed.", param="id")
    return RedirectResponse(url, status_code=302)


@router.post("/{report_id}/cancel", response_model=ReportObject)
def cancel_report(report_id: str, account_id: Account, settings: SettingsDep) -> ReportObject:
    return _object(store.cancel(report_id, account_id, settings), settings)
