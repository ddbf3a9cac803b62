"""Retention: delete report files past `expires_at`, keep the request's metadata (status expired)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from exports.requests import store
from exports.settings import Settings, get_settings
from exports.storage import get_storage

log = logging.getLogger(__name__)


def expire_reports(settings: Settings | None = None, now: datetime | None = None,
                   batch_size: int = 500) -> list[str]:
    """Delete expired files and mark their rows expired; return the expired request ids.
    The file is deleted first: a crash in between leaves a completed row whose file is gone,
    which the next run expires (deleting a missing object is a no-op)."""
    settings = settings or get_settings()
    now = now or datetime.now(timezone.utc)
    storage = get_storage(settings)
    expired: list[str] = []
    while True:
        rows = store.list_expirable(now, batch_size, settings)
        if not rows:
            return expired
        for row in rows:
            if row["file_key"]:
                storage.delete(row["file_key"])
            if store.expire(row["id"], settings) is not None:
                expired.append(row["id"])
        if len(rows) < batch_size:
            return expired
