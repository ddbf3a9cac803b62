"""exports.html_pdf: a summary PDF's stylesheet is parsed once per thread, not per document."""

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
        html_pdf.write_pdf(f"<p>document {n}</p>", STYLESHEET, str(tmp_path), tmp_path / f"{n}.pdf")
    other = threading.Thread(target=html_pdf.write_pdf,
                             args=("<p>elsewhere</p>", STYLESHEET, str(tmp_path), tmp_path / "other.pdf"))
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
        html_pdf.write_pdf("<p>page</p>", STYLESHEET, str(tmp_path), out)
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
        assert "Page size:       419.528 x 595.276 pts" in info
