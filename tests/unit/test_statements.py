"""The pure statement logic: stable shards, periods in each account's timezone, the statement
set, deterministic request ids, readiness and the partition summary."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from exports.errors import InvalidParameter
from exports.settings import Settings
from exports.statements.accounts import StatementAccount, accounts_owed
from exports.statements.availability import Readiness, last_closed_month
from exports.statements.items import StatementItem, parse_statement_set
from exports.statements.packs import ShardResult, StatementOutcome, statement_request, statement_request_id
from exports.statements.periods import StatementPeriod, months_between
from exports.statements.shards import SHARD_COUNT, SHARD_KEYS, parse_shard_key, shard_of

UTC = timezone.utc
OCTOBER = StatementPeriod.from_key("2026-10-01")


def test_shards_are_pinned_and_spread_evenly():
    # Pinned: a change to shard_of would move every account to another partition and orphan its
    # statement history in Dagster.
    # The first 8 bytes of sha256, big-endian, mod 64: `printf acct_1 | sha256sum` = 47809e466c8e1222... -> 34.
    assert (shard_of("acct_1"), shard_of("acct_2"), shard_of("acct_3")) == (34, 55, 23)
    counts = Counter(shard_of(f"acct_{n:010x}") for n in range(10_000))
    assert set(counts) == set(range(SHARD_COUNT))
    assert 10_000 / SHARD_COUNT * 0.7 < min(counts.values()) <= max(counts.values()) < 10_000 / SHARD_COUNT * 1.3
    assert SHARD_KEYS[7] == "07" and parse_shard_key("63") == 63
    with pytest.raises(InvalidParameter):
        parse_shard_key("64")


def test_a_period_is_cut_at_each_accounts_local_midnights():
    assert OCTOBER.bounds("Asia/Tokyo") == (datetime(2026, 9, 30, 15, tzinfo=UTC),
                                            datetime(2026, 10, 31, 15, tzinfo=UTC))
    assert OCTOBER.bounds("America/Los_Angeles") == (datetime(2026, 10, 1, 7, tzinfo=UTC),
                                                     datetime(2026, 11, 1, 7, tzinfo=UTC))
    # Berlin leaves summer time on Oct 25: October starts at +02:00 and ends at +01:00.
    assert OCTOBER.bounds("Europe/Berlin") == (datetime(2026, 9, 30, 22, tzinfo=UTC),
                                               datetime(2026, 10, 31, 23, tzinfo=UTC))
    assert OCTOBER.ends_by(["Asia/Tokyo", "America/Los_Angeles", "UTC"]) == datetime(2026, 11, 1, 7, tzinfo=UTC)
    assert OCTOBER.ends_by([]) is None
    assert (OCTOBER.label, OCTOBER.key, OCTOBER.end) == ("2026-10", "2026-10-01", date(2026, 11, 1))
    day = StatementPeriod.from_key("2026-12-31", "daily")
    assert (day.end, day.label) == (date(2027, 1, 1), "2026-12-31")
    assert StatementPeriod.from_key("2026-12-01").end == date(2027, 1, 1)


@pytest.mark.parametrize(("key", "cadence", "param"), [
    ("2026-10-02", "monthly", "period"), ("October", "monthly", "period"), ("2026-10-01", "weekly", "cadence"),
])
def test_bad_period_keys_name_the_field(key, cadence, param):
    with pytest.raises(InvalidParameter) as caught:
        StatementPeriod.from_key(key, cadence)
    assert caught.value.param == param


def test_months_between_is_inclusive_and_names_the_bad_option():
    assert [p.label for p in months_between("2025-11", "2026-02-01")] == [
        "2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(InvalidParameter) as caught:
        months_between("2026-13", "2027-01")
    assert caught.value.param == "--from"
    with pytest.raises(InvalidParameter) as caught:
        months_between("2026-03", "2026-02")
    assert caught.value.param == "--to"


def test_last_closed_month_crosses_the_year():
    assert last_closed_month(datetime(2027, 1, 1, 0, 5, tzinfo=UTC)).label == "2026-12"
    assert last_closed_month(datetime(2026, 11, 30, 23, tzinfo=UTC)).label == "2026-10"


def test_the_statement_set_is_checked_against_the_catalog():
    default = parse_statement_set(Settings().statement_reports)
    assert [i.name for i in default] == ["balance.summary:pdf", "balance_change_from_activity.itemized:csv",
                                         "payout_reconciliation.itemized:csv"]
    assert parse_statement_set("balance.summary.1:xlsx") == (StatementItem("balance.summary", "xlsx"),)
    for bad in ("", "balance.summary", "balance.summary:doc", "nope.summary:csv",
                "balance.summary:pdf,balance.summary.1:pdf"):
        with pytest.raises(InvalidParameter) as caught:
            parse_statement_set(bad)
        assert caught.value.param == "PAYREPORTS_STATEMENT_REPORTS"


def test_request_ids_are_deterministic_and_distinct():
    items = parse_statement_set(Settings().statement_reports)
    ids = {statement_request_id(a, p, i) for a in ("acct_1", "acct_2")
           for p in (OCTOBER, StatementPeriod.from_key("2026-09-01"), StatementPeriod.from_key("2026-10-01", "daily"))
           for i in items}
    assert len(ids) == 2 * 3 * 3
    assert statement_request_id("acct_1", OCTOBER, items[0]) == statement_request_id(
        "acct_1", StatementPeriod.from_key("2026-10-01"), items[0])
    assert all(i.startswith("rpt_stmt") and i.isascii() and i.replace("_", "").isalnum() for i in ids)


def test_a_statement_request_covers_the_local_period_and_emails_the_account():
    account = StatementAccount("acct_1", "Asia/Tokyo", "finance@x.example", datetime(2025, 1, 1, tzinfo=UTC))
    item = StatementItem("balance.summary", "pdf")
    request = statement_request(account, OCTOBER, item, Settings())
    assert request.parameters == {"interval_start": "2026-10-01", "interval_end": "2026-11-01",
                                  "timezone": "Asia/Tokyo"}
    assert (request.source, request.email_recipients) == ("statement", ["finance@x.example"])
    assert statement_request(account, OCTOBER, item, Settings(statement_email_account=False)).email_recipients is None


def test_accounts_are_owed_from_the_period_they_existed_in_and_by_shard():
    late = StatementAccount("acct_2", "Asia/Tokyo", None, datetime(2026, 10, 31, 16, tzinfo=UTC))
    early = StatementAccount("acct_1", "Asia/Tokyo", None, datetime(2026, 10, 31, 14, tzinfo=UTC))
    assert accounts_owed([early, late], OCTOBER) == [early]  # October ended 15:00 UTC in Tokyo
    assert accounts_owed([early], OCTOBER, shard=shard_of("acct_1")) == [early]
    assert accounts_owed([early], OCTOBER, shard=(shard_of("acct_1") + 1) % SHARD_COUNT) == []


def test_readiness_waits_for_the_latest_timezone_and_turns_late_past_the_deadline():
    needed = datetime(2026, 11, 1, 7, tzinfo=UTC)
    deadline = needed + timedelta(hours=12)

    def state(available, now):
        return Readiness(OCTOBER, needed, available, deadline, now)

    waiting = state(datetime(2026, 11, 1, 6, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC))
    assert not waiting.ready and not waiting.late and "waiting for data through" in waiting.describe()
    late = state(None, deadline + timedelta(minutes=1))
    assert late.late and "LATE" in late.describe() and "nothing yet" in late.describe()
    assert state(needed, deadline + timedelta(days=1)).ready
    assert not state(needed, deadline + timedelta(days=1)).late
    assert Readiness(OCTOBER, None, None, None, needed).ready  # nobody is owed anything


def test_shard_summary_counts_statuses_and_totals_the_manifest():
    item = StatementItem("balance.summary", "pdf")
    result = ShardResult(OCTOBER, 5, [
        StatementOutcome("acct_1", item, "rpt_a", "completed", True, row_count=4, file_size_bytes=100),
        StatementOutcome("acct_2", item, "rpt_b", "completed", False, row_count=3, file_size_bytes=50),
        StatementOutcome("acct_3", item, "rpt_c", "failed", True, error_message="boom"),
    ])
    summary = result.summary()
    assert summary["statuses"] == {"completed": 2, "failed": 1} and summary["rendered"] == 2
    assert summary["manifest"] == {"balance.summary:pdf": {"files": 2, "rows": 7, "bytes": 150}}
    assert summary["failed"] == [{"account_id": "acct_3", "statement": "balance.summary:pdf",
                                  "report_id": "rpt_c", "error": "boom"}]
    assert (summary["shard"], summary["accounts"]) == ("05", 3)
