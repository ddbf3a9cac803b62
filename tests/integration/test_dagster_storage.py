"""The Dagster instance of the repo's dagster.yaml keeps its database connections
(orchestration/storage.py): storage operations reuse them instead of each opening a new Postgres
backend, and disposing of the instance closes them."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from exports import db
from exports.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.integration

OPERATIONS = 30


def _instance(home: Path, storage: dict):
    import dagster as dg

    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage,
                                                       "telemetry": {"enabled": False}}))
    return dg.DagsterInstance.from_config(str(home))


def _shipped_storage(url: str) -> dict:
    """The repo's dagster.yaml `storage:` block, pointed at `url`."""
    storage = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["storage"]
    storage["custom"]["config"] = {"postgres_url": url}
    return storage


def _stats(settings: Settings, database: str) -> tuple[int, int]:
    """(sessions ever opened on `database`, connections open to it now)."""
    with db.connect("dagster", settings, autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        sessions = conn.execute("select sessions from pg_stat_database where datname = %s",
                                (database,)).fetchone()[0]
        open_now = conn.execute("select count(*) from pg_stat_activity where datname = %s",
                                (database,)).fetchone()[0]
    return sessions, open_now


def _exercise(instance) -> None:
    import dagster as dg

    for _ in range(OPERATIONS // 3):
        instance.get_runs(filters=dg.RunsFilter(job_name="report_job"), limit=5)
        instance.all_instigator_state()
        instance.get_latest_materialization_event(dg.AssetKey("statements"))


@pytest.fixture
def dagster_database(postgres: Settings):
    """A Dagster database of its own, so only this test's instance connects to it."""
    name = f"dagster_storage_{uuid.uuid4().hex[:8]}"
    with db.connect("dagster", postgres, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = db.database_url("dagster", postgres).rsplit("/", 1)[0] + f"/{name}"
    yield name, url
    with db.connect("dagster", postgres, autocommit=True) as conn:
        conn.execute(f'drop database "{name}" with (force)')


def test_the_configured_storage_reuses_its_connections_and_closes_them_on_dispose(
        postgres: Settings, dagster_database, tmp_path: Path):
    name, url = dagster_database
    shipped = _shipped_storage(url)
    unpooled = {"postgres": {"postgres_url": url}}

    plain = _instance(tmp_path / "plain", unpooled)  # creates the tables
    before, _ = _stats(postgres, name)
    _exercise(plain)
    plain_sessions = _stats(postgres, name)[0] - before
    plain.dispose()

    pooled = _instance(tmp_path / "pooled", shipped)
    before, _ = _stats(postgres, name)
    _exercise(pooled)
    after, open_during = _stats(postgres, name)
    pooled.dispose()
    _, open_after = _stats(postgres, name)

    assert plain_sessions >= OPERATIONS  # Dagster's storage: a connection (or more) per operation
    assert after - before <= 3, f"{after - before} new connections for {OPERATIONS} operations"
    assert open_during >= 1
    assert open_after == 0, "dispose() left connections open"


def test_a_kept_connection_that_died_is_replaced_not_used(postgres: Settings, dagster_database,
                                                         tmp_path: Path):
    """With NullPool every operation had a fresh connection; a kept one that the database closed
    (a restart, an idle timeout) must not fail the next operation, e.g. a run's event write."""
    name, url = dagster_database
    shipped = _shipped_storage(url)
    instance = _instance(tmp_path / "home", shipped)
    try:
        _exercise(instance)
        with db.connect("dagster", postgres, autocommit=True) as conn:
            killed = conn.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                  "where datname = %s", (name,)).fetchone()[0]
        assert killed >= 1
        _exercise(instance)
    finally:
        instance.dispose()


def test_the_pooled_storage_is_what_dagster_yaml_configures(postgres: Settings, dagster_database,
                                                             tmp_path: Path):
    from orchestration.storage import PooledEventLogStorage, PooledRunStorage

    _, url = dagster_database
    shipped = _shipped_storage(url)
    instance = _instance(tmp_path / "home", shipped)
    try:
        # Run workers and code servers open the instance from its ref: the same pooled storage.
        from_ref = type(instance).from_ref(instance.get_ref())
        try:
            for opened in (instance, from_ref):
                assert isinstance(opened.run_storage, PooledRunStorage)
                assert isinstance(opened.event_log_storage, PooledEventLogStorage)
        finally:
            from_ref.dispose()
    finally:
        instance.dispose()
