"""All SQL on `report_requests`, `api_keys` (with their scopes) and `api_rate_limits` (app Postgres).

The request's state machine and retry policy live in exports/requests/lifecycle.py; each move it
allows is one conditional UPDATE ... RETURNING here, so two workers (a rescued request's new run
and its presumed-dead one, the API's cancel and a finishing run) can never both win. Moves made by
a worker pass `claimed_by` (its run id): only the run that claimed a request may finish it.

A batch run opens `db.pooled(settings)` once: every statement below (and every other app or
source database statement of that process) then borrows a connection from a psycopg_pool pool.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from psycopg.types.json import Jsonb

from exports import db
from exports.errors import Conflict, InvalidParameter, NotFound, RateLimited
from exports.requests.lifecycle import STATUSES
from exports.settings import Settings, get_settings

PRIORITY_BY_SOURCE = {"api": 10, "schedule": 0, "statement": 0, "backfill": -10}
MAX_LIST_LIMIT = 100


def new_request_id() -> str:
    return "rpt_" + secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")


def request_fingerprint(body: dict[str, Any]) -> str:
    """Stable hash of a request body (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _conn(settings: Settings | None):
    return db.connect("app", settings or get_settings(), autocommit=True, dict_rows=True)


@dataclass
class NewRequest:
    account_id: str
    report_type: str
    parameters: dict[str, Any]
    format: str
    email_recipients: list[str] | None = None
    webhook_url: str | None = None
    requested_by: str | None = None
    idempotency_key: str | None = None
    source: str = "api"
    priority: int | None = None

    def fingerprint(self) -> str:
        return request_fingerprint({
            "report_type": self.report_type, "parameters": self.parameters, "format": self.format,
            "email_to": self.email_recipients or [], "webhook_url": self.webhook_url,
        })


class PendingLimitReached(RateLimited):
    def __init__(self, pending: int, limit: int):
        super().__init__(f"This account already has {pending} reports waiting or running "
                         f"(limit {limit}); retry when some finish.", retry_after_seconds=30)


# Accounts take turns within a priority: each new request's claim_tag is its account's previous
# tag at that priority plus CLAIM_TURN, or now if that is later, and claims go by (priority,
# claim_tag). An account queueing thousands at once gets tags spread far ahead, so another
# account's request made meanwhile is claimed within about one turn — when a turn is at least
# the time one small report takes (batches serve ~10-20 a second), rather than after the
# backlog. Tags only order claims; nothing waits for its tag.
CLAIM_TURN = timedelta(seconds=1)
_NEXT_TURN = """turn AS (
    INSERT INTO report_claim_turns AS t (priority, account_id, last_tag)
    VALUES (%(priority)s, %(account)s, clock_timestamp())
    ON CONFLICT (priority, account_id) DO UPDATE
        SET last_tag = greatest(clock_timestamp(), t.last_tag + %(turn)s)
    RETURNING last_tag)"""


def lock_pending_count(conn, account_id: str) -> int:
    """Inside a transaction: take the account's pending-cap lock (held until commit) and return
    how many of its requests are pending or processing. Every insert that must respect the cap
    (API creates, the scheduler) counts under this lock, so parallel inserts cannot all see room."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.pending:' || %s))", (account_id,))
    return conn.execute("SELECT count(*) AS n FROM report_requests WHERE account_id = %s"
                        " AND status IN ('pending', 'processing')", (account_id,)).fetchone()["n"]


def create(request: NewRequest, settings: Settings | None = None, *,
           max_pending: int | None = None) -> tuple[dict, bool]:
    """Insert a pending request; return (row, created). With an idempotency key already used by
    this account: the same body returns the existing row (created=False), another body raises
    Conflict. With `max_pending`, raise PendingLimitReached when the account already has that many
    pending or processing requests (checked atomically with the insert; a replay is never refused)."""
    fingerprint = request.fingerprint()
    priority = request.priority if request.priority is not None else PRIORITY_BY_SOURCE[request.source]
    with _conn(settings) as conn, conn.transaction():
        if max_pending is not None:
            pending = lock_pending_count(conn, request.account_id)
            replay = _by_idempotency_key(conn, request) is not None
            if pending >= max_pending and not replay:
                raise PendingLimitReached(pending, max_pending)
        row = conn.execute(
            f"""
            WITH {_NEXT_TURN}
            INSERT INTO report_requests (id, account_id, report_type, parameters, format,
                email_recipients, webhook_url, requested_by, idempotency_key, request_fingerprint,
                source, priority, claim_tag)
            VALUES (%(id)s, %(account)s, %(type)s, %(params)s, %(format)s, %(emails)s, %(webhook)s,
                    %(by)s, %(key)s, %(fingerprint)s, %(source)s, %(priority)s,
                    (SELECT last_tag FROM turn))
            ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING *
            """,
            {"id": new_request_id(), "account": request.account_id, "type": request.report_type,
             "params": Jsonb(request.parameters), "format": request.format,
             "emails": request.email_recipients, "webhook": request.webhook_url,
             "by": request.requested_by, "key": request.idempotency_key,
             "fingerprint": fingerprint, "source": request.source, "priority": priority,
             "turn": CLAIM_TURN},
        ).fetchone()
        if row is not None:
            return row, True
        existing = _by_idempotency_key(conn, request)
    if existing is None:  # deleted between the two statements: vanishingly rare, retry once
        return create(request, settings)
    _check_same_body(existing, request)
    return existing, False


def _by_idempotency_key(conn, request: NewRequest) -> dict | None:
    return conn.execute(
        "SELECT * FROM report_requests WHERE account_id = %s AND idempotency_key = %s",
        (request.account_id, request.idempotency_key)).fetchone()


def _check_same_body(existing: dict, request: NewRequest) -> None:
    if existing["request_fingerprint"] != request.fingerprint():
        raise Conflict(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with; this key was used for request {existing['id']}.",
            param="Idempotency-Key",
        )


def open_statement(request_id: str, request: NewRequest, run_id: str | None,
                   settings: Settings | None = None) -> tuple[dict, bool]:
    """The row of one per-account statement file (exports.statements), whose id is deterministic:
    the first run of a partition inserts it, every later run finds it. Returns (row, created).

    It is created 'processing' for the creating run, never 'pending': batch runs never race the
    statements run for it, and if that run dies the watchdog rescues the stale row like any
    report's (lifecycle.rescue). An existing row is returned untouched."""
    priority = request.priority if request.priority is not None else PRIORITY_BY_SOURCE[request.source]
    with _conn(settings) as conn:
        row = conn.execute(
            """
            INSERT INTO report_requests (id, account_id, report_type, parameters, format,
                email_recipients, webhook_url, requested_by, request_fingerprint, source, priority,
                status, dagster_run_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'processing', %s)
            ON CONFLICT (id) DO NOTHING
            RETURNING *
            """,
            (request_id, request.account_id, request.report_type, Jsonb(request.parameters),
             request.format, request.email_recipients, request.webhook_url, request.requested_by,
             request.fingerprint(), request.source, priority, run_id),
        ).fetchone()
        if row is not None:
            return row, True
        existing = conn.execute("SELECT * FROM report_requests WHERE id = %s", (request_id,)).fetchone()
    if existing is None:  # deleted between the two statements: vanishingly rare, try again
        return open_statement(request_id, request, run_id, settings)
    return existing, False


def insert_scheduled(conn, template: dict, due: datetime, parameters: dict[str, Any]) -> str | None:
    """Inside the scheduler's transaction (which holds the account's pending-cap lock): the
    pending request of `template` for due time `due`; None when one exists already (a second
    tick, a second scheduler: the unique (template_id, scheduled_for) makes this a no-op)."""
    row = conn.execute(
        f"WITH {_NEXT_TURN}"
        " INSERT INTO report_requests (id, account_id, report_type, parameters, format,"
        " status, email_recipients, webhook_url, priority, source, template_id,"
        " scheduled_for, requested_by, claim_tag)"
        " VALUES (%(id)s, %(account)s, %(type)s, %(params)s, %(format)s, 'pending', %(emails)s,"
        " %(webhook)s, %(priority)s, 'schedule', %(template)s, %(due)s, %(by)s,"
        " (SELECT last_tag FROM turn))"
        " ON CONFLICT (template_id, scheduled_for) DO NOTHING RETURNING id",
        {"id": new_request_id(), "account": template["account_id"],
         "type": template["report_type"], "params": Jsonb(parameters), "format": template["format"],
         "emails": template["email_recipients"], "webhook": template["webhook_url"],
         "priority": PRIORITY_BY_SOURCE["schedule"], "template": template["id"], "due": due,
         "by": template["created_by"], "turn": CLAIM_TURN},
    ).fetchone()
    return row["id"] if row else None


def statuses(request_ids: list[str], settings: Settings | None = None) -> dict[str, dict]:
    """id -> status, error, timing and file fields of each of `request_ids` that exists."""
    with _conn(settings) as conn:
        rows = conn.execute(
            "SELECT id, account_id, report_type, format, status, error_message, file_key, sha256, "
            "row_count, file_size_bytes, created_at, completed_at FROM report_requests "
            "WHERE id = ANY(%s)", (list(request_ids),)).fetchall()
    return {row["id"]: row for row in rows}


def check_readable(settings: Settings | None = None) -> None:
    """Raise unless the app database answers and its migrations created report_requests
    (the API's readiness probe)."""
    with _conn(settings) as conn:
        conn.execute("SELECT 1 FROM report_requests LIMIT 1")


def find_replay(request: NewRequest, settings: Settings | None = None) -> dict | None:
    """The request an earlier call with this idempotency key created, or None (no key, or not
    used yet). Conflict when that call had another body. Lets the API answer a replay before
    spending rate-limit tokens or checking the pending cap."""
    if request.idempotency_key is None:
        return None
    with _conn(settings) as conn:
        existing = _by_idempotency_key(conn, request)
    if existing is not None:
        _check_same_body(existing, request)
    return existing


def get(request_id: str, account_id: str | None = None, settings: Settings | None = None) -> dict:
    """The row; with account_id, another account's request is reported exactly like a missing one."""
    sql = "SELECT * FROM report_requests WHERE id = %s"
    args: list[Any] = [request_id]
    if account_id is not None:
        sql += " AND account_id = %s"
        args.append(account_id)
    with _conn(settings) as conn:
        row = conn.execute(sql, args).fetchone()
    if row is None:
        raise NotFound(f"No such report: '{request_id}'", param="id")
    return row


def list_requests(account_id: str, *, limit: int = 10, starting_after: str | None = None,
                  status: str | None = None, report_type: str | None = None,
                  template_id: str | None = None, created_gte: datetime | None = None,
                  created_lt: datetime | None = None,
                  settings: Settings | None = None) -> tuple[list[dict], bool]:
    """Newest first; returns (rows, has_more). `starting_after` is the id of the last row seen;
    created_gte/created_lt bound the creation time (the web app's period filter)."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidParameter(f"limit must be between 1 and {MAX_LIST_LIMIT}", param="limit")
    if status is not None and status not in STATUSES:
        raise InvalidParameter(f"status must be one of {', '.join(STATUSES)}", param="status")
    where = ["account_id = %s"]
    args: list[Any] = [account_id]
    if status:
        where.append("status = %s")
        args.append(status)
    if report_type:
        where.append("report_type = %s")
        args.append(report_type)
    for column_filter, value in (("template_id = %s", template_id), ("created_at >= %s", created_gte),
                                 ("created_at < %s", created_lt)):
        if value is not None:
            where.append(column_filter)
            args.append(value)
    with _conn(settings) as conn:
        if starting_after:
            cursor = conn.execute(
                "SELECT created_at, id FROM report_requests WHERE id = %s AND account_id = %s",
                (starting_after, account_id),
            ).fetchone()
            if cursor is None:
                raise InvalidParameter(f"No such report: '{starting_after}'", param="starting_after")
            where.append("(created_at, id) < (%s, %s)")
            args += [cursor["created_at"], cursor["id"]]
        rows = conn.execute(
            f"SELECT * FROM report_requests WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            [*args, limit + 1],
        ).fetchall()
    return rows[:limit], len(rows) > limit


# A pending row is claimable when its backoff has passed and the data it waits for is there.
_CLAIMABLE = """status = 'pending' AND (not_before IS NULL OR not_before <= now())
    AND (waiting_for_data_until IS NULL OR waiting_for_data_until <= %(available)s)"""


def claimable_counts(data_available_end: datetime | None, *, on_demand_priority: int,
                     settings: Settings | None = None) -> dict[str, int]:
    """Claimable pending requests now: {'on_demand': priority >= on_demand_priority, 'bulk':
    the rest} (the request sensor's view of the queue)."""
    with _conn(settings) as conn:
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE priority >= %(p)s) AS on_demand, "
            f"count(*) FILTER (WHERE priority < %(p)s) AS bulk FROM report_requests "
            f"WHERE {_CLAIMABLE}", {"p": on_demand_priority, "available": data_available_end},
        ).fetchone()
    return {"on_demand": row["on_demand"], "bulk": row["bulk"]}


def claim_next(run_id: str, *, data_available_end: datetime | None, min_priority: int | None = None,
               settings: Settings | None = None) -> dict | None:
    """pending -> processing for the most urgent claimable request of at least `min_priority`;
    None when there is none. Concurrent claimers never get the same row (SKIP LOCKED).

    Most urgent: highest priority first; within a priority, by claim_tag: accounts take turns
    (CLAIM_TURN), so one account with thousands of scheduled requests cannot starve another's
    few, and each account's own requests go oldest first."""
    with _conn(settings) as conn:
        return conn.execute(
            f"""
            UPDATE report_requests
            SET status = 'processing', attempt_count = attempt_count + 1, started_at = now(),
                progress = 0, dagster_run_id = %(run)s, status_reason = NULL, not_before = NULL,
                waiting_for_data_until = NULL,
                updated_at = now()
            WHERE id = (SELECT id FROM report_requests
                        WHERE {_CLAIMABLE} AND priority >= %(min)s
                        ORDER BY priority DESC, claim_tag, id LIMIT 1 FOR UPDATE SKIP LOCKED)
              AND status = 'pending'
            RETURNING *
            """, {"run": run_id, "available": data_available_end,
                  "min": -2**31 if min_priority is None else min_priority},
        ).fetchone()


def cancel(request_id: str, account_id: str, settings: Settings | None = None) -> dict:
    """Cancel a pending or processing request (the running job stops at its next progress check).
    Cancelling a finished request is an error naming its status."""
    with _conn(settings) as conn:
        row = conn.execute(
            """
            UPDATE report_requests SET status = 'canceled', canceled_at = now(), updated_at = now()
            WHERE id = %s AND account_id = %s AND status IN ('pending', 'processing')
            RETURNING *
            """, (request_id, account_id),
        ).fetchone()
    if row is not None:
        return row
    current = get(request_id, account_id, settings)  # NotFound for missing/other account
    if current["status"] == "canceled":
        return current
    raise InvalidParameter(f"Report {request_id} is {current['status']} and can no longer be canceled",
                           param="id", code="report_not_cancelable")


def claim_for_processing(request_id: str, run_id: str | None = None,
                         settings: Settings | None = None) -> dict | None:
    """pending -> processing (also re-claims a processing row for a retry of the same request);
    None when the row is finished or canceled."""
    with _conn(settings) as conn:
        return conn.execute(
            """
            UPDATE report_requests
            SET status = 'processing', attempt_count = attempt_count + 1, started_at = now(),
                progress = 0, dagster_run_id = %s, status_reason = NULL, not_before = NULL,
                waiting_for_data_until = NULL, updated_at = now()
            WHERE id = %s AND status IN ('pending', 'processing')
            RETURNING *
            """, (run_id, request_id),
        ).fetchone()


def update_progress(request_id: str, progress: int, settings: Settings | None = None) -> str | None:
    """Record progress; returns the row's status (the caller stops when it is 'canceled')."""
    with _conn(settings) as conn:
        row = conn.execute(
            """
            UPDATE report_requests SET progress = GREATEST(progress, LEAST(%s, 99)), updated_at = now()
            WHERE id = %s AND status = 'processing' RETURNING status
            """, (int(progress), request_id),
        ).fetchone()
        if row is not None:
            return row["status"]
        row = conn.execute("SELECT status FROM report_requests WHERE id = %s", (request_id,)).fetchone()
    return row["status"] if row else None


def heartbeat(request_id: str, settings: Settings | None = None) -> str | None:
    """Touch updated_at of a processing row (the worker is alive); returns the current status."""
    with _conn(settings) as conn:
        conn.execute("UPDATE report_requests SET updated_at = now() WHERE id = %s AND status = 'processing'",
                     (request_id,))
        row = conn.execute("SELECT status FROM report_requests WHERE id = %s", (request_id,)).fetchone()
    return row["status"] if row else None


def status_of(request_id: str, settings: Settings | None = None) -> str | None:
    with _conn(settings) as conn:
        row = conn.execute("SELECT status FROM report_requests WHERE id = %s", (request_id,)).fetchone()
    return row["status"] if row else None


# `claimed_by`: the run that claimed the row (None: whoever holds it, e.g. an operator).
_OWNED = "(%(by)s::text IS NULL OR dagster_run_id IS NOT DISTINCT FROM %(by)s::text)"


def complete(request_id: str, *, file_key: str, file_size_bytes: int, row_count: int, sha256: str,
             manifest: dict, data_version: datetime | None, expires_at: datetime,
             settings: Settings | None = None, claimed_by: str | None = None) -> dict | None:
    """processing -> completed; None if the row was canceled (or taken over) meanwhile. The same
    statement marks its deliveries due (exports.delivery records and sends them)."""
    with _conn(settings) as conn:
        return conn.execute(
            f"""
            UPDATE report_requests
            SET status = 'completed', progress = 100, completed_at = now(), updated_at = now(),
                file_key = %(key)s, file_size_bytes = %(size)s, row_count = %(rows)s,
                sha256 = %(sha)s, manifest = %(manifest)s, data_version = %(version)s,
                expires_at = %(expires)s, error_message = NULL, status_reason = NULL,
                deliveries_due = true
            WHERE id = %(id)s AND status = 'processing' AND {_OWNED}
            RETURNING *
            """,
            {"key": file_key, "size": file_size_bytes, "rows": row_count, "sha": sha256,
             "manifest": Jsonb(manifest), "version": data_version, "expires": expires_at,
             "id": request_id, "by": claimed_by},
        ).fetchone()


def fail(request_id: str, message: str, settings: Settings | None = None, *,
         claimed_by: str | None = None) -> dict | None:
    """pending|processing -> failed with a message a user can act on; its failure notices due."""
    with _conn(settings) as conn:
        return conn.execute(
            f"""
            UPDATE report_requests
            SET status = 'failed', error_message = %(message)s, status_reason = NULL,
                completed_at = now(), updated_at = now(), deliveries_due = true
            WHERE id = %(id)s AND (status = 'pending' OR (status = 'processing' AND {_OWNED}))
            RETURNING *
            """, {"message": message, "id": request_id, "by": claimed_by},
        ).fetchone()


def retry_later(request_id: str, *, not_before: datetime, reason: str,
                settings: Settings | None = None, claimed_by: str | None = None) -> dict | None:
    """processing -> pending, not claimed before `not_before` (a retryable failure, or a dead
    worker's request); the attempt it used stays counted."""
    with _conn(settings) as conn:
        return conn.execute(
            f"""
            UPDATE report_requests SET status = 'pending', progress = 0, started_at = NULL,
                not_before = %(not_before)s, status_reason = %(reason)s, updated_at = now()
            WHERE id = %(id)s AND status = 'processing' AND {_OWNED} RETURNING *
            """, {"not_before": not_before, "reason": reason, "id": request_id, "by": claimed_by},
        ).fetchone()


def wait_for_data(request_id: str, *, until: datetime, reason: str,
                  settings: Settings | None = None, claimed_by: str | None = None) -> dict | None:
    """processing -> pending until the data available reaches `until`; the claim is given back
    (waiting is not an attempt)."""
    with _conn(settings) as conn:
        return conn.execute(
            f"""
            UPDATE report_requests SET status = 'pending', progress = 0, started_at = NULL,
                attempt_count = greatest(attempt_count - 1, 0), waiting_for_data_until = %(until)s,
                status_reason = %(reason)s, updated_at = now()
            WHERE id = %(id)s AND status = 'processing' AND {_OWNED} RETURNING *
            """, {"until": until, "reason": reason, "id": request_id, "by": claimed_by},
        ).fetchone()


def list_waiting_for_data(until_before: datetime, settings: Settings | None = None) -> list[dict]:
    """Pending requests waiting for data that should have arrived before `until_before` (the
    later of the instant they wait for and their creation)."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT * FROM report_requests WHERE status = 'pending' "
            "AND greatest(waiting_for_data_until, created_at) < %s "
            "ORDER BY waiting_for_data_until", (until_before,),
        ).fetchall()


def reset_failed(request_id: str, settings: Settings | None = None) -> dict | None:
    """failed -> pending with fresh attempts and the error cleared (operator retry)."""
    with _conn(settings) as conn:
        return conn.execute(
            """
            UPDATE report_requests
            SET status = 'pending', attempt_count = 0, error_message = NULL, status_reason = NULL,
                progress = 0, started_at = NULL, completed_at = NULL, not_before = NULL,
                waiting_for_data_until = NULL, dagster_run_id = NULL, deliveries_due = false,
                updated_at = now()
            WHERE id = %s AND status = 'failed'
            RETURNING *
            """, (request_id,),
        ).fetchone()


# ---------------------------------------------------------------------------------- deliveries

def for_delivery(request_id: str, settings: Settings | None = None) -> dict | None:
    """The row with what delivery also needs from its template (name, recipients, webhook)."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT r.*, t.name AS template_name, t.email_recipients AS template_recipients,"
            " t.webhook_url AS template_webhook_url"
            " FROM report_requests r LEFT JOIN report_templates t ON t.id = r.template_id"
            " WHERE r.id = %s", (request_id,)).fetchone()


def list_deliveries_due(finished_before: datetime, limit: int = 500,
                        settings: Settings | None = None) -> list[str]:
    """Ids of reports finished before `finished_before` whose deliveries were never recorded
    (their worker died between finishing them and handing them to delivery)."""
    with _conn(settings) as conn:
        return [row["id"] for row in conn.execute(
            "SELECT id FROM report_requests WHERE deliveries_due AND completed_at < %s"
            " ORDER BY completed_at LIMIT %s", (finished_before, limit))]


def deliveries_recorded(conn, request_id: str) -> None:
    """Inside the transaction that recorded the report's deliveries rows: nothing more is owed."""
    conn.execute("UPDATE report_requests SET deliveries_due = false WHERE id = %s AND deliveries_due",
                 (request_id,))


def list_processing_for_run(run_id: str, settings: Settings | None = None) -> list[dict]:
    """Requests a run claimed and has not finished (what a dead run leaves behind)."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT * FROM report_requests WHERE status = 'processing' AND dagster_run_id = %s "
            "ORDER BY started_at", (run_id,),
        ).fetchall()


def run_is_heartbeating(run_id: str, within: timedelta, settings: Settings | None = None) -> bool:
    """Whether any request `run_id` is processing was written (heartbeat, progress) within
    `within`: its process lives, whatever other rows of it went silent."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM report_requests WHERE status = 'processing' "
            "AND dagster_run_id = %s AND updated_at > now() - %s) AS live", (run_id, within),
        ).fetchone()["live"]


def list_stuck(older_than: timedelta, now: datetime | None = None,
               settings: Settings | None = None) -> list[dict]:
    """Processing rows whose worker has not written (progress or heartbeat) for `older_than`."""
    now = now or datetime.now(timezone.utc)
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT * FROM report_requests WHERE status = 'processing' AND updated_at < %s "
            "ORDER BY updated_at", (now - older_than,),
        ).fetchall()


def list_expirable(now: datetime, limit: int = 500, settings: Settings | None = None) -> list[dict]:
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT id, file_key FROM report_requests WHERE status = 'completed' "
            "AND expires_at IS NOT NULL AND expires_at <= %s ORDER BY expires_at LIMIT %s",
            (now, limit),
        ).fetchall()


def expire(request_id: str, settings: Settings | None = None) -> dict | None:
    """completed -> expired; the file is gone, the metadata (size, rows, sha256, manifest) stays."""
    with _conn(settings) as conn:
        return conn.execute(
            "UPDATE report_requests SET status = 'expired', updated_at = now() "
            "WHERE id = %s AND status = 'completed' RETURNING *", (request_id,),
        ).fetchone()


# ------------------------------------------------------------------------------------ metrics

def report_stats(conn, duration_buckets: tuple[int, ...]) -> dict[str, Any]:
    """What the metrics scrape reads (exports/metrics.py), on the caller's (read-only) connection:
    durations per type and format with cumulative bucket counts, rows/bytes exported, counts by
    status, failures by reason ('internal' = our fault, else the request's), oldest pending age."""
    bucket_columns = ", ".join(
        f"count(*) FILTER (WHERE d <= {int(le)}) AS le_{int(le)}" for le in duration_buckets)
    durations = conn.execute(
        f"""
        SELECT report_type, format, count(*) AS n, coalesce(sum(d), 0) AS total, {bucket_columns}
        FROM (SELECT report_type, format,
                     extract(epoch FROM completed_at - started_at)::float8 AS d
              FROM report_requests
              WHERE status IN ('completed', 'expired')
                AND started_at IS NOT NULL AND completed_at IS NOT NULL) AS done
        GROUP BY report_type, format ORDER BY report_type, format
        """).fetchall()
    exported = conn.execute(
        """
        SELECT report_type, format, coalesce(sum(row_count), 0) AS rows,
               coalesce(sum(file_size_bytes), 0) AS bytes
        FROM report_requests WHERE status IN ('completed', 'expired')
        GROUP BY report_type, format ORDER BY report_type, format
        """).fetchall()
    by_status = {row["status"]: row["n"] for row in conn.execute(
        "SELECT status, count(*) AS n FROM report_requests GROUP BY status")}
    failure_reasons = {row["reason"]: row["n"] for row in conn.execute(
        """
        SELECT CASE WHEN error_message LIKE 'internal error%' THEN 'internal'
                    ELSE 'request' END AS reason, count(*) AS n
        FROM report_requests WHERE status = 'failed' GROUP BY 1
        """)}
    oldest = conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age "
        "FROM report_requests WHERE status = 'pending'").fetchone()["age"]
    return {"durations": durations, "exported": exported, "by_status": by_status,
            "failure_reasons": failure_reasons, "oldest_pending_age_seconds": oldest}


def queue_summary(settings: Settings | None = None, window_hours: int = 24) -> dict:
    """Pending (and of those: waiting for data, backing off after a failure), processing,
    failed/completed in the window, the oldest pending request's age."""
    with _conn(settings) as conn:
        row = conn.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                   count(*) FILTER (WHERE status = 'pending'
                                    AND waiting_for_data_until IS NOT NULL) AS waiting_for_data,
                   count(*) FILTER (WHERE status = 'pending' AND not_before > now()) AS backing_off,
                   count(*) FILTER (WHERE status = 'processing') AS processing,
                   count(*) FILTER (WHERE status = 'failed'
                                    AND completed_at >= now() - make_interval(hours => %(h)s)) AS failed,
                   count(*) FILTER (WHERE status = 'completed'
                                    AND completed_at >= now() - make_interval(hours => %(h)s)) AS completed,
                   extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8
                       AS oldest_pending_age_seconds
            FROM report_requests
            """, {"h": window_hours},
        ).fetchone()
    return {**row, "window_hours": window_hours}


# ---------------------------------------------------------------------------------------- keys

API_KEY_PREFIX = "rk_"


def _hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(account_id: str, name: str = "", settings: Settings | None = None, *,
                   scopes: list[str] | None = None, created_by: str | None = None) -> tuple[str, dict]:
    """Return (secret, row). The secret is shown once; only its sha256 is stored. `scopes` None
    makes a standard key; a list makes a restricted key (api/auth.py enforces the scopes)."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    with _conn(settings) as conn:
        row = conn.execute(
            "INSERT INTO api_keys (id, account_id, name, key_hash, prefix, scopes, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, account_id, name, prefix, scopes, created_at, created_by",
            (key_id, account_id, name, _hash_key(secret), secret[:10], scopes, created_by),
        ).fetchone()
    return secret, row


def list_api_keys(account_id: str, settings: Settings | None = None) -> list[dict]:
    """The account's keys (never their secrets), newest first, revoked ones included."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT id, account_id, name, prefix, scopes, created_at, created_by, revoked_at,"
            " last_used_at FROM api_keys WHERE account_id = %s ORDER BY created_at DESC, id DESC",
            (account_id,)).fetchall()


def revoke_api_key(key_id: str, settings: Settings | None = None, *,
                   account_id: str | None = None) -> bool:
    """Revoke a live key; with account_id, only that account's key (another's is 'not found')."""
    sql = "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"
    args: list[Any] = [key_id]
    if account_id is not None:
        sql += " AND account_id = %s"
        args.append(account_id)
    with _conn(settings) as conn:
        row = conn.execute(sql + " RETURNING id", args).fetchone()
    return row is not None


def key_for_secret(secret: str, settings: Settings | None = None) -> dict | None:
    """The live key row (id, account_id, scopes) of a secret, touching last_used_at at most once
    a minute; None for an unknown or revoked key."""
    with _conn(settings) as conn:
        row = conn.execute(
            "SELECT id, account_id, scopes, last_used_at FROM api_keys"
            " WHERE key_hash = %s AND revoked_at IS NULL", (_hash_key(secret),),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s AND "
                     "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", (row["id"],))
    return row


def key_is_live(key_id: str, settings: Settings | None = None) -> bool:
    with _conn(settings) as conn:
        return conn.execute("SELECT 1 FROM api_keys WHERE id = %s AND revoked_at IS NULL",
                            (key_id,)).fetchone() is not None


def account_for_key(secret: str, settings: Settings | None = None) -> str | None:
    """The account of a live key, else None."""
    row = key_for_secret(secret, settings)
    return row["account_id"] if row else None


def take_rate_token(account_id: str, *, rate_per_second: float, burst: int,
                    settings: Settings | None = None) -> float:
    """Token bucket in the app DB (shared by every API process). Returns 0 when a token was taken,
    else the seconds until one is available."""
    with _conn(settings) as conn:
        row = conn.execute(
            """
            INSERT INTO api_rate_limits AS b (account_id, tokens, refilled_at)
            VALUES (%(acct)s, %(burst)s - 1, clock_timestamp())
            ON CONFLICT (account_id) DO UPDATE SET
                tokens = LEAST(%(burst)s::float8, b.tokens
                    + extract(epoch FROM clock_timestamp() - b.refilled_at) * %(rate)s) - 1,
                refilled_at = clock_timestamp()
            WHERE LEAST(%(burst)s::float8, b.tokens
                    + extract(epoch FROM clock_timestamp() - b.refilled_at) * %(rate)s) >= 1
            RETURNING tokens
            """, {"acct": account_id, "burst": burst, "rate": rate_per_second},
        ).fetchone()
        if row is not None:
            return 0.0
        current = conn.execute(
            "SELECT LEAST(%s::float8, tokens + extract(epoch FROM clock_timestamp() - refilled_at) * %s) "
            "AS tokens FROM api_rate_limits WHERE account_id = %s", (burst, rate_per_second, account_id),
        ).fetchone()
    missing = 1 - (current["tokens"] if current else 0)
    return max(missing / rate_per_second, 0.001)
