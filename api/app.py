"""The Report API application: `create_app(settings)`; run with `payreports api serve`.

Every module in api/routes/ exposing `router` is included automatically, so a new resource is a
new file. The API reads the app (and, for account timezones, source) Postgres and the file store;
it never needs the warehouse or Dagster to accept, list, read or download reports.
"""

from __future__ import annotations

import importlib
import pkgutil
from contextlib import asynccontextmanager

from fastapi import FastAPI

import api.routes
from api.errors import install_error_handlers
from exports import db
from exports.settings import Settings, get_settings


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

    return app


def app_factory() -> FastAPI:
    """For `uvicorn --factory api.app:app_factory`."""
    return create_app()
