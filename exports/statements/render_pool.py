"""Both cores for a run of statements: the HTML -> PDF step of summary PDFs in worker processes
while the run's process queries the warehouse and records the other files.

A summary PDF's query, figures, chart specs and HTML are made where the warehouse is open (in
embedded mode only one process may open it); drawing the charts and WeasyPrint's layout — about
half the CPU of a statement pack — need nothing but that document. So a run renders its packs on
PACK_THREADS threads (the warehouse client serializes their queries; the rest is database round
trips and waiting for a worker) and hands each document to a pool of spawned workers: plain data
in (exports.html_pdf.Document, path), the file out, nothing else shared. The children never open
the warehouse or a database. Drawing the charts there matters beyond its CPU: vl-convert holds
the GIL while it draws (~75 ms a chart), which stopped the run's other pack threads.

Workers are replaced after TASKS_PER_WORKER documents, which bounds whatever a long-lived
WeasyPrint process accumulates (font and image caches).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exports import html_pdf

log = logging.getLogger(__name__)

# Threads rendering packs in the run's process. A pack's thread waits for the PDF worker, then
# for the warehouse (one client: queries take turns), then for Postgres and SMTP; with two
# threads, both were often past the PDF and the worker sat idle (pack threads spent 41% of
# their time waiting for it, and it was 63% busy). Three: 14% more packs a second on 2 cores
# (benchmarks/statements.py, 300 accounts, two A/B pairs, 2026-12-01: 0.461 -> 0.397 s a pack at
# the same engine-alone baseline), for ~4 MB more and one more pooled connection and SMTP session.
PACK_THREADS = 3
TASKS_PER_WORKER = 200


def default_workers() -> int:
    """One worker per core beyond the run's own, at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


def _warm_up() -> None:
    import weasyprint  # noqa: F401 - ~0.7 s once per worker, before its first document

    from exports import vega

    vega.warm_up()  # the chart engine's start, ~0.4 CPU-s


def _render(document: "html_pdf.Document", path: str) -> None:
    # exports.html_pdf, not the PDF writer: importing the writer would load the warehouse
    # client's libraries (chdb: hundreds of MB) into every worker.
    from exports import html_pdf

    html_pdf.write_pdf(document, path)


@contextmanager
def pdf_workers(workers: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """A pool of spawned WeasyPrint workers (spawn: a fork of a process holding chdb and
    database connections would inherit them)."""
    pool = ProcessPoolExecutor(max_workers=workers or default_workers(),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm_up, max_tasks_per_child=TASKS_PER_WORKER)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def html_to_pdf_in(pool: ProcessPoolExecutor):
    """The exports.writers.pdf_writer.html_to_pdf function that renders in `pool` (the calling
    thread waits for its document; an error in the document is raised here, failing that file).
    If a worker dies (e.g. killed for memory), the pool is broken for good: the rest of the run
    renders in its own process, slower but with the same files."""
    def render(document: "html_pdf.Document", path: Path) -> None:
        try:
            pool.submit(_render, document, str(path)).result()
        except BrokenProcessPool:
            log.warning("a PDF worker died; rendering the run's remaining PDFs in this process")
            _render(document, str(path))

    return render
