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

from fastapi import FastAPI, Request

import api.routes
from api.errors import install_error_handlers
from api.web import install as install_web_app
from exports import db
from exports.logging import configure_logging, log_context
from exports.settings import Settings, get_settings

log = logging.getLogger("api.requests")

# A caller's (or proxy's) X-Request-Id is kept when it is a plain token, so it can be followed
# across services; anything else is replaced rather than written into the logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _include_routers(app: FastAPI) -> None:
    for module_info in sorted(pkgutil.iter_modules(api.routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        db.migrate("app", settings)  # idempotent and serialized across processes
        yield

    app = FastAPI(title="payreports Report API", version="1", lifespan=lifespan,
                  docs_url="/docs", openapi_url="/openapi.json")
    app.state.settings = settings
    install_error_handlers(app)
    _include_routers(app)
    install_web_app(app)  # api/web: the finance team's pages and the embeddable reports view
    app.middleware("http")(_log_request)
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
            response = await call_next(request)
        except Exception:
            log.exception("request failed", extra=fields)
            raise
        fields.update(status=response.status_code,
                      duration_ms=round((time.perf_counter() - started) * 1000, 1))
        if account_id := getattr(request.state, "account_id", None):
            fields["account_id"] = account_id
        log.log(logging.WARNING if response.status_code >= 500 else logging.INFO, "request",
                extra=fields)
    response.headers["X-Request-Id"] = request_id
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
