"""HTML -> PDF with WeasyPrint: a document's charts drawn as it is rendered, its stylesheet
parsed once per thread.

A `Document` is plain data (it crosses to the statements' PDF worker processes): the HTML, its
stylesheet, and its charts as Vega-Lite specs under the URLs its <img> elements name. WeasyPrint
fetches each chart while it lays the page out, and `exports.vega` draws it then, in whichever
process renders the PDF.

A summary PDF's stylesheet (with its @font-face rules) is the same for every document of a
process; inside each document's HTML, WeasyPrint parsed it and loaded its fonts again for every
file, ~20% of a statement summary PDF's CPU. Given apart, it is parsed into a `weasyprint.CSS`
with its own `FontConfiguration` once, and later documents reuse both (as WeasyPrint's
documentation shares a font configuration between documents). Per thread: WeasyPrint's objects
are not documented as safe to share between threads.

Imports nothing of the engine: the PDF workers (exports.statements.render_pool) use it without
loading the warehouse client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from exports import vega

CHART_URL_SCHEME = "payreports-chart"
_MAX_STYLESHEETS = 4  # distinct stylesheets kept per thread (one per template in practice)
_local = threading.local()


@dataclass(frozen=True)
class Document:
    html: str
    stylesheet: str  # CSS text
    base_url: str  # relative URLs in the HTML and the stylesheet resolve against it
    # f"{CHART_URL_SCHEME}:<n>" -> (Vega-Lite spec, d3 locale of its numbers and dates)
    charts: dict[str, tuple[dict, str]] = field(default_factory=dict)


def chart_url(n: int) -> str:
    return f"{CHART_URL_SCHEME}:{n}"


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


def _fetcher(charts: dict[str, tuple[dict, str]]):
    """WeasyPrint's URL fetcher, answering the document's chart URLs with their SVG; other URLs
    (the stylesheet's fonts) are local files only."""
    import weasyprint
    from weasyprint.urls import URLFetcherResponse

    class Fetcher(weasyprint.URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith(f"{CHART_URL_SCHEME}:"):
                return super().fetch(url, headers)
            if url not in charts:
                raise ValueError(f"the document names no chart {url}")
            spec, locale = charts[url]
            return URLFetcherResponse(url, vega.to_svg(spec, locale).encode(),
                                      {"Content-Type": "image/svg+xml"})

    return Fetcher(allowed_protocols={"file"})


def write_pdf(document: Document, path: Path | str) -> None:
    """Render `document` to the PDF file `path`."""
    import weasyprint

    css, fonts = _stylesheet(document.stylesheet, document.base_url)
    weasyprint.HTML(string=document.html, base_url=document.base_url,
                    url_fetcher=_fetcher(document.charts)).write_pdf(
        Path(path), stylesheets=[css], font_config=fonts)
