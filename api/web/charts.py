"""Server-side charts for the web pages (no JavaScript, no chart library at run time).

A horizontal bar chart of a summary's chart value by its label, one per currency, like the
summary PDF. Labels and values are HTML text (legible at any width); each bar is a small inline
SVG stretched to its grid cell, with the zero line where positive and negative bars meet. Kept
to one function with plain inputs so it can be swapped for the shared presentation module the
PDFs use once that exists.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape


def bar_chart(title: str, bars: list[tuple[str, Decimal, str]]) -> str:
    """bars: (label, value, value as shown). Negative values grow left of the zero line."""
    if not bars:
        return ""
    values = [v for _, v, _ in bars]
    low, high = min(min(values), Decimal(0)), max(max(values), Decimal(0))
    span = (high - low) or Decimal(1)
    zero = float((0 - low) / span) * 100
    rows = []
    for label, value, shown in bars:
        width = float(abs(value) / span) * 100
        x = zero - width if value < 0 else zero
        kind = "neg" if value < 0 else "pos"
        rows.append(
            f'<span class="bc-label" title="{escape(label)}">{escape(label)}</span>'
            f'<svg class="bc-bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect class="bar {kind}" x="{x:.2f}" y="1.5" width="{max(width, 0.4):.2f}" height="7"/>'
            f'<line class="axis" x1="{zero:.2f}" x2="{zero:.2f}" y1="0" y2="10"/></svg>'
            f'<span class="bc-value">{escape(shown)}</span>')
    listing = "; ".join(f"{label}: {shown}" for label, _, shown in bars)
    return (f'<figure class="barchart"><figcaption>{escape(title)}</figcaption>'
            f'<div class="bc-grid" role="img" aria-label="{escape(title)}. {escape(listing)}">'
            + "".join(rows) + "</div></figure>")
