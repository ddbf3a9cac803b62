"""Signed webhook events (`report.succeeded`, `report.failed`), Stripe-style.

The body is JSON `{"id", "object": "event", "type", "created", "data": {"object": <report>}}`;
the header `Payreports-Signature: t=<unix>,v1=<hex>` carries
`HMAC-SHA256(secret, f"{t}.{body}")`. Receivers check it with `verify_signature` (see
docs/webhooks.md). The event id is stable across retries, so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from exports import db
from exports.settings import Settings, get_settings

SIGNATURE_HEADER = "Payreports-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureVerificationError(Exception):
    """The payload was not signed with this secret, or the signature is too old."""


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    body = payload.decode() if isinstance(payload, bytes) else payload
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def signature_header(payload: bytes | str, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={compute_signature(payload, secret, timestamp)}"


def verify_signature(payload: bytes | str, header: str, secret: str,
                     tolerance: int = DEFAULT_TOLERANCE_SECONDS, *, now: float | None = None) -> None:
    """Raise SignatureVerificationError unless `header` signs `payload` with `secret` and its
    timestamp is within `tolerance` seconds of now (replay protection). Any of several `v1`
    signatures may match (several are sent while a secret is being rotated)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError("malformed timestamp in signature header") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureVerificationError("signature header must contain t=<unix> and v1=<hex>")
    expected = compute_signature(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureVerificationError("no signature matches the payload for this secret")
    current = now if now is not None else time.time()
    if tolerance and abs(current - timestamp) > tolerance:
        raise SignatureVerificationError(f"signature timestamp is more than {tolerance}s from now")


def webhook_secret(account_id: str, settings: Settings | None = None, *, rotate: bool = False) -> str:
    """The account's current signing secret (whsec_...), created on first use; `rotate` adds a
    new one, which signs from then on."""
    with db.connect("app", settings or get_settings(), autocommit=True) as conn:
        if not rotate:
            row = conn.execute("SELECT secret FROM webhook_secrets WHERE account_id = %s"
                               " ORDER BY created_at DESC, id DESC LIMIT 1", (account_id,)).fetchone()
            if row:
                return row[0]
        # Serialise creation per account so two first deliveries agree on one secret.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('webhook_secret:' || %s))", (account_id,))
            if not rotate:
                row = conn.execute("SELECT secret FROM webhook_secrets WHERE account_id = %s"
                                   " ORDER BY created_at DESC, id DESC LIMIT 1", (account_id,)).fetchone()
                if row:
                    return row[0]
            secret = "whsec_" + secrets.token_urlsafe(32)
            conn.execute("INSERT INTO webhook_secrets (account_id, secret) VALUES (%s, %s)",
                         (account_id, secret))
            return secret


def event_payload(event_id: str, event_type: str, created: int, report: dict[str, Any]) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created": created,
                       "data": {"object": report}}, separators=(",", ":"), default=str).encode()


def event_id_for(request_id: str, event_type: str) -> str:
    """Stable per (report, event): retries carry the same id."""
    return "evt_" + hashlib.sha256(f"{request_id}:{event_type}".encode()).hexdigest()[:24]


@dataclass
class PostResult:
    ok: bool
    status_code: int | None
    error: str | None


def post_event(url: str, payload: bytes, secret: str, settings: Settings, *,
               timestamp: int | None = None) -> PostResult:
    """One POST; ok only for a 2xx answer. Never raises for network trouble."""
    stamp = int(timestamp if timestamp is not None else time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "payreports-webhooks/1",
               SIGNATURE_HEADER: signature_header(payload, secret, stamp)}
    try:
        response = httpx.post(url, content=payload, headers=headers,
                              timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    except httpx.TimeoutException:
        return PostResult(False, None, f"timed out after {settings.webhook_timeout_seconds}s")
    except httpx.HTTPError as exc:
        return PostResult(False, None, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code, None)
    return PostResult(False, response.status_code,
                      f"HTTP {response.status_code}: {response.text[:200]}")
