"""Schedules in words: "every month on the 1st at 06:00 Europe/Berlin".

The shapes report schedules use (daily, weekdays, weekly, monthly, several days or hours) are
worded here the way a finance team would say them; anything else falls back to cron-descriptor
(24-hour clock), with the timezone appended either way.
"""

from __future__ import annotations

from cron_descriptor import Options, get_description

_MACROS = {"@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
           "@hourly": "0 * * * *"}
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_DAY_NAMES = {name[:3].lower(): i for i, name in enumerate(_DAYS)}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _day(token: str) -> int | None:
    token = token.lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    return _DAY_NAMES.get(token[:3])


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _weekdays(field: str) -> str | None:
    if field in ("1-5", "mon-fri", "MON-FRI"):
        return "every weekday (Monday to Friday)"
    days = [_day(part) for part in field.split(",")]
    if None in days:
        return None
    return "every " + _join([_DAYS[d] for d in days])


def _fallback(expression: str) -> str:
    options = Options()
    options.use_24hour_time_format = True
    text = get_description(expression, options)
    return text[0].lower() + text[1:]


def describe(expression: str, timezone: str) -> str:
    expr = _MACROS.get(expression.strip(), expression.strip())
    parts = expr.split()
    if len(parts) != 5:
        return f"{expression} ({timezone})"
    minute, hour, dom, month, dow = parts
    if minute.isdigit() and hour.isdigit():
        at = f"at {int(hour):02d}:{int(minute):02d} {timezone}"
        if dom == "*" and month == "*":
            if dow == "*":
                return f"every day {at}"
            days = _weekdays(dow)
            if days:
                return f"{days} {at}"
        if dow == "*" and month == "*" and all(p.isdigit() for p in dom.split(",")):
            return f"every month on the {_join([ordinal(int(d)) for d in dom.split(',')])} {at}"
        if dow == "*" and dom.isdigit() and month == "1,4,7,10":
            return f"every quarter on the {ordinal(int(dom))} (January, April, July, October) {at}"
        if dow == "*" and dom.isdigit() and month.isdigit() and 1 <= int(month) <= 12:
            return f"every year on {_MONTHS[int(month) - 1]} {int(dom)} {at}"
    if minute.isdigit() and hour == "*" and dom == month == dow == "*":
        return f"every hour at minute {int(minute)} ({timezone})"
    try:
        return f"{_fallback(expr)} ({timezone})"
    except Exception:  # noqa: BLE001 — an unusual but valid cron still shows as itself
        return f"{expression} ({timezone})"
