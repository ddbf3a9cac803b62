"""Who is calling (Bearer API key -> account), what a restricted key may do (scopes), and how
often they may create reports.

A standard key (scopes NULL) may do everything the API offers its account. A restricted key may
only call routes whose scope it holds: the scope is derived here, in one place, from the route's
path and method (`required_scope`), so every route is covered — a route under no known resource
is refused to restricted keys rather than silently allowed. A `:write` scope includes `:read`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import AuthenticationFailed
from exports.errors import InvalidParameter, RateLimited, ReportingError
from exports.requests import store
from exports.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SCOPES: dict[str, str] = {
    "reports:read": "list, retrieve and download reports; the report catalog",
    "reports:write": "request and cancel reports",
    "templates:read": "list and retrieve report templates",
    "templates:write": "create, change and delete report templates and schedules",
    "notifications:read": "list in-app notifications",
    "notifications:write": "mark notifications read",
    "webhooks:read": "read the webhook signing secret",
    "webhooks:write": "rotate the webhook signing secret",
    "embed:write": "mint embedded-component sessions for the account",
}
# Path prefix -> resource; the longest matching prefix wins.
_RESOURCES: tuple[tuple[str, str], ...] = (
    ("/v1/report_templates", "templates"),
    ("/v1/report_types", "reports"),
    ("/v1/reports", "reports"),
    ("/v1/notifications", "notifications"),
    ("/v1/webhook_secret", "webhooks"),
    ("/v1/embed_sessions", "embed"),
)


class PermissionDenied(ReportingError):
    http_status = 403
    error_type = "permission_error"
    code = "api_key_scope_missing"


@dataclass(frozen=True)
class ApiKey:
    id: str
    account_id: str
    scopes: tuple[str, ...] | None  # None: a standard key

    def allows(self, scope: str | None) -> bool:
        if self.scopes is None:
            return True
        if scope is None:
            return False
        resource, _, access = scope.partition(":")
        return scope in self.scopes or (access == "read" and f"{resource}:write" in self.scopes)


def validate_scopes(scopes: list[str], param: str = "scopes") -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidParameter(f"Unknown scope {unknown[0]!r}; scopes are: {', '.join(SCOPES)}",
                               param=param)
    if not scopes:
        raise InvalidParameter("A restricted key needs at least one scope", param=param)
    return sorted(set(scopes))


def required_scope(request: Request) -> str | None:
    """The scope a restricted key needs for this request, from the matched route's path
    template and the method (GET/HEAD read, anything else writes); None for unknown routes."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    matches = [(prefix, resource) for prefix, resource in _RESOURCES
               if path == prefix or path.startswith(prefix + "/")]
    if not matches:
        return None
    resource = max(matches, key=lambda m: len(m[0]))[1]
    return f"{resource}:{'read' if request.method in ('GET', 'HEAD') else 'write'}"


# Declares the bearer scheme in the OpenAPI document (every route depending on current_key lists
# it); auto_error=False so a missing key is our 401 in the API's error shape.
_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="An API key: `Authorization: Bearer rk_...`.")


def current_key(request: Request, settings: Settings = Depends(get_settings_dep),
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
                ) -> ApiKey:
    secret = credentials.credentials if credentials is not None else ""
    if not secret.strip():
        raise AuthenticationFailed("You did not provide an API key. Use 'Authorization: Bearer <key>'.",
                                   param="Authorization")
    row = store.key_for_secret(secret.strip(), settings)
    if row is None:
        raise AuthenticationFailed("Invalid or revoked API key provided.", param="Authorization")
    key = ApiKey(row["id"], row["account_id"], tuple(row["scopes"]) if row["scopes"] is not None else None)
    request.state.account_id = key.account_id  # for the request's log line (api/app.py)
    scope = required_scope(request)
    if not key.allows(scope):
        needed = f"the {scope} scope" if scope else "a standard (unrestricted) key"
        raise PermissionDenied(f"This restricted API key ({key.id}) cannot do this: it needs {needed}. "
                               f"Its scopes: {', '.join(key.scopes or ()) or 'none'}.",
                               param="Authorization")
    return key


def current_account(key: ApiKey = Depends(current_key)) -> str:
    return key.account_id


def enforce_create_limits(account_id: str, settings: Settings) -> None:
    wait = store.take_rate_token(account_id, rate_per_second=settings.api_rate_per_second,
                                 burst=settings.api_rate_burst, settings=settings)
    if wait > 0:
        raise RateLimited("Too many report requests for this account; retry after the indicated delay.",
                          retry_after_seconds=max(1, int(wait + 0.999)))

