"""Fitting an itemized PDF's columns onto the page — without ever dropping a character.

Each column is either ATOMIC (ids and codes, amounts, numbers, times, dates, booleans: shown
whole on one line, as wide as its widest value) or TEXT (merchant/customer text and JSON:
wrapped onto as many lines as it needs, never narrower than ~`TEXT_MIN_CHARS` characters). The
plan tries A4 portrait at 8 pt, then A4 landscape from 8 pt down to the readable floor
(`MIN_FONT_SIZE`); the first page/size where every atomic column fits whole wins. If none does,
the selection is refused with an InvalidParameter naming `columns` (the API's 400) that says how
much room is missing and suggests CSV or XLSX. Widths come from column kinds and the widest
values, never from column names.

Two callers: the request validator (`check_itemized_columns_fit`, nominal widths per kind, no
data: refuses only what cannot fit whatever the data), and the writer (`plan_itemized_layout`
with the report's real widest values). If a value is still wider than planned (it cannot be, but
the renderer does not trust that), the renderer breaks it over lines rather than cut it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exports.errors import InvalidParameter
from exports.reports.query import Column
from exports.writers.presentation import label

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MIN_FONT_SIZE = 6.0  # the readable floor for a dense printed table (DejaVu Sans Condensed)
A4 = (595.2756, 841.8898)
PAGES = ((A4, 8.0), ((A4[1], A4[0]), 8.0), ((A4[1], A4[0]), 7.5), ((A4[1], A4[0]), 7.0),
         ((A4[1], A4[0]), 6.5), ((A4[1], A4[0]), MIN_FONT_SIZE))
MARGIN = 24.0
PAD = 3.0  # each side of a cell
TEXT_MIN_CHARS = 16
LINE_SPACING = 1.28  # line height / font size
WRAP_LINES_GOAL = 2  # the longest text value of a row should not need more lines than this

# Widest plausible values per kind for the request-time check (no data yet). Ids are Stripe's
# length (prefix + 24 characters); amounts ten significant digits.
NOMINAL = {"timestamp": "2024-12-31 23:59:59", "date": "2024-12-31", "money": "-99,999,999.99",
           "integer": "9,999,999", "boolean": "false", "id": "txn_1NirD82eZvKYlo2CIvbtLWuY",
           "code": "succeeded"}


def is_text(column: Column) -> bool:
    """Wrapped over lines (people's text, JSON) rather than kept whole (ids, codes, numbers)."""
    return column.kind == "json" or (column.kind == "string" and column.user_text)


FALLBACK_FONT = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")  # CJK


def fonts() -> tuple[str, str]:
    """DejaVu Sans Condensed when installed, else Helvetica (Latin-1 only)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = FONT_DIR / "DejaVuSansCondensed.ttf", FONT_DIR / "DejaVuSansCondensed-Bold.ttf"
    if not (regular.exists() and bold.exists()):
        return "Helvetica", "Helvetica-Bold"
    if "PayreportsSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("PayreportsSans", str(regular)))
        pdfmetrics.registerFont(TTFont("PayreportsSans-Bold", str(bold)))
        if FALLBACK_FONT.exists():
            pdfmetrics.registerFont(TTFont("PayreportsFallback", str(FALLBACK_FONT)))
    return "PayreportsSans", "PayreportsSans-Bold"


class Text:
    """Measuring and drawing text with a glyph fallback: characters DejaVu lacks (CJK) are
    drawn in Droid Sans Fallback, so no character turns into a blank box."""

    def __init__(self) -> None:
        from reportlab.pdfbase import pdfmetrics

        self.regular, self.bold = fonts()
        registered = pdfmetrics.getRegisteredFontNames()
        self.fallback = "PayreportsFallback" if "PayreportsFallback" in registered else None
        if self.regular == "PayreportsSans":
            self.covered = frozenset(pdfmetrics.getFont(self.regular).face.charWidths)
        else:
            self.covered = frozenset(range(256))
        self.fallback_covered = (frozenset(pdfmetrics.getFont(self.fallback).face.charWidths)
                                 if self.fallback else frozenset())

    def plain(self, text: str) -> bool:
        return text.isascii() or self.fallback is None or all(ord(c) in self.covered for c in text)

    def runs(self, text: str, face: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for char in text:
            use = face if ord(char) in self.covered or ord(char) not in self.fallback_covered \
                else self.fallback
            if out and out[-1][0] == use:
                out[-1] = (use, out[-1][1] + char)
            else:
                out.append((use, char))
        return out

    def width(self, text: str, face: str, size: float) -> float:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        if self.plain(text):
            return stringWidth(text, face, size)
        return sum(stringWidth(part, use, size) for use, part in self.runs(text, face))

    def draw(self, pdf, x: float, y: float, text: str, face: str, size: float, *,
             right: bool = False) -> None:
        if self.plain(text):
            (pdf.drawRightString if right else pdf.drawString)(x, y, text)
            return
        if right:
            x -= self.width(text, face, size)
        for use, part in self.runs(text, face):
            pdf.setFont(use, size)
            pdf.drawString(x, y, part)
            x += self.width(part, use, size)
        pdf.setFont(face, size)

    def width_table(self) -> tuple[list[str], list[int]]:
        """(characters, widths in 1/1000 em) of the regular face for Latin text: ClickHouse
        measures every value with it to find each column's widest (`widest_sql`)."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        chars = [chr(c) for c in range(32, 0x250) if c in self.covered and not 0x7f <= c < 0xa0]
        return chars, [round(stringWidth(c, self.regular, 1000)) for c in chars]


def width_table_sql(text: Text) -> str:
    """A WITH clause naming the width table for `width_sql`."""
    chars, widths = text.width_table()
    quoted = ", ".join("'" + c.replace("\\", "\\\\").replace("'", "\\'") + "'" for c in chars)
    return f"WITH [{quoted}] AS width_chars, [{', '.join(map(str, widths))}] AS width_values"


def width_sql(ref: str) -> str:
    """ClickHouse: the printed width of a String in 1/1000 em (characters outside the table
    count as a full em, as wide as a CJK glyph), to pick each column's widest value rather than
    its longest."""
    return (f"arraySum(arrayMap(x -> transform(x, width_chars, width_values, toUInt16(1000)), "
            f"ngrams({ref}, 1)))")


@dataclass(frozen=True)
class ItemizedLayout:
    page_size: tuple[float, float]
    font_size: float
    line_height: float
    widths: tuple[float, ...]
    lefts: tuple[float, ...]
    wrap: tuple[bool, ...]  # text columns wrap at words
    numeric: tuple[bool, ...]  # right-aligned
    headers: tuple[tuple[str, ...], ...]  # each column's header, already split into lines
    font: str
    bold: str

    @property
    def landscape(self) -> bool:
        return self.page_size[0] > self.page_size[1]

    @property
    def header_lines(self) -> int:
        return max((len(h) for h in self.headers), default=1)


def nominal_widest(column: Column) -> str:
    if is_text(column):
        return ""
    if column.kind == "string":
        return NOMINAL["id"] if column.name.endswith("_id") else NOMINAL["code"]
    return NOMINAL.get(column.kind, NOMINAL["code"])


def _header_lines(text: str, width: float, face: str, size: float) -> list[str]:
    from reportlab.lib.utils import simpleSplit

    return simpleSplit(text, face, size, width) or [text]


def _longest_word(text: str, face: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return max((stringWidth(w, face, size) for w in text.split()), default=0.0)


def plan_itemized_layout(columns: Sequence[Column], widest: Sequence[str]) -> ItemizedLayout:
    """The first page/size in PAGES where every column fits (see the module docstring);
    `widest[i]`: column i's widest value as printed (for text columns: its longest value)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = Text()
    font, bold = text.regular, text.bold
    headers = [label(c.name) for c in columns]
    wrap = tuple(is_text(c) for c in columns)
    numeric = tuple(c.kind in ("money", "integer") for c in columns)
    shortfall = 0.0
    fitting: tuple[float, ItemizedLayout] | None = None
    for page_size, size in PAGES:
        usable = page_size[0] - 2 * MARGIN
        minimum, natural, one_line = [], [], []
        for i, column in enumerate(columns):
            head = _longest_word(headers[i], bold, size)
            one_line.append(text.width(headers[i], bold, size) + 2 * PAD)
            value = text.width(widest[i] or "", font, size)
            if wrap[i]:
                floor = min(value, stringWidth("n" * TEXT_MIN_CHARS, font, size))
                minimum.append(max(head, floor) + 2 * PAD)
                natural.append(max(head, value) + 2 * PAD)
            else:
                minimum.append(max(head, value) + 2 * PAD)
                natural.append(minimum[-1])
        need = sum(minimum)
        if need <= usable:
            widths = _distribute(minimum, natural, one_line, wrap, usable)
            lefts = [MARGIN]
            for w in widths[:-1]:
                lefts.append(lefts[-1] + w)
            header_lines = tuple(tuple(_header_lines(h, w - 2 * PAD, bold, size))
                                 for h, w in zip(headers, widths))
            layout = ItemizedLayout(page_size, size, round(size * LINE_SPACING, 2), tuple(widths),
                                    tuple(lefts), wrap, numeric, header_lines, font, bold)
            # The largest size whose longest text wraps onto at most WRAP_LINES_GOAL lines; if
            # none, the size with the shortest such row (more rows per page, fewer breaks).
            lines = max((math.ceil(n / w) for n, w, t in zip(natural, widths, wrap) if t),
                        default=1)
            if lines <= WRAP_LINES_GOAL:
                return layout
            height = lines * layout.line_height
            if fitting is None or height < fitting[0]:
                fitting = (height, layout)
            continue
        if fitting is not None:
            break
        shortfall = need - usable
    if fitting is not None:
        return fitting[1]
    widest_columns = sorted(range(len(columns)), key=lambda i: -minimum[i])[:3]
    raise InvalidParameter(
        f"The {len(columns)} selected columns do not fit a PDF page: even on A4 landscape at "
        f"{MIN_FONT_SIZE:g} pt they need {need / 72 * 25.4:.0f} mm and the page has "
        f"{usable / 72 * 25.4:.0f} mm ({shortfall / 72 * 25.4:.0f} mm short), and a PDF never "
        f"cuts a value. Select fewer columns (the widest are "
        f"{', '.join(columns[i].name for i in widest_columns)}), or request CSV or XLSX, "
        f"which have no width limit.", param="columns")


def _grow(widths: list[float], targets: list[float], room: float) -> float:
    """Grow widths toward their targets, in proportion when room is short; returns room left."""
    wanted = sum(max(t - w, 0.0) for w, t in zip(widths, targets))
    if wanted <= 0:
        return room
    share = min(1.0, room / wanted)
    for i, (w, t) in enumerate(zip(widths, targets)):
        widths[i] = w + max(t - w, 0.0) * share
    return room - wanted * share


def _distribute(minimum: list[float], natural: list[float], header: list[float],
                wrap: Sequence[bool], usable: float) -> list[float]:
    """From every column's minimum: text columns grow toward their natural width, then every
    column toward a one-line header, then what is left goes to the text columns (or to every
    column alike when there is none), so the table spans the page."""
    widths = list(minimum)
    room = _grow(widths, natural, usable - sum(widths))
    room = _grow(widths, [max(w, h) for w, h in zip(widths, header)], room)
    takers = [i for i, w in enumerate(wrap) if w] or list(range(len(widths)))
    for i in takers:
        widths[i] += room / len(takers)
    return widths


def check_itemized_columns_fit(columns: Sequence[Column]) -> None:
    """For request validation: InvalidParameter(param="columns") when the selection cannot fit
    a page even with nominal values."""
    plan_itemized_layout(columns, [nominal_widest(c) for c in columns])
