"""Run tags the instance's run queue acts on (dagster.yaml's tag_concurrency_limits).

Kept apart from orchestration/resources.py, which imports dagster-dbt: the `reports` code location
must not pay that import in every report run."""

from __future__ import annotations

from exports.settings import Settings, get_settings


def warehouse_tags(settings: Settings | None = None, *, brief: bool = False) -> dict[str, str]:
    """Tags for runs that open the warehouse.

    chdb lets one process open the embedded warehouse, and `exports.warehouse.open_warehouse()`
    makes every opener wait its turn on a file lock. A platform run holds the warehouse for most of
    its life, so dagster.yaml runs `warehouse=embedded` one at a time: a second one would only sit
    on the lock. A report run (`brief=True`) holds it for well under a second of a run that spends
    seconds starting a process and loading code, so `warehouse=embedded-brief` allows a few at once:
    their start-ups overlap and only the warehouse part queues on the lock (a burst of 20 reports
    drained ~2x faster, docs/capacity.md). Against a ClickHouse server: `warehouse=server`, no limit.
    """
    settings = settings or get_settings()
    if not settings.warehouse_is_embedded:
        return {"warehouse": "server"}
    return {"warehouse": "embedded-brief" if brief else "embedded"}
