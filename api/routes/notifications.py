"""In-app notifications, the delivery record of a report, and the webhook signing secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import current_account, get_settings_dep
from api.schemas import (
    AUTHENTICATED, DeliveryList, NotificationList, NotificationObject, WebhookSecret, error_responses,
)
from exports.delivery import dispatch, notifications, webhooks
from exports.errors import NotFound
from exports.settings import Settings

router = APIRouter(tags=["notifications"])

Account = Annotated[str, Depends(current_account)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@router.get("/v1/notifications", response_model=NotificationList,
            responses=error_responses(*AUTHENTICATED))
def list_notifications(account_id: Account, settings: SettingsDep,
                       limit: Annotated[int, Query(ge=1, le=notifications.MAX_LIST_LIMIT)] = 20,
                       unread: bool = False) -> dict:
    """The account's notifications, newest first."""
    rows = notifications.list_notifications(account_id, limit=limit, unread_only=unread, settings=settings)
    return {"object": "list", "data": [notifications.to_api(r) for r in rows]}


@router.post("/v1/notifications/{notification_id}/read", response_model=NotificationObject,
             responses=error_responses(*AUTHENTICATED, 404))
def mark_notification_read(notification_id: str, account_id: Account, settings: SettingsDep) -> dict:
    row = notifications.mark_read(account_id, notification_id, settings=settings)
    if row is None:
        raise NotFound(f"No such notification: '{notification_id}'", param="id")
    return notifications.to_api(row)


@router.get("/v1/reports/{report_id}/deliveries", response_model=DeliveryList,
            responses=error_responses(*AUTHENTICATED, 404))
def list_report_deliveries(report_id: str, account_id: Account, settings: SettingsDep) -> dict:
    """Every email, webhook and in-app delivery of the report, with each attempt."""
    rows = dispatch.list_deliveries(report_id, account_id, settings)
    return {"object": "list", "data": [dispatch.delivery_to_api(r) for r in rows]}


# The secret is in the body: api.app marks every /v1 response Cache-Control: no-store.
@router.get("/v1/webhook_secret", response_model=WebhookSecret, responses=error_responses(*AUTHENTICATED))
def get_webhook_secret(account_id: Account, settings: SettingsDep) -> dict:
    """The secret that signs this account's webhook events (see docs/webhooks.md)."""
    return {"object": "webhook_secret", "secret": webhooks.webhook_secret(account_id, settings)}


@router.post("/v1/webhook_secret/rotate", response_model=WebhookSecret,
             responses=error_responses(*AUTHENTICATED))
def rotate_webhook_secret(account_id: Account, settings: SettingsDep) -> dict:
    return {"object": "webhook_secret",
            "secret": webhooks.webhook_secret(account_id, settings, rotate=True)}
