"""Operations endpoints: Prometheus metrics, liveness and readiness. No authentication: they
expose counts, never report contents, and are meant for the cluster network (see
docs/deploying.md for keeping them off the public ingress)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from exports import metrics
from exports.requests import store
from exports.settings import Settings
from exports.storage import get_storage

router = APIRouter(include_in_schema=False)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _registry(request: Request):
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = metrics.build_registry(_settings(request))
    return registry


@router.get("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    body = await run_in_threadpool(metrics.render, _registry(request))
    return Response(body, media_type=metrics.CONTENT_TYPE)


@router.get("/healthz")
def healthz() -> dict:
    """Liveness: the process serves requests. Dependencies are /readyz's job, so a database
    outage does not make the orchestrator restart every API replica."""
    return {"ok": True}


def _check_postgres(settings: Settings) -> None:
    store.check_readable(settings)  # also proves migrations ran


def _check_storage(settings: Settings) -> None:
    # A lookup of a key that never exists: reaches the bucket/directory (credentials, network)
    # without writing anything.
    get_storage(settings).exists(f"readyz/{uuid.uuid4().hex}")


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the app Postgres and the file storage answer, else 503 naming the
    failing check (the load balancer stops routing to this replica until it recovers)."""
    settings = _settings(request)
    checks: dict[str, str] = {}
    for name, check in (("postgres", _check_postgres), ("storage", _check_storage)):
        try:
            check(settings)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 — any failure means "not ready"
            checks[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
