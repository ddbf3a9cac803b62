"""/v1/report_types: the catalog, with the data availability every report is bounded by."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import current_account, get_settings_dep
from api.schemas import AUTHENTICATED, ReportTypeList, error_responses
from exports.report_object import unix
from exports.settings import Settings

router = APIRouter(prefix="/v1/report_types", tags=["report types"])


def _unix_or_none(value) -> int | None:
    return unix(value) if isinstance(value, datetime) else value


@router.get("", response_model=ReportTypeList, responses=error_responses(*AUTHENTICATED))
def list_report_types(_account: Annotated[str, Depends(current_account)],
                      settings: Annotated[Settings, Depends(get_settings_dep)]) -> dict:
    from exports.reports.catalog import list_report_types as catalog_types

    data = []
    for entry in catalog_types(settings):
        item = {"object": "report_type", **entry}
        # The catalog speaks datetimes; the API speaks Unix seconds, like every other timestamp.
        for key in ("data_available_start", "data_available_end"):
            item[key] = _unix_or_none(item.get(key))
        data.append(item)
    return {"object": "list", "url": "/v1/report_types", "data": data, "has_more": False}
