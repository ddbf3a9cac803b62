"""/v1/report_types: the catalog, with the data availability every report is bounded by."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import current_account, get_settings_dep
from api.schemas import unix
from exports.settings import Settings

router = APIRouter(prefix="/v1/report_types", tags=["report types"])


@router.get("")
def list_report_types(_account: Annotated[str, Depends(current_account)],
                      settings: Annotated[Settings, Depends(get_settings_dep)]) -> dict:
    from exports.reports.catalog import list_report_types as catalog_types
    from exports.replication import data_available_end

    available_end = unix(data_available_end(settings))
    data = []
    for entry in catalog_types(settings):
        item = {"object": "report_type", **entry}
        item.setdefault("data_available_end", available_end)
        data.append(item)
    return {"object": "list", "url": "/v1/report_types", "data": data, "has_more": False}
