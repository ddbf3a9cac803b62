"""HTML -> PDF with WeasyPrint, its stylesheet parsed once per thread.

A summary PDF's stylesheet (with its @font-face rules) is the same for every document of a
process; given inside each document's HTML, WeasyPrint parses it and loads its fonts again for
every file, ~20% of a statement summary PDF's CPU. Given as a separate string, it is parsed into
a `weasyprint.CSS` with its own `FontConfiguration` once, and later documents reuse both (the
way WeasyPrint's documentation shares a font configuration between documents). Per thread:
WeasyPrint's objects are not documented as safe to share between threads.

Imports nothing of the engine: the statements' PDF worker processes (exports.statements.
render_pool) use it without loading the warehouse client.
"""

from __future__ import annotations

import threading
from pathlib import Path

_MAX_STYLESHEETS = 4  # distinct stylesheets kept per thread (one per template in practice)
_local = threading.local()


def _stylesheet(stylesheet: str, base_url: str):
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration

    cache: dict = _local.__dict__.setdefault("stylesheets", {})
    key = (stylesheet, base_url)
    if key not in cache:
        if len(cache) >= _MAX_STYLESHEETS:
            cache.pop(next(iter(cache)))
        fonts = FontConfiguration()
        cache[key] = (weasyprint.CSS(string=stylesheet, base_url=base_url, font_config=fonts), fonts)
    return cache[key]


def write_pdf(html: str, stylesheet: str, base_url: str, path: Path | str) -> None:
    """Render `html` styled by `stylesheet` (CSS text; relative URLs in either against
    `base_url`) to the PDF file `path`."""
    import weasyprint

    css, fonts = _stylesheet(stylesheet, base_url)
    weasyprint.HTML(string=html, base_url=base_url).write_pdf(Path(path), stylesheets=[css],
                                                             font_config=fonts)
