"""Who is calling (Bearer API key -> account) and how often they may create reports."""

from __future__ import annotations

from fastapi import Depends, Request

from api.errors import AuthenticationFailed
from exports.errors import RateLimited
from exports.requests import store
from exports.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def current_account(request: Request, settings: Settings = Depends(get_settings_dep)) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationFailed("You did not provide an API key. Use 'Authorization: Bearer <key>'.",
                                   param="Authorization")
    account = store.account_for_key(secret.strip(), settings)
    if account is None:
        raise AuthenticationFailed("Invalid or revoked API key provided.", param="Authorization")
    request.state.account_id = account  # for the request's log line (api/app.py)
    return account


def enforce_create_limits(account_id: str, settings: Settings) -> None:
    wait = store.take_rate_token(account_id, rate_per_second=settings.api_rate_per_second,
                                 burst=settings.api_rate_burst, settings=settings)
    if wait > 0:
        raise RateLimited("Too many report requests for this account; retry after the indicated delay.",
                          retry_after_seconds=max(1, int(wait + 0.999)))

