"""Money is integer minor units everywhere until a writer formats it.

The exponent of each currency lives in the source `currencies` table and travels with every mart
row as `currency_exponent`; this module only formats, and its fallback table is for callers that
format without a row at hand (tests, the CLI summary).
"""

from __future__ import annotations

from decimal import Decimal

KNOWN_EXPONENTS = {"usd": 2, "eur": 2, "gbp": 2, "aud": 2, "cad": 2, "jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}


def exponent_of(currency: str) -> int:
    try:
        return KNOWN_EXPONENTS[currency.lower()]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


def format_minor(amount_minor: int, exponent: int) -> str:
    """1000, 2 -> '10.00'; -5, 2 -> '-0.05'; 1234, 0 -> '1234'; no thousands separator, no '+'."""
    if exponent == 0:
        return str(int(amount_minor))
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(int(amount_minor)), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}"


def parse_major(text: str, exponent: int) -> int:
    """'10.00' -> 1000 for exponent 2. Exact (Decimal), for tests and reconciliation."""
    value = Decimal(text.strip()).scaleb(exponent)
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than the currency allows ({exponent})")
    return int(value)
