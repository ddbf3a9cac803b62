"""In-app notifications: one row per (report, event) shown to the account, newest first."""

from __future__ import annotations

import secrets
from typing import Any

from exports import db
from exports.errors import InvalidParameter
from exports.settings import Settings, get_settings

MAX_LIST_LIMIT = 100


def record(conn, *, account_id: str, request_id: str, event: str, title: str, body: str) -> None:
    """Insert the notification unless this (report, event) already has one."""
    conn.execute(
        "INSERT INTO notifications (id, account_id, request_id, event, title, body)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (request_id, event) DO NOTHING",
        ("ntf_" + secrets.token_hex(12), account_id, request_id, event, title, body))


def list_notifications(account_id: str, *, limit: int = 20, unread_only: bool = False,
                       settings: Settings | None = None) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidParameter(f"limit must be between 1 and {MAX_LIST_LIMIT}", param="limit")
    sql = "SELECT * FROM notifications WHERE account_id = %s"
    if unread_only:
        sql += " AND read_at IS NULL"
    with db.connect("app", settings or get_settings(), autocommit=True, dict_rows=True) as conn:
        return conn.execute(sql + " ORDER BY created_at DESC, id DESC LIMIT %s",
                            (account_id, limit)).fetchall()


def count_unread(account_id: str, *, settings: Settings | None = None) -> int:
    with db.connect("app", settings or get_settings(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM notifications WHERE account_id = %s AND read_at IS NULL",
                            (account_id,)).fetchone()[0]


def mark_read(account_id: str, notification_id: str, *, settings: Settings | None = None) -> dict | None:
    with db.connect("app", settings or get_settings(), autocommit=True, dict_rows=True) as conn:
        return conn.execute(
            "UPDATE notifications SET read_at = COALESCE(read_at, now())"
            " WHERE id = %s AND account_id = %s RETURNING *", (notification_id, account_id)).fetchone()


def to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "notification", "event": row["event"],
            "report": row["request_id"], "title": row["title"], "body": row["body"],
            "created": int(row["created_at"].timestamp()),
            "read_at": int(row["read_at"].timestamp()) if row["read_at"] else None}
