"""Server-side inline SVG charts for the web pages (no JavaScript, no chart library at run time).

One horizontal bar chart per currency of a summary's chart value by its label, like the summary
PDF. Kept to one function with plain inputs so it can be swapped for the shared presentation
module the PDFs use once that exists.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

ROW_HEIGHT = 26
LABEL_WIDTH = 190
VALUE_WIDTH = 110
BAR_AREA = 380


def bar_chart(title: str, bars: list[tuple[str, Decimal, str]]) -> str:
    """bars: (label, value, value shown). Negative values grow left of the zero line."""
    if not bars:
        return ""
    values = [v for _, v, _ in bars]
    low, high = min(min(values), Decimal(0)), max(max(values), Decimal(0))
    span = (high - low) or Decimal(1)
    zero_x = LABEL_WIDTH + float((0 - low) / span) * BAR_AREA
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    height = ROW_HEIGHT * len(bars) + 12
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, value, shown) in enumerate(bars):
        y = 6 + i * ROW_HEIGHT
        bar = float(abs(value) / span) * BAR_AREA
        x = zero_x - bar if value < 0 else zero_x
        kind = "neg" if value < 0 else "pos"
        short = label if len(label) <= 26 else label[:25] + "…"
        out.append(f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">'
                   f'<title>{escape(label)}</title>{escape(short)}</text>')
        out.append(f'<rect class="bar {kind}" x="{x:.1f}" y="{y + 4}" width="{max(bar, 1):.1f}" '
                   f'height="{ROW_HEIGHT - 8}" rx="2"/>')
        out.append(f'<text class="chart-value" x="{LABEL_WIDTH + BAR_AREA + 6}" y="{y + 17}">'
                   f'{escape(shown)}</text>')
    out.append(f'<line class="axis" x1="{zero_x:.1f}" x2="{zero_x:.1f}" y1="2" y2="{height - 2}"/>')
    out.append("</svg>")
    return "".join(out)
