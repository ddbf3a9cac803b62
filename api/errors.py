"""API-only errors and the handlers that render every error in one Stripe-like shape:
{"error": {"type", "code", "param", "message"}}."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exports.errors import RateLimited, ReportingError
from exports.services.postgres import EmbeddedPostgresError

log = logging.getLogger("api.errors")
DATABASE_RETRY_AFTER_SECONDS = 2


class AuthenticationFailed(ReportingError):
    http_status = 401
    error_type = "authentication_error"
    code = "api_key_invalid"


class ReportNotReady(ReportingError):
    http_status = 409
    code = "report_not_ready"


class ReportExpired(ReportingError):
    http_status = 410
    code = "report_expired"


class DownloadForbidden(ReportingError):
    http_status = 403
    code = "download_link_invalid"


def _body(error_type: str, code: str, param: str | None, message: str) -> dict:
    return {"error": {"type": error_type, "code": code, "param": param, "message": message}}


def _param_from_loc(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReportingError)
    async def reporting_error(_: Request, exc: ReportingError) -> JSONResponse:
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after_seconds)))
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Unreachable, stalled (connect timeout), restarting, or a statement over its timeout:
        # the request was not carried out (nothing half-done: each change is one transaction),
        # so the client retries — with its Idempotency-Key, a replay can never duplicate.
        log.warning("database unavailable: %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0],
                    extra={"path": request.url.path})
        return JSONResponse(
            _body("api_error", "database_unavailable", None,
                  "The service's database is temporarily unavailable; retry after the indicated delay."),
            status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})

    # The embedded server (development) raises its own error when it cannot be reached.
    for database_error in (psycopg.OperationalError, EmbeddedPostgresError):
        app.add_exception_handler(database_error, database_unavailable)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = _param_from_loc(tuple(first.get("loc", ())))
        message = first.get("msg", "invalid request")
        if param:
            message = f"{param}: {message}"
        return JSONResponse(_body("invalid_request_error", "parameter_invalid", param, message),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "resource_missing", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(_body("invalid_request_error", code, None, str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))
