"""Report parameter validation: request dict in, `ValidatedReport` out, or an InvalidParameter
naming the field and saying, in words a finance person understands, what to change.

Intervals follow Stripe: `interval_start` inclusive, `interval_end` exclusive, given as Unix
seconds, ISO dates or ISO datetimes. Dates and naive datetimes are wall time in the report's
`timezone` (a date means that day's local midnight); values with an offset are kept as given.
`relative_range` names a complete period instead (see exports.reports.relative).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone as dt_timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict

from exports.errors import InvalidParameter
from exports.money import KNOWN_EXPONENTS
from exports.reports.relative import RELATIVE_RANGES, local_midnight, resolve_relative_range
from exports.reports.types.base import FILTERS, ReportType
from exports.writers.formatting import DEFAULT_LOCALE, DEFAULT_TIMESTAMP_STYLE, TIMESTAMP_STYLES

FORMATS: tuple[str, ...] = ("csv", "xlsx", "pdf", "parquet")
INTERVAL_KEYS = ("interval_start", "interval_end")
_RELATIVE_ALIASES = ("relative_range", "relative_date_range")  # the design doc's name for it
_OTHER_KEYS = ("timezone", "columns", "filters")
# How the file is written, not what it contains. Each applies to some formats only; given with
# another format (other than at its default) it is a 400 naming it, never silently ignored.
OPTION_FORMATS: dict[str, tuple[str, ...]] = {
    "csv_bom": ("csv",),  # a UTF-8 byte order mark first, for Excel on Windows
    "timestamp_format": ("csv",),  # XLSX and Parquet carry typed timestamps
    "locale": ("pdf",),  # XLSX cells are typed: Excel shows them in its reader's own locale
}
MAX_LOCALE_CHARS = 32
_ID_PATTERNS = {"payout": re.compile(r"^po_[A-Za-z0-9_]{1,250}$"),
                "customer": re.compile(r"^cus_[A-Za-z0-9_]{1,250}$")}
_CURRENCY = re.compile(r"^[a-z]{3}$")
_UNIX_SECONDS = re.compile(r"^-?\d{1,12}$")
# The longest IANA name is 32 characters; anything much longer is not one (and must not reach
# the filesystem lookup zoneinfo does).
MAX_TIMEZONE_CHARS = 64
# Instants a report can be about (by wall-clock year). The bounds keep every shift into or out of
# a timezone (years 1 and 9999 overflow datetime) and every Unix conversion in range.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=dt_timezone.utc)
LATEST_INSTANT = datetime(3000, 1, 1, tzinfo=dt_timezone.utc)
_SHOWN_CHARS = 80


def show(value: Any) -> str:
    """repr() for error messages, clipped: an error never echoes a megabyte of input back."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 4] + "…" + text[-3:]


class ValidatedReport(BaseModel):
    """A request that passed validation: everything needed to build its query."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    report_type: str  # canonical catalog id
    format: str
    timezone: str
    # Where the timezone came from: "parameter", "account" or "default" (UTC, account unknown).
    timezone_source: str
    interval_start: datetime | None  # aware UTC; None for end-only types / payout by id
    interval_end: datetime | None
    relative_range: str | None = None
    filters: dict[str, str | list[str]] = {}
    columns: list[str]
    parameters: dict[str, Any] = {}  # as received, for re-validation with the account's timezone
    now: datetime
    # File options (OPTION_FORMATS), at their defaults unless the request set them.
    csv_bom: bool = False
    timestamp_format: str = DEFAULT_TIMESTAMP_STYLE
    locale: str = DEFAULT_LOCALE

    @property
    def options(self) -> dict[str, Any]:
        """The file options the format uses, as applied (defaults included): the manifest's
        `options`."""
        return {name: getattr(self, name) for name, formats in OPTION_FORMATS.items()
                if self.format in formats}

    def normalized_parameters(self) -> dict[str, Any]:
        """JSON-safe absolute parameters: validating them again gives the same report."""
        out: dict[str, Any] = {"timezone": self.timezone, "columns": list(self.columns)}
        if self.interval_start is not None:
            out["interval_start"] = self.interval_start.isoformat()
        if self.interval_end is not None:
            out["interval_end"] = self.interval_end.isoformat()
        if self.relative_range:
            out["resolved_from"] = self.relative_range
        out.update({k: (list(v) if isinstance(v, list) else v) for k, v in self.filters.items()})
        out.update({k: v for k, v in self.options.items()
                    if v != ValidatedReport.model_fields[k].default})
        return out


def file_options(fmt: str, parameters: Any) -> dict[str, Any]:
    """The file options a stored request's format uses, defaults filled in, without raising
    (the request was validated when it was accepted): what the report object shows."""
    given = parameters if isinstance(parameters, dict) else {}
    out: dict[str, Any] = {}
    for name, formats in OPTION_FORMATS.items():
        if fmt not in formats:
            continue
        value = given.get(name)
        if value is None:
            value = ValidatedReport.model_fields[name].default
        elif name == "locale":
            try:
                value = validate_locale(value)
            except InvalidParameter:
                pass
        out[name] = value
    return out


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_INSTANT_SCHEMA = _nullable({"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 64}],
                             "description": "Unix seconds, YYYY-MM-DD or an ISO date and time."})
_ONE_OR_MANY = _nullable({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})


def parameters_json_schema() -> dict[str, Any]:
    """The OpenAPI description of `parameters` (report requests and templates). Which keys a
    report type takes, and how they combine, is checked by validate_parameters; null is absent."""
    filters = {name: _nullable({"type": "string"}) for name in ("currency", "payout", "customer")}
    filters.update(reporting_category=_ONE_OR_MANY, status=_ONE_OR_MANY)
    properties: dict[str, Any] = {
        "interval_start": _INSTANT_SCHEMA, "interval_end": _INSTANT_SCHEMA,
        "relative_range": _nullable({"type": "string", "enum": list(RELATIVE_RANGES)}),
        "relative_date_range": _nullable({"type": "string", "enum": list(RELATIVE_RANGES)}),
        "timezone": _nullable({"type": "string", "maxLength": MAX_TIMEZONE_CHARS,
                               "description": "An IANA time zone such as Europe/Berlin."}),
        "columns": _nullable({"anyOf": [{"type": "string"},
                                        {"type": "array", "items": {"type": "string"}}]}),
        "filters": _nullable({"type": "object", "properties": filters, "additionalProperties": False}),
        **filters,
        "csv_bom": _nullable({"type": "boolean", "description":
                              "CSV only: start the file with a UTF-8 byte order mark, so Excel on "
                              "Windows reads accented text right. Default false."}),
        "timestamp_format": _nullable({"type": "string", "enum": list(TIMESTAMP_STYLES),
                                       "description": "CSV only: 'stripe' (default, "
                                       "2024-11-03 01:30:00 in the column's time zone) or "
                                       "'iso8601' (2024-11-03T01:30:00-04:00, with the UTC offset: "
                                       "unambiguous across a DST change)."}),
        "locale": _nullable({"type": "string", "maxLength": MAX_LOCALE_CHARS,
                             "description": "PDF only: the locale numbers and dates are written "
                             "in, e.g. de_DE (1.234,56) or en_IN; default en_US."}),
    }
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "description": "Report parameters: an interval (interval_start/interval_end or "
                           "relative_range), timezone, columns, the report type's filters and "
                           "file options (csv_bom, timestamp_format, locale)."}


def _param(name: str) -> str:
    return f"parameters.{name}"


def validate_timezone(value: Any, param: str = "parameters.timezone") -> str:
    """An IANA name zoneinfo has (checked against the list, never by opening a path)."""
    if (not isinstance(value, str) or len(value) > MAX_TIMEZONE_CHARS
            or value.strip() not in _timezones()):
        raise InvalidParameter(
            f"{show(value)} is not a time zone we know. Use an IANA time zone name such as "
            f"'Europe/Berlin', 'America/New_York' or 'UTC'.", param=param)
    return value.strip()


def parse_instant(value: Any, name: str, tz: str) -> datetime:
    """Unix seconds, ISO date or ISO datetime -> aware UTC datetime (naive = wall time in tz)."""
    param = _param(name)
    zone = ZoneInfo(tz)
    if isinstance(value, bool):
        raise InvalidParameter(f"{name} must be a date, a date and time, or Unix seconds.", param=param)
    if isinstance(value, (int, float)):
        return _from_unix(value, name)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return local_midnight(_in_range(value, name), zone)
    elif isinstance(value, str):
        text = value.strip()
        if _UNIX_SECONDS.match(text):
            return _from_unix(int(text), name)
        try:
            if len(text) == 10:
                return local_midnight(_in_range(date.fromisoformat(text), name), zone)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidParameter(
                f"{name} {show(value)} is not a date we can read. Use YYYY-MM-DD, an ISO date and "
                f"time such as 2024-01-31T00:00:00+01:00, or Unix seconds.", param=param) from None
    else:
        raise InvalidParameter(f"{name} must be a date, a date and time, or Unix seconds.", param=param)
    _in_range(parsed, name)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt_timezone.utc)


def _in_range(value: date, name: str) -> Any:
    """Dates and datetimes outside [EARLIEST_INSTANT, LATEST_INSTANT) by their calendar year
    (before any timezone shift, which is what overflows near years 1 and 9999)."""
    if not EARLIEST_INSTANT.year <= value.year < LATEST_INSTANT.year:
        raise InvalidParameter(
            f"{name} {value.isoformat()} is out of range: reports cover {EARLIEST_INSTANT.year} "
            f"to {LATEST_INSTANT.year - 1}.", param=_param(name))
    return value


def _from_unix(seconds: int | float, name: str) -> datetime:
    if not EARLIEST_INSTANT.timestamp() <= seconds < LATEST_INSTANT.timestamp():  # NaN fails too
        raise InvalidParameter(
            f"{name} {show(seconds)} is not a Unix timestamp between {EARLIEST_INSTANT:%Y-%m-%d} "
            f"and {LATEST_INSTANT:%Y-%m-%d}.", param=_param(name))
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)


def _one_or_many(value: Any, name: str, allowed: tuple[str, ...], what: str) -> str | list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise InvalidParameter(f"{name} must be a {what} or a list of them.", param=_param(name))
    cleaned = [v.strip() for v in values]
    for item in cleaned:
        if item not in allowed:
            raise InvalidParameter(
                f"{show(item)} is not a {what} this report knows. Use one of: {', '.join(allowed)}.",
                param=_param(name))
    return cleaned if isinstance(value, list) else cleaned[0]


def validate_filter(report: ReportType, name: str, value: Any) -> str | list[str]:
    if name == "currency":
        code = value.strip().lower() if isinstance(value, str) else None
        if code is None or not _CURRENCY.match(code) or code not in KNOWN_EXPONENTS:
            raise InvalidParameter(
                f"{show(value)} is not a currency we know. Use a three-letter ISO code such as "
                f"'usd' or 'eur' (known: {', '.join(sorted(KNOWN_EXPONENTS))}).",
                param=_param(name))
        return code
    if name == "reporting_category":
        return _one_or_many(value, name, report.reporting_categories, "reporting category")
    if name == "status":
        return _one_or_many(value, name, report.statuses, "status")
    pattern = _ID_PATTERNS[name]
    if not isinstance(value, str) or not pattern.match(value.strip()):
        prefix = "po_" if name == "payout" else "cus_"
        raise InvalidParameter(f"{show(value)} is not a {name} id; {name} ids look like {prefix}….",
                               param=_param(name))
    return value.strip()


def validate_locale(value: Any) -> str:
    """A CLDR locale Babel knows ('de_DE', 'de-DE', 'fr'), written with Latin digits (the PDFs'
    fonts and column fitting are for them) -> its canonical name ('de_DE')."""
    from babel import Locale, UnknownLocaleError

    param = "parameters.locale"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LOCALE_CHARS:
        raise InvalidParameter("locale must be a locale name such as 'en_US', 'de_DE' or 'fr_FR'.",
                               param=param)
    try:
        parsed = Locale.parse(value.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise InvalidParameter(
            f"{show(value)} is not a locale we know. Use a language and region such as 'en_US', "
            f"'en_GB', 'de_DE' or 'fr_FR'.", param=param) from None
    if parsed.default_numbering_system != "latn":
        raise InvalidParameter(
            f"{show(value)} writes numbers in {parsed.default_numbering_system} digits, which "
            f"our PDFs do not print; use a locale with Latin digits (e.g. 'ar' instead of 'ar_EG').",
            param=param)
    return str(parsed)


def _validate_options(flat: dict[str, Any], fmt: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "csv_bom" in flat:
        if not isinstance(flat["csv_bom"], bool):
            raise InvalidParameter("csv_bom must be true or false.", param="parameters.csv_bom")
        options["csv_bom"] = flat["csv_bom"]
    if "timestamp_format" in flat:
        style = flat["timestamp_format"]
        if not isinstance(style, str) or style.strip() not in TIMESTAMP_STYLES:
            raise InvalidParameter(
                f"{show(style)} is not a timestamp format. Use 'stripe' (2024-11-03 01:30:00, "
                f"Stripe's) or 'iso8601' (2024-11-03T01:30:00-04:00, with the UTC offset).",
                param="parameters.timestamp_format")
        options["timestamp_format"] = style.strip()
    if "locale" in flat:
        options["locale"] = validate_locale(flat["locale"])
    for name, value in options.items():
        formats = OPTION_FORMATS[name]
        if fmt not in formats and value != ValidatedReport.model_fields[name].default:
            raise InvalidParameter(
                f"{name} applies to {' and '.join(f.upper() for f in formats)} files only, not "
                f"{fmt.upper()}; leave it out for this format.", param=_param(name))
    return options


def validate_columns(report: ReportType, value: Any) -> list[str]:
    if value is None:
        return report.default_columns
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(
            f"columns must be a non-empty list of column names. Available columns: "
            f"{', '.join(report.column_names)}.", param="parameters.columns")
    unknown = [c for c in value if not report.has_column(c)]
    if unknown:
        metadata = " and payment_metadata[key] for any metadata key" if report.has_metadata_columns else ""
        raise InvalidParameter(
            f"{report.id} has no column {', '.join(show(c) for c in unknown[:5])}"
            f"{' (and more)' if len(unknown) > 5 else ''}. Available columns: "
            f"{', '.join(report.column_names)}{metadata}.", param="parameters.columns")
    duplicates = sorted(c for c, n in Counter(value).items() if n > 1)
    if duplicates:
        raise InvalidParameter(f"Column {', '.join(duplicates)} is listed more than once.",
                               param="parameters.columns")
    return list(value)


def _flatten(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InvalidParameter("parameters must be an object of report parameters.", param="parameters")
    flat = {k: v for k, v in parameters.items() if k != "filters"}
    nested = parameters.get("filters")
    if nested is not None:
        if not isinstance(nested, dict):
            raise InvalidParameter("filters must be an object such as {\"currency\": \"usd\"}.",
                                   param="parameters.filters")
        for key, value in nested.items():
            if key in flat:
                raise InvalidParameter(f"{key} is given twice (in parameters and in filters).",
                                       param=_param(key))
            flat[key] = value
    return flat


def _describe(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S") + f" {tz}"


def validate_parameters(
    report: ReportType, account_id: str, parameters: Any, fmt: Any, *,
    max_span_days: int, now: datetime, account_timezone: str | None = None,
    data_available_end: datetime | None = None,
) -> ValidatedReport:
    if not isinstance(fmt, str) or fmt.strip().lower() not in FORMATS:
        raise InvalidParameter(f"{show(fmt)} is not a format we produce. Use one of: {', '.join(FORMATS)}.",
                               param="format")
    fmt = fmt.strip().lower()
    if not isinstance(account_id, str) or not account_id.strip():
        raise InvalidParameter("An account id is required.", param="account")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt_timezone.utc)
    raw = parameters if isinstance(parameters, dict) else {}
    given = _flatten(parameters)

    accepted = {*INTERVAL_KEYS, *_RELATIVE_ALIASES, *_OTHER_KEYS, *OPTION_FORMATS, *report.filters}
    if report.interval == "end_only":
        accepted.discard("interval_start")
    for key, value in given.items():
        # A null for a parameter this type does not take is harmless; an unknown name is an
        # error whatever its value (it is stored with the request otherwise).
        if key in accepted or (value is None and (key in FILTERS or key in INTERVAL_KEYS)):
            continue
        if key in FILTERS:
            raise InvalidParameter(
                f"The {report.id} report cannot be filtered by {key}. It accepts: "
                f"{', '.join(sorted(report.filters)) or 'no filters'}.", param=_param(key))
        if key == "interval_start":
            raise InvalidParameter(
                f"The {report.id} report is as of one moment: give interval_end only.",
                param=_param(key))
        raise InvalidParameter(
            f"Unknown parameter {show(key)}. The {report.id} report accepts: {', '.join(sorted(accepted))}.",
            param=_param(key))
    # Absent and null are the same thing for every parameter the report takes.
    flat = {k: v for k, v in given.items() if v is not None}

    if "timezone" in flat:
        tz, tz_source = validate_timezone(flat["timezone"]), "parameter"
    elif account_timezone:
        tz, tz_source = validate_timezone(account_timezone, param="account.timezone"), "account"
    else:
        tz, tz_source = "UTC", "default"

    filters = {name: validate_filter(report, name, flat[name]) for name in sorted(report.filters)
               if name in flat}
    options = _validate_options(flat, fmt)
    columns = validate_columns(report, flat.get("columns"))

    relative_keys = [k for k in _RELATIVE_ALIASES if k in flat]
    relative = None
    start = end = None
    if relative_keys:
        relative_param = relative_keys[0]
        if len(relative_keys) > 1:
            raise InvalidParameter("Give relative_range once.", param=_param(relative_keys[1]))
        explicit = [k for k in INTERVAL_KEYS if k in flat]
        if explicit:
            raise InvalidParameter(
                f"Give either {relative_param} or {explicit[0]}, not both.", param=_param(explicit[0]))
        relative = flat[relative_param]
        if relative not in RELATIVE_RANGES:
            raise InvalidParameter(
                f"{show(relative)} is not a relative range. Use one of: {', '.join(RELATIVE_RANGES)}.",
                param=_param(relative_param))
        start, end = resolve_relative_range(relative, tz, now)
        if report.interval == "end_only":
            start = None
        elif start >= end:
            raise InvalidParameter(
                f"{relative} covers no complete day yet (today is its first day); "
                f"choose another range.", param=_param(relative_param))
    else:
        relative_param = None
        if "interval_start" in flat:
            start = parse_instant(flat["interval_start"], "interval_start", tz)
        if "interval_end" in flat:
            end = parse_instant(flat["interval_end"], "interval_end", tz)
        by_payout = report.interval == "required_unless_payout" and "payout" in filters
        needed = ["interval_end"] if report.interval == "end_only" else list(INTERVAL_KEYS)
        if by_payout and start is None and end is None:
            needed = []
        for key in needed:
            if key not in flat:
                raise InvalidParameter(
                    f"{key} is required: the {'end' if key == 'interval_end' else 'start'} of the "
                    f"period to report on (or use relative_range, e.g. last_month).", param=_param(key))
        if start is not None and end is not None and start >= end:
            raise InvalidParameter(
                f"interval_end ({_describe(end, tz)}) must be after interval_start "
                f"({_describe(start, tz)}); interval_end is exclusive.", param="parameters.interval_end")

    end_param = _param(relative_param) if relative_param else "parameters.interval_end"
    if end is not None:
        if end > now:
            raise InvalidParameter(
                f"interval_end ({_describe(end, tz)}) is in the future; reports can only cover "
                f"time that has passed.", param=end_param)
        if data_available_end is not None and end > data_available_end:
            raise InvalidParameter(
                f"Data is available up to {_describe(data_available_end, tz)} only; choose an "
                f"interval_end at or before it, or try again after the next data sync.",
                param=end_param)
    if start is not None and end is not None and end - start > timedelta(days=max_span_days):
        raise InvalidParameter(
            f"The interval covers {(end - start) / timedelta(days=1):.1f} days; a report can cover at "
            f"most {max_span_days} days. Split it into several reports.",
            param=_param(relative_param) if relative_param else "parameters.interval_start")

    return ValidatedReport(
        account_id=account_id.strip(), report_type=report.id, format=fmt, timezone=tz,
        timezone_source=tz_source, interval_start=start, interval_end=end, relative_range=relative,
        filters=filters, columns=columns, parameters=dict(raw), now=now, **options,
    )
