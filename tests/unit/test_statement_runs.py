"""What one statements run shares: the report shapes read once per SQL and timezone, and the
embedded warehouse client handed over only when another process waits for it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from exports.reports.query import Column, ReportQuery
from exports.statements import packs
from exports.writers.manifest import query_columns, shape_cache


class CountingClient:
    def __init__(self):
        self.calls = 0

    def query(self, sql, parameters=None):
        self.calls += 1
        tz = parameters["tz"]
        return SimpleNamespace(column_names=["amount", "_currency", "_exponent"],
                               column_types=[SimpleNamespace(name=f"DateTime64(6, '{tz}')"),
                                             SimpleNamespace(name="String"),
                                             SimpleNamespace(name="UInt8")])


def _query(account_id: str, tz: str) -> ReportQuery:
    return ReportQuery(report_type="t", title="T", shape="itemized", sql="SELECT …",
                       parameters={"account_id": account_id, "tz": tz},
                       columns=(Column("amount", "money"),), account_id=account_id)


def test_a_shape_is_read_once_per_sql_and_timezone_inside_the_cache_only():
    client = CountingClient()
    with shape_cache():
        first = query_columns(client, _query("acct_1", "UTC"))
        assert query_columns(client, _query("acct_2", "UTC")) == first
        assert client.calls == 1
        # The timezone changes the types: not answered from another timezone's shape.
        tokyo = query_columns(client, _query("acct_3", "Asia/Tokyo"))
        assert tokyo[1] == ("DateTime64(6, 'Asia/Tokyo')",) and client.calls == 2
    query_columns(client, _query("acct_1", "UTC"))
    assert client.calls == 3  # outside a block every call reads the shape


class FakeWarehouse:
    def __init__(self):
        self.opened = 0
        self.open_now = 0

    @contextmanager
    def open_warehouse(self, settings, purpose=""):
        self.opened += 1
        self.open_now += 1
        try:
            yield f"client{self.opened}"
        finally:
            self.open_now -= 1


def _turns(monkeypatch, waiting: list[bool]):
    import exports.warehouse as warehouse

    fake = FakeWarehouse()
    monkeypatch.setattr(warehouse, "open_warehouse", fake.open_warehouse)
    monkeypatch.setattr(warehouse, "others_waiting", lambda settings: waiting[0])
    monkeypatch.setattr(packs, "WAREHOUSE_YIELD_SECONDS", 0)
    clock = [0.0]
    monkeypatch.setattr(packs.time, "monotonic", lambda: clock[0])
    turns = packs.WarehouseTurns(SimpleNamespace(warehouse_is_embedded=True))
    return turns, fake, clock


def test_the_client_is_kept_while_nobody_waits_and_handed_over_when_someone_does(monkeypatch):
    waiting = [False]
    turns, fake, clock = _turns(monkeypatch, waiting)
    with turns:
        for step in range(10):
            clock[0] = step * 10.0  # far past a turn
            with turns.lease() as client:
                assert client == "client1"
        assert fake.opened == 1 and turns.handed_over == 0
        waiting[0] = True
        clock[0] = 200.0
        with turns.lease() as client:
            assert client == "client2"
        assert fake.opened == 2 and turns.handed_over == 1
        with turns.lease() as client:  # a fresh turn: kept even though someone still waits
            assert client == "client2"
    assert fake.open_now == 0


def test_a_handover_waits_for_the_file_another_thread_is_rendering(monkeypatch):
    waiting = [False]
    turns, fake, clock = _turns(monkeypatch, waiting)
    rendering, handed = threading.Event(), threading.Event()
    release = threading.Event()

    def other_thread():
        with turns.lease() as client:
            assert client == "client1"
            rendering.set()
            release.wait(5)
            assert fake.open_now == 1 and fake.opened == 1  # not closed under this file

    with turns:
        thread = threading.Thread(target=other_thread)
        thread.start()
        rendering.wait(5)
        waiting[0] = True
        clock[0] = 100.0

        def take():
            with turns.lease() as client:
                assert client == "client2"
                handed.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not handed.wait(0.3)  # blocked while the other file holds the client
        release.set()
        thread.join(5)
        taker.join(5)
        assert handed.is_set() and turns.handed_over == 1


def test_a_handover_whose_waiter_left_is_not_starved_by_files_still_starting(monkeypatch):
    """A thread waiting to hand the client over held its file (its row 'processing', with no
    heartbeat) until no thread leased the client; when the waiting process went away meanwhile,
    the other threads kept leasing and the wait lasted until the shard ran out of packs (60 s
    in a 10,000-account run: the watchdog then failed the live run as dead)."""
    waiting = [False]
    turns, fake, clock = _turns(monkeypatch, waiting)
    first_in, first_release = threading.Event(), threading.Event()
    later_in, later_release = threading.Event(), threading.Event()
    handing_done = threading.Event()

    def hold(entered, release):
        with turns.lease():
            entered.set()
            release.wait(5)

    def hand_over():
        with turns.lease() as client:
            assert client == "client1"  # the waiter left: kept, not reopened
            handing_done.set()

    with turns:
        with turns.lease():
            pass  # opened at t=0
        first = threading.Thread(target=hold, args=(first_in, first_release))
        first.start()
        first_in.wait(5)
        waiting[0] = True
        clock[0] = 100.0
        handing = threading.Thread(target=hand_over)
        handing.start()
        assert not handing_done.wait(0.3)  # waits for the file being rendered
        waiting[0] = False  # the waiting process went away
        later = threading.Thread(target=hold, args=(later_in, later_release))
        later.start()
        first_release.set()
        try:
            assert handing_done.wait(2), "the handing thread waited for a file that began after it"
            assert later_in.wait(2)
        finally:
            later_release.set()
            for thread in (first, handing, later):
                thread.join(5)
        assert fake.opened == 1 and turns.handed_over == 0


@pytest.mark.parametrize("read", ["per file", "for the shard"])
def test_a_statement_row_is_opened_only_once_its_file_holds_the_warehouse(monkeypatch, read):
    """A row opened 'processing' before its turn on the warehouse sat without a heartbeat while
    its thread waited, and the watchdog failed the live run as dead. A rendered file takes no
    turn at all (re-running a month does not open the warehouse for it), whether its status is
    read per file or once for the shard's packs (known_statuses)."""
    events = []

    class Turns:
        held = 0

        @contextmanager
        def lease(self):
            self.held += 1
            events.append("lease")
            try:
                yield "client"
            finally:
                self.held -= 1

    turns = Turns()
    statuses = {"id-new": None, "id-done": "completed", "id-failed": "failed"}
    monkeypatch.setattr(packs, "statement_request_id", lambda account_id, period, item: f"id-{item}")
    monkeypatch.setattr(packs, "statement_request", lambda *args: None)
    if read == "per file":
        monkeypatch.setattr(packs.store, "status_of", lambda request_id, settings: statuses[request_id])
        known = None
    else:
        monkeypatch.setattr(packs.store, "status_of", None)  # not called
        known = {request_id: status for request_id, status in statuses.items() if status}

    def open_statement(request_id, request, run_id, settings):
        events.append(("open", request_id, turns.held))
        status = statuses[request_id]
        return {"status": status or "processing"}, status is None

    monkeypatch.setattr(packs.store, "open_statement", open_statement)
    monkeypatch.setattr(packs.store, "reset_failed",
                        lambda request_id, settings: events.append(("reset", request_id, turns.held)) or {})
    monkeypatch.setattr(packs, "process_request", lambda request_id, settings, **kwargs: events.append(
        ("process", request_id, turns.held, kwargs["client"])))
    done = packs.render_pack(SimpleNamespace(id="acct_1"), None, ["new", "done", "failed"],
                             available=None, run_id="run_1", settings=SimpleNamespace(),
                             warehouse=turns, known_statuses=known)
    assert done == [("new", "id-new", True), ("done", "id-done", False), ("failed", "id-failed", True)]
    assert events == ["lease", ("open", "id-new", 1), ("process", "id-new", 1, "client"),
                      "lease", ("open", "id-failed", 1), ("reset", "id-failed", 1),
                      ("process", "id-failed", 1, "client")]


def test_a_dead_pdf_worker_does_not_fail_the_rest_of_the_run(tmp_path):
    import os
    import signal

    from exports import html_pdf
    from exports.statements import render_pool

    with render_pool.pdf_workers(1) as pool:
        pid = pool.submit(os.getpid).result()
        os.kill(pid, signal.SIGKILL)
        render = render_pool.html_to_pdf_in(pool)
        render(html_pdf.Document("<p>still rendered</p>", "p { color: #333; }", str(tmp_path)),
               tmp_path / "after.pdf")
    assert (tmp_path / "after.pdf").read_bytes().startswith(b"%PDF")
