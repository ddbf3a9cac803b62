"""The request store against the real app Postgres: idempotency, scoping, pagination, state
transitions, stuck detection, retention."""

from datetime import datetime, timedelta, timezone
import secrets

import pytest

from exports import db
from exports.errors import Conflict, InvalidParameter, NotFound
from exports.requests import lifecycle, retention, store
from exports.storage import get_storage, report_key

pytestmark = pytest.mark.integration


def _account() -> str:
    return "acct_" + secrets.token_hex(6)


def _new(account: str, **overrides) -> store.NewRequest:
    fields = dict(account_id=account, report_type="balance.summary",
                  parameters={"interval_start": 1, "interval_end": 2}, format="csv")
    fields.update(overrides)
    return store.NewRequest(**fields)


def test_idempotency_same_body_returns_existing_row_and_other_body_conflicts(postgres):
    account = _account()
    first, created = store.create(_new(account, idempotency_key="k1"), postgres)
    again, created_again = store.create(_new(account, idempotency_key="k1"), postgres)
    assert created and not created_again and again["id"] == first["id"]
    with pytest.raises(Conflict) as err:
        store.create(_new(account, idempotency_key="k1", format="xlsx"), postgres)
    assert err.value.param == "Idempotency-Key" and first["id"] in err.value.message
    # The key is scoped per account: another account may use the same key.
    other, created_other = store.create(_new(_account(), idempotency_key="k1"), postgres)
    assert created_other and other["id"] != first["id"]
    rows, _ = store.list_requests(account, settings=postgres)
    assert [r["id"] for r in rows] == [first["id"]]


def test_get_and_cancel_are_scoped_to_the_account(postgres):
    owner, stranger = _account(), _account()
    row, _ = store.create(_new(owner), postgres)
    assert store.get(row["id"], owner, postgres)["id"] == row["id"]
    with pytest.raises(NotFound):
        store.get(row["id"], stranger, postgres)
    with pytest.raises(NotFound):
        store.cancel(row["id"], stranger, postgres)
    assert store.get(row["id"], owner, postgres)["status"] == "pending"


def test_list_is_newest_first_with_cursor_pagination_and_filters(postgres):
    account = _account()
    ids = [store.create(_new(account, report_type="a" if i % 2 else "b"), postgres)[0]["id"]
           for i in range(5)]
    seen, cursor = [], None
    while True:
        page, has_more = store.list_requests(account, limit=2, starting_after=cursor, settings=postgres)
        seen += [r["id"] for r in page]
        if not has_more:
            break
        cursor = page[-1]["id"]
    assert seen == list(reversed(ids))
    only_a, _ = store.list_requests(account, report_type="a", settings=postgres)
    assert [r["id"] for r in only_a] == [ids[3], ids[1]]
    store.cancel(ids[0], account, postgres)
    canceled, _ = store.list_requests(account, status="canceled", settings=postgres)
    assert [r["id"] for r in canceled] == [ids[0]]
    with pytest.raises(InvalidParameter) as err:
        store.list_requests(account, status="bogus", settings=postgres)
    assert err.value.param == "status"


def test_claim_is_atomic_and_finished_rows_are_not_reclaimed(postgres):
    account = _account()
    row, _ = store.create(_new(account), postgres)
    claimed = store.claim_for_processing(row["id"], "run-1", postgres)
    assert claimed["status"] == "processing" and claimed["attempt_count"] == 1
    assert store.update_progress(row["id"], 40, postgres) == "processing"
    done = store.complete(row["id"], file_key="k", file_size_bytes=3, row_count=1, sha256="x",
                          manifest={}, data_version=None,
                          expires_at=datetime.now(timezone.utc), settings=postgres)
    assert done["status"] == "completed" and done["progress"] == 100
    assert store.claim_for_processing(row["id"], "run-2", postgres) is None
    assert store.fail(row["id"], "late failure", postgres) is None
    with pytest.raises(InvalidParameter):
        store.cancel(row["id"], account, postgres)


def test_cancel_is_seen_by_progress_updates(postgres):
    account = _account()
    row, _ = store.create(_new(account), postgres)
    store.claim_for_processing(row["id"], None, postgres)
    store.cancel(row["id"], account, postgres)
    assert store.update_progress(row["id"], 50, postgres) == "canceled"
    assert store.complete(row["id"], file_key="k", file_size_bytes=1, row_count=1, sha256="x",
                          manifest={}, data_version=None, expires_at=datetime.now(timezone.utc),
                          settings=postgres) is None


def test_stuck_rows_are_found_and_go_back_to_the_queue_with_a_reason(postgres):
    row, _ = store.create(_new(_account()), postgres)
    store.claim_for_processing(row["id"], "dead-run", postgres)
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert row["id"] in [r["id"] for r in store.list_stuck(timedelta(minutes=10), later, postgres)]
    assert row["id"] not in [r["id"] for r in store.list_stuck(timedelta(minutes=10), settings=postgres)]
    assert [r["id"] for r in store.list_processing_for_run("dead-run", postgres)] == [row["id"]]
    stuck = store.get(row["id"], settings=postgres)
    assert lifecycle.rescue(stuck, "its run dead-run died", postgres) == "pending"
    requeued = store.get(row["id"], settings=postgres)
    assert requeued["status"] == "pending" and requeued["attempt_count"] == 1  # the next claim counts
    assert requeued["status_reason"].startswith("retrying: its run dead-run died (attempt 1 of 3)")
    assert requeued["not_before"] > datetime.now(timezone.utc)  # backoff before the next claim


def test_only_the_claiming_run_finishes_a_request(postgres):
    row, _ = store.create(_new(_account()), postgres)
    store.claim_for_processing(row["id"], "run-a", postgres)
    later = datetime.now(timezone.utc)
    assert store.complete(row["id"], file_key="k", file_size_bytes=1, row_count=1, sha256="x",
                          manifest={}, data_version=None, expires_at=later, settings=postgres,
                          claimed_by="run-b") is None
    assert store.fail(row["id"], "boom", postgres, claimed_by="run-b") is None
    assert store.retry_later(row["id"], not_before=later, reason="r", settings=postgres,
                             claimed_by="run-b") is None
    assert store.complete(row["id"], file_key="k", file_size_bytes=1, row_count=1, sha256="x",
                          manifest={}, data_version=None, expires_at=later, settings=postgres,
                          claimed_by="run-a")["status"] == "completed"


def test_claim_next_takes_the_most_urgent_claimable_request(postgres):
    account = _account()
    available = datetime(2026, 11, 1, tzinfo=timezone.utc)
    # Priorities above any other test's rows (they share the database), in the same order as
    # scheduled (0) < on-demand (10).
    scheduled, _ = store.create(_new(account, source="schedule", priority=990), postgres)
    backing_off, _ = store.create(_new(account, priority=1000), postgres)
    waiting, _ = store.create(_new(account, source="schedule", priority=990), postgres)
    on_demand, _ = store.create(_new(account, priority=1000), postgres)
    store.claim_for_processing(backing_off["id"], "r0", postgres)
    store.retry_later(backing_off["id"], not_before=datetime.now(timezone.utc) + timedelta(hours=1),
                      reason="later", settings=postgres)
    store.claim_for_processing(waiting["id"], "r0", postgres)
    store.wait_for_data(waiting["id"], until=available + timedelta(days=1), reason="waiting",
                        settings=postgres)
    assert store.get(waiting["id"], settings=postgres)["attempt_count"] == 0  # waiting is no attempt

    def claim(min_priority=990, at=available):
        row = store.claim_next("r1", data_available_end=at, min_priority=min_priority,
                               settings=postgres)
        return row and row["id"]

    assert claim(min_priority=1000) == on_demand["id"]  # an on-demand lane: urgent ones only
    assert claim(min_priority=1000) is None
    assert claim() == scheduled["id"]
    assert claim() is None  # one backs off, one waits for data
    assert claim(at=available + timedelta(days=1)) == waiting["id"]


def test_api_keys_store_only_a_hash_and_revocation_works(postgres):
    account = _account()
    secret, key_row = store.create_api_key(account, "ci", postgres)
    assert store.account_for_key(secret, postgres) == account
    with db.connect("app", postgres) as conn:
        stored = conn.execute("SELECT key_hash, prefix FROM api_keys WHERE id = %s", (key_row["id"],)).fetchone()
    assert secret not in stored[0] and secret.startswith(stored[1])
    assert store.revoke_api_key(key_row["id"], postgres)
    assert store.account_for_key(secret, postgres) is None


def test_token_bucket_limits_bursts_and_refills(postgres):
    account = _account()
    waits = [store.take_rate_token(account, rate_per_second=0.5, burst=3, settings=postgres)
             for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    assert 1.0 < waits[3] <= 2.0  # one token every 2 s


def test_retention_deletes_files_and_keeps_metadata(postgres, tmp_path):
    account = _account()
    row, _ = store.create(_new(account), postgres)
    store.claim_for_processing(row["id"], None, postgres)
    key = report_key(account, row["created_at"], row["id"], "csv", postgres)
    source = tmp_path / "r.csv"
    source.write_text("id\n1\n")
    storage = get_storage(postgres)
    storage.put(source, key, "text/csv")
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    store.complete(row["id"], file_key=key, file_size_bytes=5, row_count=1, sha256="abc",
                   manifest={"row_count": 1}, data_version=None, expires_at=expires, settings=postgres)
    assert row["id"] not in retention.expire_reports(postgres, now=expires - timedelta(seconds=1))
    assert storage.exists(key)
    assert row["id"] in retention.expire_reports(postgres, now=expires + timedelta(seconds=1))
    assert not storage.exists(key)
    after = store.get(row["id"], account, postgres)
    assert after["status"] == "expired"
    assert (after["row_count"], after["sha256"], after["file_size_bytes"]) == (1, "abc", 5)
    assert after["manifest"] == {"row_count": 1}


def test_every_log_line_of_a_report_carries_its_report_and_run_ids(postgres):
    """Operators grep one report's life by its id: processing binds report_id and run_id to
    every line logged inside it (exports/logging.py)."""
    import logging

    from exports.logging import ContextFilter
    from exports.requests.processing import process_request

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("exports.requests.processing")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        assert process_request("rpt_does_not_exist", postgres, run_id="run-123") == "missing"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    assert len(records) >= 2
    assert all(r.report_id == "rpt_does_not_exist" and r.run_id == "run-123" for r in records)


def test_accounts_take_turns_within_a_priority(postgres):
    """One account's backlog does not starve another's requests of the same priority; a higher
    priority still goes first. (A priority above every other test's rows: they share the database.)"""
    big, small, other = _account(), _account(), _account()
    created = [store.create(_new(big, priority=7000), postgres)[0]["id"] for _ in range(6)]
    created += [store.create(_new(small, priority=7000), postgres)[0]["id"] for _ in range(2)]
    created += [store.create(_new(other, priority=7000), postgres)[0]["id"]]
    urgent, _ = store.create(_new(big, priority=7001), postgres)
    created.append(urgent["id"])
    available = datetime(2026, 11, 1, tzinfo=timezone.utc)
    claimed = []
    try:
        while (row := store.claim_next("r-fair", data_available_end=available, min_priority=7000,
                                       settings=postgres)) is not None:
            claimed.append(row)
    finally:
        for request_id in created:  # nothing of this test left claimable for the others
            store.fail(request_id, "test over", postgres)
    assert claimed[0]["id"] == urgent["id"]
    owners = [row["account_id"] for row in claimed[1:]]
    assert owners == [big, small, other, big, small, big, big, big, big]
    assert [row["id"] for row in claimed if row["account_id"] == big][1:] == created[:6]  # oldest first
