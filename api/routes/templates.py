"""/v1/report_templates: saved report definitions with an optional schedule and delivery targets.

Account-scoped: another account's template answers 404 exactly like a missing one. Validation
errors are 400s naming the field (schedule_cron, timezone, email_recipients[i], webhook_url,
parameters.<name>, ...); JSON values of the wrong type are 400s too, never coerced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import current_account, enforce_create_limits, get_settings_dep
from api.schemas import (
    AUTHENTICATED, DeletedTemplate, NewTemplate, TemplateChanges, TemplateList, TemplateObject,
    error_responses,
)
from exports.scheduling import templates
from exports.settings import Settings

router = APIRouter(prefix="/v1/report_templates", tags=["report templates"])

Account = Annotated[str, Depends(current_account)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


_TEMPLATE_LINKS = {name: {"operationId": name, "parameters": {"template_id": "$response.body#/id"}}
                   for name in ("retrieve_template", "update_template", "update_template_patch",
                                "delete_template")}


@router.post("", status_code=200, response_model=TemplateObject,
             responses={200: {"links": _TEMPLATE_LINKS}, **error_responses(*AUTHENTICATED, 409, 413, 429)})
def create_template(body: NewTemplate, account_id: Account, settings: SettingsDep) -> dict:
    enforce_create_limits(account_id, settings)  # the same per-account budget as report creation
    row = templates.create_template(account_id, body.model_dump(exclude_unset=True), settings=settings)
    return templates.to_api(row)


@router.get("", response_model=TemplateList, responses=error_responses(*AUTHENTICATED))
def list_templates(account_id: Account, settings: SettingsDep) -> dict:
    rows = templates.list_templates(account_id, settings=settings)
    return {"object": "list", "data": [templates.to_api(r) for r in rows], "has_more": False}


@router.get("/{template_id}", response_model=TemplateObject,
            responses=error_responses(*AUTHENTICATED, 404))
def retrieve_template(template_id: str, account_id: Account, settings: SettingsDep) -> dict:
    return templates.to_api(templates.get_template(template_id, account_id, settings=settings))


@router.post("/{template_id}", response_model=TemplateObject,
             responses=error_responses(*AUTHENTICATED, 404, 413))
@router.patch("/{template_id}", response_model=TemplateObject, operation_id="update_template_patch",
              responses=error_responses(*AUTHENTICATED, 404, 413))
def update_template(template_id: str, body: TemplateChanges, account_id: Account,
                    settings: SettingsDep) -> dict:
    """Change the fields given. Null clears an optional field (description, relative_range,
    email_recipients, webhook_url; schedule_cron together with schedule_enabled false) or
    restores its default (timezone UTC, catch_up latest); name, report_type and format cannot
    be null."""
    row = templates.update_template(template_id, account_id, body.model_dump(exclude_unset=True),
                                    settings=settings)
    return templates.to_api(row)


@router.delete("/{template_id}", response_model=DeletedTemplate,
               responses=error_responses(*AUTHENTICATED, 404))
def delete_template(template_id: str, account_id: Account, settings: SettingsDep) -> dict:
    row = templates.delete_template(template_id, account_id, settings=settings)
    return {"id": row["id"], "object": "report_template", "deleted": True}
