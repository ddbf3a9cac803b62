"""/v1/report_templates: saved report definitions with an optional schedule and delivery targets.

Account-scoped: another account's template answers 404 exactly like a missing one. Validation
errors are 400s naming the field (schedule_cron, timezone, email_recipients[i], webhook_url,
parameters.<name>, ...)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from api.auth import current_account, enforce_create_limits, get_settings_dep
from exports.errors import InvalidParameter
from exports.scheduling import templates
from exports.settings import Settings

router = APIRouter(prefix="/v1/report_templates", tags=["report templates"])

Account = Annotated[str, Depends(current_account)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
JsonBody = Annotated[Any, Body()]


def _object_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.", param="body")
    return body


@router.post("", status_code=200)
def create_template(body: JsonBody, account_id: Account, settings: SettingsDep) -> dict:
    enforce_create_limits(account_id, settings)  # the same per-account budget as report creation
    row = templates.create_template(account_id, _object_body(body), settings=settings)
    return templates.to_api(row)


@router.get("")
def list_templates(account_id: Account, settings: SettingsDep) -> dict:
    rows = templates.list_templates(account_id, settings=settings)
    return {"object": "list", "data": [templates.to_api(r) for r in rows], "has_more": False}


@router.get("/{template_id}")
def retrieve_template(template_id: str, account_id: Account, settings: SettingsDep) -> dict:
    return templates.to_api(templates.get_template(template_id, account_id, settings=settings))


@router.post("/{template_id}")
@router.patch("/{template_id}")
def update_template(template_id: str, body: JsonBody, account_id: Account, settings: SettingsDep) -> dict:
    row = templates.update_template(template_id, account_id, _object_body(body), settings=settings)
    return templates.to_api(row)


@router.delete("/{template_id}")
def delete_template(template_id: str, account_id: Account, settings: SettingsDep) -> dict:
    row = templates.delete_template(template_id, account_id, settings=settings)
    return {"id": row["id"], "object": "report_template", "deleted": True}
