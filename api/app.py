"""The Report API application: `create_app(settings)`; run with `payreports api serve`.

Every module in api/routes/ exposing `router` is included automatically, so a new resource is a
new file. The API reads the app (and, for account timezones, source) Postgres and the file store;
it never needs the warehouse or Dagster to accept, list, read or download reports.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import secrets
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi

import api.routes
from api.errors import body_too_large_response, install_error_handlers, server_error_response
from api.input_guard import reject_unstorable_text
from api.web import install as install_web_app
from exports import db
from exports.logging import configure_logging, log_context
from exports.settings import Settings, get_settings

log = logging.getLogger("api.requests")

# A caller's (or proxy's) X-Request-Id is kept when it is a plain token, so it can be followed
# across services; anything else is replaced rather than written into the logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PRIVATE_PREFIXES = ("/v1/", "/files/")
MAX_BODY_BYTES = 2 * 1024 * 1024


def _include_routers(app: FastAPI) -> None:
    for module_info in sorted(pkgutil.iter_modules(api.routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            # Every real body is a few KB; this bounds what one request makes us read and parse
            # (per router, not app-wide: there the 413 would bypass the API's error shape).
            app.include_router(router, max_body_size=MAX_BODY_BYTES)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        db.migrate("app", settings)  # idempotent and serialized across processes
        yield

    app = FastAPI(title="payreports Report API", version="1", lifespan=lifespan,
                  docs_url="/docs", openapi_url="/openapi.json",
                  dependencies=[Depends(reject_unstorable_text)],
                  # Operation ids are the handlers' names (the OpenAPI links refer to them).
                  generate_unique_id_function=lambda route: route.name)
    app.state.settings = settings
    install_error_handlers(app)
    _include_routers(app)
    install_web_app(app)  # api/web: the finance team's pages and the embeddable reports view
    app.middleware("http")(_log_request)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _log_request(request: Request, call_next):
    """One log line per request (method, path, status, duration, account), and a request id that
    every log line written while serving it carries and the response returns as X-Request-Id."""
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else f"req_{secrets.token_hex(8)}"
    started = time.perf_counter()
    with log_context(request_id=request_id):
        fields = {"method": request.method, "path": request.url.path}
        try:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                # Refused before reading a byte (the routers' limit catches chunked bodies).
                response = body_too_large_response(MAX_BODY_BYTES)
            else:
                response = await call_next(request)
        except Exception:
            # Whatever failed, the client gets the API's error shape and an id to quote.
            log.exception("request failed", extra=fields)
            response = server_error_response(request_id)
        fields.update(status=response.status_code,
                      duration_ms=round((time.perf_counter() - started) * 1000, 1))
        if account_id := getattr(request.state, "account_id", None):
            fields["account_id"] = account_id
        log.log(logging.WARNING if response.status_code >= 500 else logging.INFO, "request",
                extra=fields)
    response.headers["X-Request-Id"] = request_id
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.url.path.startswith(_PRIVATE_PREFIXES):
        # Report objects carry signed download links, /v1/webhook_secret a secret, /files the
        # data itself: no shared or browser cache may keep them.
        response.headers["Cache-Control"] = "no-store"
    return response


def app_factory() -> FastAPI:
    """For `uvicorn --factory api.app:app_factory`: the process's logging is the project's (JSON
    lines in production), uvicorn's own loggers included, instead of uvicorn's plain text."""
    settings = get_settings()
    configure_logging(settings)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Our per-request line carries more than uvicorn's access line (duration, account, id).
    logging.getLogger("uvicorn.access").disabled = True
    return create_app(settings)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, minus the 422 it adds to every route: validation errors are 400s in
    the API's error shape (api.errors), which each route documents with its other codes."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             description="Reports on a payment platform's data. Authenticate with "
                                         "`Authorization: Bearer <API key>`; every error is "
                                         "`{\"error\": {type, code, param, message}}`; timestamps "
                                         "are Unix seconds.")
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema
