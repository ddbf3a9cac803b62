"""exports.db.database_url in embedded mode (no database URL configured)."""

from __future__ import annotations

from exports import db
from exports.services import postgres as embedded
from exports.settings import Settings


def test_the_embedded_server_is_checked_once_in_a_while_not_on_every_connect(monkeypatch, tmp_path):
    """The check is a connection of its own: on every connect it doubled the connections of
    every caller without a pool (sensors, the API)."""
    checks: list[int] = []
    monkeypatch.setattr(embedded, "ensure_running",
                        lambda settings: checks.append(settings.embedded_postgres_port))
    monkeypatch.setattr(db, "_embedded_seen_running", {})
    settings = Settings(state_dir=tmp_path, embedded_postgres_port=54999)
    urls = {db.database_url(which, settings) for which in ("app", "source", "dagster") for _ in range(10)}
    assert checks == [54999]
    assert len(urls) == 3 and all(":54999/" in url for url in urls)
    other = Settings(state_dir=tmp_path, embedded_postgres_port=54998)
    db.database_url("app", other)  # another server: checked on its own
    assert checks == [54999, 54998]
    monkeypatch.setattr(db, "EMBEDDED_CHECK_SECONDS", 0.0)  # the interval has passed
    db.database_url("app", settings)
    assert checks == [54999, 54998, 54999]
