"""Who is calling (Bearer API key -> account) and how often they may create reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import AuthenticationFailed
from exports.errors import RateLimited
from exports.requests import store
from exports.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


# Declares the bearer scheme in the OpenAPI document (every route depending on current_account
# lists it); auto_error=False so a missing key is our 401 in the API's error shape.
_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey", description="An API key: `Authorization: Bearer rk_...`.")


def current_account(request: Request, settings: Settings = Depends(get_settings_dep),
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
                    ) -> str:
    secret = credentials.credentials if credentials is not None else ""
    if not secret.strip():
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

