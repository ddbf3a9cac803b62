"""Run tags the instance's run queue acts on (dagster.yaml's tag_concurrency_limits).

Kept apart from orchestration/resources.py, which imports dagster-dbt: the `reports` code location
must not pay that import in every report run."""

from __future__ import annotations

from exports.settings import Settings, get_settings


def warehouse_tags(settings: Settings | None = None) -> dict[str, str]:
    """Tags for runs that open the warehouse.

    chdb lets one process open the embedded warehouse, and `exports.warehouse.open_warehouse()`
    makes every opener wait its turn on a file lock. Platform runs and report batch runs hold it
    for most of their life, so dagster.yaml runs `warehouse=embedded` one at a time: a second one
    would only sit on the lock (and hold a run slot). Against a ClickHouse server:
    `warehouse=server`, no limit.
    """
    settings = settings or get_settings()
    return {"warehouse": "embedded" if settings.warehouse_is_embedded else "server"}
