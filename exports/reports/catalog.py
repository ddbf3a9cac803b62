"""The report catalog: every report type the engine can run, by id.

Adding a type = one `ReportType` entry in a module of `exports.reports.types` (columns with their
SQL, defaults, filters, query builder), listed in `_FAMILIES` below, plus tests.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from exports.errors import InvalidParameter
from exports.reports.types import activity, balance, fees, payments, payouts, reconciliation, revenue
from exports.reports.types.base import ReportType
from exports.settings import Settings, get_settings

_FAMILIES = (balance, activity, payments, payouts, reconciliation, fees, revenue)

REPORT_TYPES: dict[str, ReportType] = {}
for _family in _FAMILIES:
    for _type in _family.REPORT_TYPES:
        if _type.id in REPORT_TYPES:
            raise RuntimeError(f"report type {_type.id} is defined twice")
        REPORT_TYPES[_type.id] = _type

# Stripe's ids carry a version suffix (`balance.summary.1`); accept them for the type they name.
_VERSION_SUFFIX = re.compile(r"\.\d+$")


def get_report_type(report_type: str) -> ReportType:
    """The type named `report_type` (Stripe's versioned ids accepted), or InvalidParameter."""
    if not isinstance(report_type, str) or not report_type:
        raise InvalidParameter("Choose a report type, e.g. balance.summary.", param="report_type")
    key = report_type.strip()
    found = REPORT_TYPES.get(key) or REPORT_TYPES.get(_VERSION_SUFFIX.sub("", key))
    if found is None:
        raise InvalidParameter(
            f"There is no report type {report_type!r}. Available report types: "
            f"{', '.join(REPORT_TYPES)}.", param="report_type")
    return found


def describe(report: ReportType) -> dict[str, Any]:
    """The catalog entry as plain data (API, CLI, docs)."""
    # Which interval parameters the type takes: "required" (interval_start + interval_end, or a
    # relative_range), "end_only" (interval_end only), "required_unless_payout" (or a payout id).
    optional = ["timezone", "columns", "relative_range"]
    return {
        "id": report.id,
        "title": report.title,
        "description": report.description,
        "shape": report.shape,
        "interval": report.interval,
        "optional_parameters": optional,
        "filters": sorted(report.filters),
        "reporting_categories": list(report.reporting_categories) if "reporting_category" in report.filters else [],
        "statuses": list(report.statuses),
        "columns": [{"name": c.name, "kind": c.kind, "description": c.description,
                     "default": c.default} for c in report.columns],
        "default_columns": report.default_columns,
        # Columns named by the request: one per metadata key of the related payment.
        "column_patterns": ["payment_metadata[<key>]"] if report.has_metadata_columns else [],
        # What the manifest's totals_minor holds: each figure's money column and, for a
        # summary's own figures, the rows it is read from (e.g. category = ending_balance).
        "totals": ([{"name": c.name, "column": c.name} for c in report.columns
                    if c.kind == "money" and c.summable] if report.totals is None else
                   [{"name": f.name, "column": f.column,
                     "where": {f.label_column: f.label} if f.label_column else None}
                    for f in report.totals]),
    }


def list_report_types(settings: Settings | None = None, *, client=None) -> list[dict[str, Any]]:
    """Every type with its columns, defaults, filters and data-availability window.

    data_available_end comes from replication's watermarks in the app database (no warehouse
    access; None = nothing replicated yet). data_available_start needs the warehouse, so it is
    filled only when the caller passes an open `client`; otherwise it is None (unknown).
    """
    settings = settings or get_settings()
    available_end = data_available_end(settings)
    available_start = data_available_start(client, settings) if client is not None else None
    out = []
    for report in REPORT_TYPES.values():
        entry = describe(report)
        entry["data_available_start"] = available_start
        entry["data_available_end"] = available_end
        out.append(entry)
    return out


def data_available_end(settings: Settings) -> datetime | None:
    """Reports may not cover time at or after this (replication's low watermark)."""
    from exports import replication  # lazily: keeps the catalog importable without the warehouse client

    return replication.data_available_end(settings)


def data_available_start(client, settings: Settings) -> datetime | None:
    """The earliest balance transaction in the marts (None when there are none)."""
    result = client.query(
        f"SELECT min(created_at), count() FROM {settings.warehouse_marts_database}.fct_balance_transactions")
    earliest, count = result.result_rows[0]
    if not count:
        return None
    from datetime import timezone

    return earliest if earliest.tzinfo else earliest.replace(tzinfo=timezone.utc)
