"""People who use the web app: users of one account with a role, their sessions, the sign-in
rate limit, and who changed whom. All SQL on `web_users`, `web_sessions`, `web_sign_in_attempts`
and `web_user_changes`.

Roles (what each may do is `ROLE_PERMISSIONS`):
  admin    manages users, API keys, webhooks and schedules; requests and downloads
  analyst  requests, cancels and downloads reports
  viewer   sees and downloads reports
Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed when they change); a session
is a random token whose sha256 is stored, with its own CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email

from exports import db
from exports.errors import InvalidParameter, RateLimited, ReportingError
from exports.settings import Settings, get_settings

ROLES = ("admin", "analyst", "viewer")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"reports.view", "reports.request", "schedules.manage", "webhooks.manage",
                        "keys.manage", "users.manage"}),
    "analyst": frozenset({"reports.view", "reports.request"}),
    "viewer": frozenset({"reports.view"}),
}
MIN_PASSWORD_LENGTH = 10
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
# Failed sign-ins allowed per (email, IP) in the window before further attempts are refused.
SIGN_IN_MAX_FAILURES = 5
SIGN_IN_WINDOW = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserDisabled(ReportingError):
    """The right password of a disabled user: sign-in is refused, and said so."""

    http_status = 403
    error_type = "permission_error"
    code = "user_disabled"


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    email: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def _conn(settings: Settings | None):
    return db.connect("app", settings or get_settings(), autocommit=True, dict_rows=True)


def _user(row: dict) -> User:
    return User(id=row["id"], account_id=row["account_id"], email=row["email"], role=row["role"])


def normalize_email(email: str, param: str = "email") -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except (EmailNotValidError, TypeError):
        raise InvalidParameter(f"{email!r} is not a valid email address", param=param) from None


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidParameter(f"role must be one of: {', '.join(ROLES)}", param="role")
    return role


def validate_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidParameter(f"The password must have at least {MIN_PASSWORD_LENGTH} characters",
                               param="password")
    return password


def create_user(account_id: str, email: str, role: str, password: str, *,
                created_by: str | None = None, settings: Settings | None = None) -> User:
    if not isinstance(account_id, str) or not account_id.strip():
        raise InvalidParameter("An account id is required, e.g. acct_…", param="account")
    email = normalize_email(email)
    validate_role(role)
    validate_password(password)
    with _conn(settings) as conn:
        row = conn.execute(
            "INSERT INTO web_users (id, account_id, email, password_hash, role, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (email) DO NOTHING RETURNING *",
            ("usr_" + secrets.token_hex(8), account_id.strip(), email, _hasher.hash(password), role,
             created_by)).fetchone()
        if row is not None:
            _record_change(conn, row, "created", None, role, created_by or "system")
    if row is None:
        raise InvalidParameter(f"A user with email {email} already exists", param="email",
                               code="email_in_use")
    return _user(row)


def set_password(email: str, password: str, *, settings: Settings | None = None) -> bool:
    validate_password(password)
    with _conn(settings) as conn:
        row = conn.execute("UPDATE web_users SET password_hash = %s WHERE email = %s RETURNING id",
                           (_hasher.hash(password), normalize_email(email))).fetchone()
        if row:  # a new password ends every session signed in with the old one
            conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (row["id"],))
    return row is not None


def list_users(account_id: str, *, settings: Settings | None = None) -> list[dict]:
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT id, account_id, email, role, created_at, created_by, last_sign_in_at, disabled_at,"
            " disabled_by FROM web_users WHERE account_id = %s ORDER BY created_at, email", (account_id,)).fetchall()


def find_user_by_email(email: str, *, settings: Settings | None = None) -> dict | None:
    """The user row (enabled or disabled) with this email, for the CLI."""
    with _conn(settings) as conn:
        return conn.execute("SELECT * FROM web_users WHERE email = %s",
                            (normalize_email(email),)).fetchone()


# ------------------------------------------------------------------------- changes by an admin

def _record_change(conn, user: dict, change: str, old: str | None, new: str | None, by: str) -> None:
    conn.execute("INSERT INTO web_user_changes (account_id, user_id, change, old_value, new_value,"
                 " changed_by) VALUES (%s, %s, %s, %s, %s, %s)",
                 (user["account_id"], user["id"], change, old, new, by))


def _change_user(account_id: str, user_id: str, changed_by: str, settings: Settings | None,
                 new_role: str | None = None, disabled: bool | None = None) -> dict | None:
    """Apply one change to one of the account's users in one transaction; None when the account
    has no such user. The account's user rows are locked first, so two admins demoting each
    other at the same moment cannot both succeed and leave the account without an admin."""
    with _conn(settings) as conn, conn.transaction():
        rows = conn.execute("SELECT * FROM web_users WHERE account_id = %s ORDER BY id FOR UPDATE",
                            (account_id,)).fetchall()
        user = next((r for r in rows if r["id"] == user_id), None)
        if user is None:
            return None
        role = new_role or user["role"]
        is_disabled = user["disabled_at"] is not None if disabled is None else disabled
        was_admin = user["role"] == "admin" and user["disabled_at"] is None
        if was_admin and not (role == "admin" and not is_disabled):
            others = [r for r in rows if r["id"] != user_id and r["role"] == "admin"
                      and r["disabled_at"] is None]
            if not others:
                who = "You are" if user["email"] == changed_by else f"{user['email']} is"
                raise InvalidParameter(
                    f"{who} the account's only active admin: make another user an admin first.",
                    param="role" if new_role else "user", code="last_admin")
        if new_role and new_role != user["role"]:
            old_role = user["role"]
            user = conn.execute("UPDATE web_users SET role = %s WHERE id = %s RETURNING *",
                                (new_role, user_id)).fetchone()
            _record_change(conn, user, "role", old_role, new_role, changed_by)
        if disabled is not None and disabled != (user["disabled_at"] is not None):
            user = conn.execute(
                "UPDATE web_users SET disabled_at = CASE WHEN %s THEN now() END,"
                " disabled_by = CASE WHEN %s THEN %s END WHERE id = %s RETURNING *",
                (disabled, disabled, changed_by, user_id)).fetchone()
            if disabled:  # their open sessions end now, not at their next idle timeout
                conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))
            _record_change(conn, user, "disabled" if disabled else "enabled", None, None, changed_by)
    return user


def change_role(account_id: str, user_id: str, role: str, *, changed_by: str,
                settings: Settings | None = None) -> dict | None:
    """Give one of the account's users another role (effective on their next request)."""
    return _change_user(account_id, user_id, changed_by, settings, new_role=validate_role(role))


def set_disabled(account_id: str, user_id: str, disabled: bool, *, changed_by: str,
                 settings: Settings | None = None) -> dict | None:
    """Disable (sessions end at once, sign-in refused) or re-enable one of the account's users."""
    return _change_user(account_id, user_id, changed_by, settings, disabled=disabled)


def list_changes(account_id: str, *, limit: int = 50, settings: Settings | None = None) -> list[dict]:
    """The account's user changes, newest first, with the changed user's email."""
    with _conn(settings) as conn:
        return conn.execute(
            "SELECT c.*, u.email FROM web_user_changes c JOIN web_users u ON u.id = c.user_id"
            " WHERE c.account_id = %s ORDER BY c.at DESC, c.id DESC LIMIT %s",
            (account_id, limit)).fetchall()


DEMO_ADMIN_EMAIL = "demo-admin@payreports.example"


def ensure_demo_admin(account_id: str, *, settings: Settings | None = None) -> tuple[str, str]:
    """The demo's admin of `account_id` with a fresh random password each demo run (the old one
    cannot be shown again: only its hash is kept). Returns (email, password)."""
    password = secrets.token_urlsafe(12)
    with _conn(settings) as conn:
        row = conn.execute("SELECT id FROM web_users WHERE email = %s", (DEMO_ADMIN_EMAIL,)).fetchone()
        if row is not None:
            conn.execute("UPDATE web_users SET account_id = %s, role = 'admin', password_hash = %s,"
                         " disabled_at = NULL WHERE id = %s", (account_id, _hasher.hash(password), row["id"]))
            conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (row["id"],))
            return DEMO_ADMIN_EMAIL, password
    create_user(account_id, DEMO_ADMIN_EMAIL, "admin", password, created_by="demo", settings=settings)
    return DEMO_ADMIN_EMAIL, password


# ------------------------------------------------------------------------------------ sign-in

def _failures(conn, email: str, ip: str) -> tuple[int, datetime | None]:
    row = conn.execute(
        "SELECT count(*) AS n, min(at) AS first FROM web_sign_in_attempts"
        " WHERE email = %s AND ip = %s AND NOT succeeded AND at > now() - %s"
        " AND at > COALESCE((SELECT max(at) FROM web_sign_in_attempts"
        "   WHERE email = %s AND ip = %s AND succeeded), '-infinity')",
        (email, ip, SIGN_IN_WINDOW, email, ip)).fetchone()
    return row["n"], row["first"]


def authenticate(email: str, password: str, ip: str, *, settings: Settings | None = None) -> User | None:
    """The user when email and password match; None otherwise. Raises RateLimited after
    SIGN_IN_MAX_FAILURES failures for this email from this IP within SIGN_IN_WINDOW (the
    attempt is then not even checked, so guessing stays blocked until the window passes), and
    UserDisabled for the right password of a disabled user (a wrong one is just None, so the
    message tells nothing to someone who does not know the password)."""
    key = (email or "").strip().lower()[:320]
    with _conn(settings) as conn:
        failures, first = _failures(conn, key, ip)
        if failures >= SIGN_IN_MAX_FAILURES:
            retry = (first + SIGN_IN_WINDOW) - datetime.now(timezone.utc) if first else SIGN_IN_WINDOW
            minutes = max(1, int(retry.total_seconds() // 60) + 1)
            raise RateLimited(f"Too many failed sign-ins for this email from your network; try again "
                              f"in {minutes} minute{'s' if minutes != 1 else ''}.",
                              retry_after_seconds=int(retry.total_seconds()) + 1, param="email")
        row = conn.execute("SELECT * FROM web_users WHERE email = %s", (key,)).fetchone()
        ok = False
        try:
            ok = _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password or "") and row is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        disabled = ok and row["disabled_at"] is not None
        conn.execute("INSERT INTO web_sign_in_attempts (email, ip, succeeded) VALUES (%s, %s, %s)",
                     (key, ip, ok and not disabled))
        # Attempts older than the window are no longer needed for any decision.
        conn.execute("DELETE FROM web_sign_in_attempts WHERE at < now() - %s", (SIGN_IN_WINDOW * 4,))
        if disabled:
            raise UserDisabled(f"This user was disabled on {row['disabled_at']:%d %b %Y} by an admin "
                               "of your account, so it cannot sign in. Ask an admin of your account "
                               "to enable it again.", param="email")
        if not ok:
            return None
        if _hasher.check_needs_rehash(row["password_hash"]):
            conn.execute("UPDATE web_users SET password_hash = %s WHERE id = %s",
                         (_hasher.hash(password), row["id"]))
        conn.execute("UPDATE web_users SET last_sign_in_at = now() WHERE id = %s", (row["id"],))
    return _user(row)


# ----------------------------------------------------------------------------------- sessions

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User, *, settings: Settings | None = None) -> tuple[str, Session]:
    """(cookie value, session). The cookie value is never stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc) + SESSION_LIFETIME
    with _conn(settings) as conn:
        conn.execute("INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at)"
                     " VALUES (%s, %s, %s, %s)", (_token_hash(token), user.id, csrf, expires))
        conn.execute("DELETE FROM web_sessions WHERE expires_at < now()"
                     " OR last_seen_at < now() - %s", (SESSION_IDLE,))
    return token, Session(user, csrf, expires)


def session_for(token: str, *, settings: Settings | None = None) -> Session | None:
    """The live session of a cookie value (touching last_seen_at), else None."""
    if not token:
        return None
    with _conn(settings) as conn:
        row = conn.execute(
            "UPDATE web_sessions s SET last_seen_at = now() FROM web_users u"
            " WHERE s.token_hash = %s AND u.id = s.user_id AND u.disabled_at IS NULL"
            " AND s.expires_at > now() AND s.last_seen_at > now() - %s"
            " RETURNING u.*, s.csrf_token, s.expires_at", (_token_hash(token), SESSION_IDLE)).fetchone()
    return Session(_user(row), row["csrf_token"], row["expires_at"]) if row else None


def end_session(token: str, *, settings: Settings | None = None) -> None:
    with _conn(settings) as conn:
        conn.execute("DELETE FROM web_sessions WHERE token_hash = %s", (_token_hash(token),))
