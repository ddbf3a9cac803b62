"""API-only errors and the handlers that render every error in one Stripe-like shape:
{"error": {"type", "code", "param", "message"}} — 500s included (with the request id, so a user
can quote it and an operator can find the log line).

Messages never echo large input back: each is clipped to MAX_MESSAGE_CHARS."""

from __future__ import annotations

import logging
import re

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from exports.errors import RateLimited, ReportingError, invalid_parameter_from, param_from_loc
from exports.services.postgres import EmbeddedPostgresError

log = logging.getLogger("api.errors")
DATABASE_RETRY_AFTER_SECONDS = 2
# Long enough for the longest list of choices a message offers, short enough that a 1 MB input
# is not sent back.
MAX_MESSAGE_CHARS = 2000


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


class ErrorDetail(BaseModel):
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, "
                                  "rate_limit_error or api_error.")
    code: str
    param: str | None = Field(description="The field the error is about (dotted for nested "
                                          "fields, [i] for list items), if any.")
    message: str
    request_id: str | None = Field(default=None, description="Set on server errors: quote it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _body(error_type: str, code: str, param: str | None, message: str) -> dict:
    return {"error": {"type": error_type, "code": code, "param": clip(param, 200) if param else param,
                      "message": clip(message)}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReportingError)
    async def reporting_error(_: Request, exc: ReportingError) -> JSONResponse:
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, int(exc.retry_after_seconds)))
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(_body(exc.error_type, exc.code, exc.param, exc.message),
                            status_code=exc.http_status, headers=headers)

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
        loc = tuple(first.get("loc", ()))
        param = param_from_loc(loc)
        if (param is None and loc[:1] == ("body",)) or first.get("type") == "json_invalid":
            param = "body"
        error = invalid_parameter_from(first, param)
        return JSONResponse(_body(error.error_type, error.code, param, error.message), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "resource_missing", 405: "method_not_allowed",
                413: "body_too_large"}.get(exc.status_code, "http_error")
        param = None
        if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
            code, param = "parameter_invalid", "body"
        elif exc.status_code == 413:
            param = "body"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            # Starlette names the methods of the first route matching the path only; a path
            # served by several routes (GET + POST /v1/report_templates) allows all of theirs.
            headers["Allow"] = allowed
        return JSONResponse(_body("invalid_request_error", code, param, str(exc.detail)),
                            status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str | None:
    """The methods the OpenAPI document lists for the request's path (None if undocumented)."""
    patterns = getattr(request.app.state, "allow_patterns", None)
    if patterns is None:
        patterns = request.app.state.allow_patterns = [
            (re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
             ", ".join(sorted(method.upper() for method in item)))
            for path, item in request.app.openapi().get("paths", {}).items()]
    for pattern, methods in patterns:
        if pattern.match(request.url.path):
            return methods
    return None


def body_too_large_response(limit: int) -> JSONResponse:
    return JSONResponse(_body("invalid_request_error", "body_too_large", "body",
                              f"The request body is larger than {limit} bytes."), status_code=413)


def server_error_response(request_id: str) -> JSONResponse:
    """The body of an unexpected failure: no internals, the id to quote."""
    body = _body("api_error", "internal_error", None,
                 f"Something went wrong on our side; it has been logged. Quote request id "
                 f"{request_id} if you contact support.")
    body["error"]["request_id"] = request_id
    return JSONResponse(body, status_code=500)
