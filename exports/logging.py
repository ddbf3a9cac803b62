"""Structured logs: one JSON object per line, carrying the report's ids on every line.

Bind ids once where a unit of work starts; every log call below it — in any module, through a
plain `logging.getLogger(__name__)` — gets them, because a handler filter copies the bound
fields (held in a contextvar) onto each record:

    from exports.logging import configure_logging, log_context

    configure_logging()                      # once per process (CLI, API, Dagster run)
    with log_context(report_id=request_id, run_id=context.run_id, account_id=account):
        process_request(request_id, run_id=context.run_id)

Contextvars follow asyncio tasks and `contextvars.copy_context()`, not new threads: code that
hands work to a thread pool binds again inside the worker (or runs it in a copied context).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from exports.settings import Settings, get_settings

_bound: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "payreports_log_context", default={})

# LogRecord's own attributes: everything else on a record came from `extra=` or the context.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


@contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Bind fields (report_id, run_id, account_id, ...) for every log line inside the block;
    nested blocks add to (and may override) the outer ones. None values are not bound."""
    merged = {**_bound.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _bound.set(merged)
    try:
        yield merged
    finally:
        _bound.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (an explicit `extra=` wins). Attach it to a
    handler, so records propagated from any logger get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _bound.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """ts (UTC, ISO 8601), level, logger, message, then every extra/bound field, then exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, with the bound ids appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items()
                  if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return line


_HANDLER_NAME = "payreports"


def configure_logging(settings: Settings | None = None, *, json_lines: bool | None = None,
                      level: str | int | None = None, stream=None) -> logging.Handler:
    """Install (or replace) the project's handler on the root logger and return it.

    JSON lines in production (log shippers parse them), readable text elsewhere, unless
    `json_lines` says otherwise. Level: `level`, else $LOG_LEVEL, else INFO. Idempotent."""
    settings = settings or get_settings()
    if json_lines is None:
        json_lines = settings.environment == "production"
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    return handler
