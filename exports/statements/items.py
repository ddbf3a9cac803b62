"""The statement set: which files every account gets each period (PAYREPORTS_STATEMENT_REPORTS).

Each item is a catalog report type and a format; each becomes its own report in
report_requests. Changing the set changes what future runs render; files already rendered stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from exports.errors import InvalidParameter
from exports.reports.catalog import get_report_type
from exports.reports.params import FORMATS
from exports.settings import Settings, get_settings

SETTING = "PAYREPORTS_STATEMENT_REPORTS"


@dataclass(frozen=True)
class StatementItem:
    report_type: str  # canonical catalog id
    format: str

    @property
    def name(self) -> str:
        return f"{self.report_type}:{self.format}"


def parse_statement_set(text: str) -> tuple[StatementItem, ...]:
    """'balance.summary:pdf,payouts.itemized:csv' -> items (catalog ids checked, no duplicates)."""
    items: list[StatementItem] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        report_type, _, fmt = part.rpartition(":")
        if not report_type or fmt not in FORMATS:
            raise InvalidParameter(
                f"{SETTING}: {part!r} is not report_type:format (format one of {', '.join(FORMATS)})",
                param=SETTING)
        try:
            canonical = get_report_type(report_type).id
        except InvalidParameter as exc:
            raise InvalidParameter(f"{SETTING}: {exc.message}", param=SETTING) from None
        item = StatementItem(canonical, fmt)
        if item in items:
            raise InvalidParameter(f"{SETTING} lists {item.name} twice", param=SETTING)
        items.append(item)
    if not items:
        raise InvalidParameter(f"{SETTING} must name at least one report_type:format", param=SETTING)
    return tuple(items)


def statement_set(settings: Settings | None = None) -> tuple[StatementItem, ...]:
    return parse_statement_set((settings or get_settings()).statement_reports)
