"""exports.html_pdf: a summary PDF's stylesheet is parsed once per thread, not per document, and
its charts are drawn from their specs as WeasyPrint fetches them."""

from __future__ import annotations

import threading

import weasyprint

from exports import html_pdf

STYLESHEET = "@page { size: A5; } p { color: #333; font-size: 9pt; }"


def test_a_stylesheet_is_parsed_once_per_thread(tmp_path, monkeypatch):
    parsed = []

    class CountingCSS(weasyprint.CSS):
        def __init__(self, *args, **kwargs):
            parsed.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(weasyprint, "CSS", CountingCSS)
    monkeypatch.setattr(html_pdf, "_local", threading.local())
    for n in range(3):
        html_pdf.write_pdf(html_pdf.Document(f"<p>document {n}</p>", STYLESHEET, str(tmp_path)),
                           tmp_path / f"{n}.pdf")
    other = threading.Thread(target=html_pdf.write_pdf,
                             args=(html_pdf.Document("<p>elsewhere</p>", STYLESHEET, str(tmp_path)), tmp_path / "other.pdf"))
    other.start()
    other.join()
    assert len(parsed) == 2 and parsed[0] != parsed[1]  # once here, once in the other thread
    for name in ("0", "1", "2", "other"):
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_the_stylesheet_styles_every_document(tmp_path):
    """The cached stylesheet still applies: an A5 page (420 x 595 pt) on each document."""
    import subprocess

    for n in range(2):
        out = tmp_path / f"{n}.pdf"
        html_pdf.write_pdf(html_pdf.Document("<p>page</p>", STYLESHEET, str(tmp_path)), out)
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
        assert "Page size:       419.528 x 595.276 pts" in info


def test_charts_are_drawn_from_their_specs_where_the_pdf_is_rendered(tmp_path):
    import subprocess

    spec = {"mark": "bar", "width": 200, "height": 80,
            "data": {"values": [{"k": "Charges", "v": 1234.5}, {"k": "Refunds", "v": 321}]},
            "encoding": {"x": {"field": "k", "type": "nominal", "title": "Kategorie"},
                         "y": {"field": "v", "type": "quantitative", "title": "Betrag"}}}
    url = html_pdf.chart_url(0)
    document = html_pdf.Document(f'<p>Chart</p><img src="{url}" style="width: 80mm">', STYLESHEET,
                                 str(tmp_path), {url: (spec, "de-DE")})
    html_pdf.write_pdf(document, tmp_path / "chart.pdf")
    text = subprocess.run(["pdftotext", str(tmp_path / "chart.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Kategorie" in text and "Betrag" in text and "Refunds" in text
    # d3's de-DE number format on the axis: 1.000 (en-US would print 1,000)
    assert "1.000" in text
    missing = html_pdf.Document(f'<img src="{html_pdf.chart_url(1)}">', STYLESHEET, str(tmp_path), {})
    html_pdf.write_pdf(missing, tmp_path / "missing.pdf")  # WeasyPrint skips an image it cannot fetch
