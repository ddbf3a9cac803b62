"""exports.reports.batches: the small CSVs and summary PDFs of many accounts from one query per
group (a PDF: per query it reads), written byte for byte as each file's own queries write them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exports import db
from exports.reports import batches
from exports.reports.catalog import get_report_type
from exports.reports.engine import PDF_COMPANIONS, generate_report, prefetch_accounts, run_cache
from exports.warehouse import open_warehouse
from exports.writers import pdf_writer

pytestmark = pytest.mark.integration

# (report type, format): the statement set's files and the other summaries that batch.
BATCHED = (("balance_change_from_activity.itemized", "csv"), ("payout_reconciliation.itemized", "csv"),
           ("balance.summary", "pdf"), ("balance.summary", "csv"),
           ("balance_change_from_activity.summary", "csv"), ("payouts.summary", "csv"),
           ("ending_balance_reconciliation.summary", "csv"))
OCTOBER = {"interval_start": "2026-10-01", "interval_end": "2026-11-01"}


class _Generated(datetime):
    """A PDF's "generated" time, fixed: two renderings of the same figures are the same HTML."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 11, 2, 9, 30, tzinfo=UTC).astimezone(tz)


@pytest.fixture
def pdf_as_html(monkeypatch):
    """Summary PDFs written as the document WeasyPrint would render (HTML, stylesheet, chart
    specs: what the queries decide), at a fixed generation time."""
    monkeypatch.setattr(pdf_writer, "datetime", _Generated)
    token = pdf_writer.html_to_pdf.set(
        lambda document, out: Path(out).write_text(json.dumps(dataclasses.asdict(document), sort_keys=True)))
    yield
    pdf_writer.html_to_pdf.reset(token)


def _accounts(settings) -> list[tuple[str, str]]:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id, timezone FROM accounts ORDER BY id").fetchall()


# An interval that ends inside a 15-minute bucket: summaries read its edge from the fact, and
# the ending balance reconciliation joins those rows' payouts.
RAGGED = {"interval_start": "2026-10-03T09:15:00.000001", "interval_end": "2026-10-31T12:14:59"}


def _files(accounts) -> list[batches.File]:
    """Every account's files in two timezones: two groups of all accounts per type and format.
    Berlin is one account's own (its summaries read local days, the others' do not), Kolkata's
    offset is half an hour. The summaries once more over a ragged interval."""
    files = []
    for interval, types in ((OCTOBER, BATCHED), (RAGGED, [t for t in BATCHED if t[1] == "csv"
                                                          and get_report_type(t[0]).shape == "summary"])):
        files += [batches.File(account_id, report_type, {**_interval(report_type, interval), "timezone": tz}, fmt)
                  for account_id, _ in accounts for tz in ("Europe/Berlin", "Asia/Kolkata")
                  for report_type, fmt in types]
    return files


def _interval(report_type: str, interval: dict[str, str]) -> dict[str, str]:
    if get_report_type(report_type).interval == "end_only":
        return {"interval_end": interval["interval_end"]}
    return interval


def _generate(client, settings, files, out_dir):
    out_dir.mkdir()
    made = {}
    for n, file in enumerate(files):
        out = out_dir / f"{n}.{file.format}"
        manifest = generate_report(file.account_id, file.report_type, file.parameters, file.format,
                                   out, settings=settings, client=client)
        made[n] = (out.read_bytes(), {k: v for k, v in manifest.to_dict().items() if k != "file_name"})
    return made


class CountingClient:
    """The warehouse client, counting the queries that read rows."""

    def __init__(self, client):
        self._client = client
        self.queries: list[str] = []

    def query(self, sql, *args, **kwargs):
        self.queries.append(sql)
        return self._client.query(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_batched_files_are_each_files_own_bytes_and_manifest(demo_platform, tmp_path, pdf_as_html):
    settings = demo_platform.settings
    accounts = _accounts(settings)
    files = _files(accounts)
    with open_warehouse(settings, purpose="test account batches") as opened:
        alone = _generate(opened, settings, files, tmp_path / "alone")
        client = CountingClient(opened)
        with run_cache():
            prefetch_accounts(client, settings, [a for a, _ in accounts])
            before = len(client.queries)
            kept = batches.prefetch(client, settings, files)
            prefetch_queries = len(client.queries) - before
            before = len(client.queries)
            batched = _generate(client, settings, files, tmp_path / "batched")
            file_queries = client.queries[before:]
    assert kept == len(files)
    # Per report type, format and timezone one query (a PDF: one for the report and one per
    # companion), and the shape of its columns (read once a run): not a query per file.
    groups = {(f.report_type, f.format, f.parameters["timezone"], f.parameters["interval_end"]) for f in files}
    queries = sum(1 + (len(PDF_COMPANIONS.get(report_type, {})) if fmt == "pdf" else 0)
                  for report_type, fmt, _, _ in groups)
    assert prefetch_queries <= 2 * queries < len(files)
    assert file_queries == [], "a prefetched file queried the warehouse"
    assert sum(bool(body.count(b"\n") > 1) for body, _ in alone.values()) >= len(accounts), \
        "the test platform's accounts should have rows in October"
    for n, file in enumerate(files):
        assert batched[n] == alone[n], (file.account_id, file.report_type, file.parameters)


def test_rows_read_at_another_data_version_are_not_used(demo_platform, tmp_path):
    settings = demo_platform.settings
    accounts = _accounts(settings)[:3]
    files = [batches.File(a, BATCHED[0][0], {**OCTOBER, "timezone": "UTC"}, "csv") for a, _ in accounts]
    with open_warehouse(settings, purpose="test account batches") as opened, run_cache():
        assert batches.prefetch(opened, settings, files) == len(files)
        from exports.reports.engine import build_report_query, validate_report_request

        version = demo_platform.data_available_end
        validated = validate_report_request(accounts[0][0], BATCHED[0][0], files[0].parameters,
                                            "csv", settings=settings, data_available_end=version)
        query = build_report_query(opened, validated, settings=settings)
        options = {"fmt": "csv", "money_format": "major", "timestamp_format": validated.timestamp_format}
        assert batches.take(query, **options, data_version=version + timedelta(minutes=15)) is None
        assert batches.take(query, **options, data_version=version) is not None
        assert batches.take(query, **options, data_version=version) is None  # taken once
