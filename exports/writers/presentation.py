"""How figures, codes and dates read for PEOPLE (PDFs today, the web app later): one label table,
locale-correct numbers (Babel/CLDR), one currency code style (uppercase ISO), period and time
wording. Machine formats (CSV, Parquet, XLSX cells) keep Stripe's rules and never come here.

    fmt = Presenter("en_US")
    fmt.amount(-4350313, 2)        -> '-43,503.13'      ("de_DE": '-43.503,13')
    fmt.money(-46861490, 0, "jpy") -> 'JPY -46,861,490'
    label("other_adjustment")      -> 'Other adjustments'

Amounts are integer minor units with the exponent of their row, formatted exactly (integer
arithmetic, never floats) with exactly `exponent` decimals: KWD 3, JPY 0, whatever CLDR's default
digits for the currency say (the data's exponent wins, so no digit is ever dropped).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime

from exports.writers.formatting import DEFAULT_LOCALE

# Codes a report shows as row or series labels -> what a person reads. One table for every
# human-facing document; anything absent falls back to `humanize`.
LABELS: dict[str, str] = {
    # Stripe's reporting categories (docs.stripe.com/reports/reporting-categories)
    "charge": "Charges",
    "charge_failure": "Charge failures",
    "refund": "Refunds",
    "refund_failure": "Refund failures",
    "dispute": "Disputes",
    "dispute_reversal": "Dispute reversals",
    "fee": "Fees",
    "other_adjustment": "Other adjustments",
    "payout": "Payouts",
    "payout_reversal": "Payout reversals",
    "tax": "Taxes",
    "topup": "Top-ups",
    "topup_reversal": "Top-up reversals",
    "total": "Total",
    # balance.summary rows
    "starting_balance": "Starting balance",
    "activity": "Activity",
    "payouts": "Payouts",
    "ending_balance": "Ending balance",
    # fee types
    "processing": "Processing fees",
    "platform": "Platform fees",
    # column headers whose plain humanized form reads wrong
    "fee_amount": "Fees",
    "fee_count": "Transactions with fees",
    "charge_count": "Charges",
    "count": "Count",
    "net_amount": "Net amount",
    "fees": "Fees",
    "gross": "Gross",
    "net": "Net",
    "reporting_category": "Category",
    "fee_type": "Fee type",
}
# The dispute fee type shares its code with the reporting category; in a fee context it reads
# as fees. Callers that label fee types pass context="fee_type".
CONTEXT_LABELS: dict[tuple[str, str], str] = {("fee_type", "dispute"): "Dispute fees"}

_WORDS = {"id": "ID", "utc": "(UTC)", "url": "URL", "iso": "ISO"}


def humanize(code: str) -> str:
    """'automatic_payout_effective_at_utc' -> 'Automatic payout effective at (UTC)'."""
    words = [w for w in re.split(r"[_\s]+", code) if w]
    if not words:
        return code
    out = [_WORDS.get(w.lower(), w) for w in words]
    out[0] = out[0] if out[0] in _WORDS.values() else out[0][:1].upper() + out[0][1:]
    return " ".join(out)


def label(code: str, context: str | None = None) -> str:
    if context and (context, code) in CONTEXT_LABELS:
        return CONTEXT_LABELS[(context, code)]
    return LABELS.get(code) or humanize(code)


def currency_code(currency: str) -> str:
    """The one style human documents use: uppercase ISO 4217 ('usd' -> 'USD')."""
    return currency.upper()


def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(DEFAULT_LOCALE)


@dataclass(frozen=True)
class _NumberSymbols:
    group: str
    decimal: str
    minus: str
    western_grouping: bool  # groups of three everywhere (en, de, fr, ja...; not en_IN's 2s)


@lru_cache(maxsize=32)
def _symbols(locale_name: str) -> _NumberSymbols:
    loc = _locale(locale_name)
    pattern = loc.decimal_formats[None]
    symbols = loc.number_symbols.get(loc.default_numbering_system, {}) or loc.number_symbols.get("latn", {})
    return _NumberSymbols(group=symbols.get("group", ","), decimal=symbols.get("decimal", "."),
                          # The bidi marks of some locales' minus would end up inside table cells.
                          minus=symbols.get("minusSign", "-").strip("\u200e\u200f\u061c") or "-",
                          western_grouping=tuple(pattern.grouping) == (3, 3))


class Presenter:
    """Formatting for one locale. Cheap per call (the itemized PDF formats every money cell):
    the locale's symbols are read from CLDR once; group-of-three locales take a str.format fast
    path, others go through Babel's own pattern."""

    def __init__(self, locale: str = DEFAULT_LOCALE):
        self.locale_name = locale or DEFAULT_LOCALE
        self.locale = _locale(self.locale_name)
        self._symbols = _symbols(self.locale_name)
        self._fast = (self._symbols.western_grouping
                      and self.locale.default_numbering_system == "latn")

    def integer(self, value: int) -> str:
        return self._group(int(value), "")

    def amount(self, minor: int, exponent: int) -> str:
        """Exact major units with thousands separators and exactly `exponent` decimals."""
        minor = int(minor)
        if exponent <= 0:
            return self._group(minor, "")
        whole, frac = divmod(abs(minor), 10 ** exponent)
        return self._group(-whole if minor < 0 else whole, f"{frac:0{exponent}d}",
                           negative=minor < 0)

    def money(self, minor: int, exponent: int, currency: str) -> str:
        """'USD 1,234.56': the ISO code, never a symbol ('$' is also CAD, AUD, ...)."""
        return f"{currency_code(currency)}\u00a0{self.amount(minor, exponent)}"

    def _group(self, whole: int, frac: str, *, negative: bool | None = None) -> str:
        negative = whole < 0 if negative is None else negative
        if self._fast:
            text = f"{abs(whole):,}"
            if self._symbols.group != ",":
                text = text.replace(",", self._symbols.group)
            if frac:
                text += self._symbols.decimal + frac
            return (self._symbols.minus + text) if negative else text
        return self._babel(whole, frac, negative)

    def _babel(self, whole: int, frac: str, negative: bool) -> str:
        pattern = copy.copy(self.locale.decimal_formats[None])
        pattern.frac_prec = (len(frac), len(frac))
        value = Decimal(f"{'-' if negative else ''}{abs(whole)}{'.' + frac if frac else ''}")
        return pattern.apply(value, self.locale)

    # ---- dates and times

    def date(self, value, fmt: str = "medium") -> str:
        return format_date(value, format=fmt, locale=self.locale)

    def datetime(self, value: datetime, timezone: str, fmt: str = "long") -> str:
        return format_datetime(value, format=fmt, tzinfo=ZoneInfo(timezone), locale=self.locale)

    def period(self, start: datetime | None, end: datetime | None, timezone: str) -> str:
        """'1 Mar 2024 – 31 Mar 2024': whole local days show as dates, the exclusive end as the
        last day covered; other boundaries show with their time."""
        zone = ZoneInfo(timezone)
        if end is None:
            return "All time"
        local_end = end.astimezone(zone)
        if start is None:
            return f"As of {self._boundary(local_end, end=True)}"
        return (f"{self._boundary(start.astimezone(zone), end=False)} – "
                f"{self._boundary(local_end, end=True)}")

    def _boundary(self, value: datetime, *, end: bool) -> str:
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            day = (value - timedelta(days=1)).date() if end else value.date()
            return self.date(day)
        return format_datetime(value, format="medium", locale=self.locale) + (
            " (exclusive)" if end else "")


def d3_locale(locale: str) -> str:
    """The chart library's number-format locale ('de_DE' -> 'de-DE')."""
    return _locale(locale).language + ("-" + _locale(locale).territory if _locale(locale).territory else "")
