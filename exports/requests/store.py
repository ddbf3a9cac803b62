"""All SQL on `report_requests`, `api_keys` (with their scopes) and `api_rate_limits` (app Postgres).

State machine of a request:
    pending -> processing -> completed -> expired
                          -> failed
    pending|processing -> canceled
    processing (stuck, run dead) -> pending (re-queued) | failed
Every transition is one conditional UPDATE ... RETURNING, so two workers (a retried run and a
duplicate, the API's cancel and a finishing run) can never both win.
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
from exports.settings import Settings, get_settings

STATUSES = ("pending", "processing", "completed", "failed", "canceled", "expired")
TERMINAL_STATUSES = ("completed", "failed", "canceled", "expired")
PRIORITY_BY_SOURCE = {"api": 10, "schedule": 0, "backfill": -10}
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
            replay = request.idempotency_key is not None and conn.execute(
                "SELECT 1 FROM report_requests WHERE account_id = %s AND idempotency_key = %s",
                (request.account_id, request.idempotency_key)).fetchone() is not None
            if pending >= max_pending and not replay:
                raise PendingLimitReached(pending, max_pending)
        row = conn.execute(
            """
            INSERT INTO report_requests (id, account_id, report_type, parameters, format,
                email_recipients, webhook_url, requested_by, idempotency_key, request_fingerprint,
                source, priority)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING *
            """,
            (new_request_id(), request.account_id, request.report_type, Jsonb(request.parameters),
             request.format, request.email_recipients, request.webhook_url, request.requested_by,
             request.idempotency_key, fingerprint, request.source, priority),
        ).fetchone()
        if row is not None:
            return row, True
        existing = conn.execute(
            "SELECT * FROM report_requests WHERE account_id = %s AND idempotency_key = %s",
            (request.account_id, request.idempotency_key),
        ).fetchone()
    if existing is None:  # deleted between the two statements: vanishingly rare, retry once
        return create(request, settings)
    if existing["request_fingerprint"] != fingerprint:
        raise Conflict(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with; this key was used for request {existing['id']}.",
            param="Idempotency-Key",
        )
    return existing, False


def find_replay(request: NewRequest, settings: Settings | None = None) -> dict | None:
    """The request an earlier call with this idempotency key created, or None (no key, or not
    used yet). Conflict when that call had another body. Lets the API answer a replay before
    spending rate-limit tokens or checking the pending cap."""
    if request.idempotency_key is None:
        return None
    with _conn(settings) as conn:
        existing = conn.execute(
            "SELECT * FROM report_requests WHERE account_id = %s AND idempotency_key = %s",
            (request.account_id, request.idempotency_key)).fetchone()
    if existing is not None and existing["request_fingerprint"] != request.fingerprint():
        raise Conflict(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with; this key was used for request {existing['id']}.",
            param="Idempotency-Key")
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


def list_pending(limit: int = 50, settings: Settings | None = None) -> list[dict]:
    """Oldest pending requests first (the sensor's work list)."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT id, account_id, priority, attempt_count FROM report_requests "
            "WHERE status = 'pending' ORDER BY created_at, id LIMIT %s", (limit,),
        ).fetchall()


def list_canceled_with_runs(since: datetime, settings: Settings | None = None) -> list[dict]:
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT id, dagster_run_id FROM report_requests WHERE status = 'canceled' "
            "AND canceled_at >= %s", (since,),
        ).fetchall()


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
                progress = 0, dagster_run_id = COALESCE(%s, dagster_run_id), updated_at = now()
            WHERE id = %s AND status IN ('pending', 'processing')
            RETURNING *
            """, (run_id, request_id),
        ).fetchone()


def set_run_id(request_id: str, run_id: str, settings: Settings | None = None) -> None:
    with _conn(settings) as conn:
        conn.execute("UPDATE report_requests SET dagster_run_id = %s, updated_at = now() "
                     "WHERE id = %s", (run_id, request_id))


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


def complete(request_id: str, *, file_key: str, file_size_bytes: int, row_count: int, sha256: str,
             manifest: dict, data_version: datetime | None, expires_at: datetime,
             settings: Settings | None = None) -> dict | None:
    """processing -> completed; None if the row was canceled meanwhile."""
    with _conn(settings) as conn:
        return conn.execute(
            """
            UPDATE report_requests
            SET status = 'completed', progress = 100, completed_at = now(), updated_at = now(),
                file_key = %s, file_size_bytes = %s, row_count = %s, sha256 = %s, manifest = %s,
                data_version = %s, expires_at = %s, error_message = NULL
            WHERE id = %s AND status = 'processing'
            RETURNING *
            """,
            (file_key, file_size_bytes, row_count, sha256, Jsonb(manifest), data_version,
             expires_at, request_id),
        ).fetchone()


def fail(request_id: str, message: str, settings: Settings | None = None) -> dict | None:
    """pending|processing -> failed with a message a user can act on."""
    with _conn(settings) as conn:
        return conn.execute(
            """
            UPDATE report_requests
            SET status = 'failed', error_message = %s, completed_at = now(), updated_at = now()
            WHERE id = %s AND status IN ('pending', 'processing')
            RETURNING *
            """, (message, request_id),
        ).fetchone()


def requeue(request_id: str, settings: Settings | None = None) -> dict | None:
    """processing -> pending (a dead run's request goes back to the queue for a new run)."""
    with _conn(settings) as conn:
        return conn.execute(
            """
            UPDATE report_requests SET status = 'pending', progress = 0, started_at = NULL,
                dagster_run_id = NULL, updated_at = now()
            WHERE id = %s AND status = 'processing' RETURNING *
            """, (request_id,),
        ).fetchone()


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
