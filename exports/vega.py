"""Vega-Lite specs to the SVG a PDF draws, with vl-convert (Vega in an embedded engine, no
browser, no network).

Imports nothing of the engine: the statements' PDF worker processes draw a summary PDF's charts
with it (exports.html_pdf), so that the run's own process, which holds the warehouse, does not
spend its time there (vl-convert holds the GIL while it draws: ~75 ms a chart, during which the
run's other pack threads wait).
"""

from __future__ import annotations

import re

# Specs are laid out with DejaVu Sans (a system font vl-convert finds itself) and drawn with the
# PDF's @font-face family of the same glyphs (the lean DejaVu copies the PDF embeds).
PDF_FONT = "Payreports Sans, DejaVu Sans, sans-serif"


def warm_up() -> None:
    """Start vl-convert's engine (~0.4 CPU-s once per process); call from a background thread."""
    import vl_convert

    vl_convert.vegalite_to_svg({"mark": "point", "data": {"values": [{}]}}, allowed_base_urls=[])


def to_svg(spec: dict, locale: str) -> str:
    """The chart of `spec`, with numbers and dates in d3's `locale` ('de-DE'; d3's default if it
    has no such locale)."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[],
                                     format_locale=_format_locale(locale),
                                     time_format_locale=_format_locale(locale, time=True))
    # No XML prolog; the family WeasyPrint resolves to the lean embedded copies (a document's
    # @font-face rules apply to its SVG images too).
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    return re.sub(r'font-family="[^"]*DejaVu Sans[^"]*"', f'font-family="{PDF_FONT}"', svg)


def _format_locale(name: str, *, time: bool = False) -> str:
    """`name` if d3 has that number (or, `time`, date: month names on time axes) format."""
    import vl_convert

    try:
        (vl_convert.get_time_format_locale if time else vl_convert.get_format_locale)(name)
        return name
    except Exception:  # noqa: BLE001 - d3 has no such locale: fall back to its default
        return "en-US"
