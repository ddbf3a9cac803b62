"""Signed webhook events (`report.succeeded`, `report.failed`), Stripe-style.

The body is JSON `{"id", "object": "event", "type", "created", "data": {"object": <report>}}`;
the header `Payreports-Signature: t=<unix>,v1=<hex>` carries
`HMAC-SHA256(secret, f"{t}.{body}")` — one `v1=` per signing secret, two during a rotation's
grace period (`signing_secrets`). Receivers check it with `verify_signature` (see
docs/webhooks.md). The event id is stable across retries, so a receiver can drop duplicates.
Targets pass the SSRF guard (exports/delivery/netguard.py) before every attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpcore
import httpx

from exports import db
from exports.delivery import netguard
from exports.settings import Settings, get_settings

SIGNATURE_HEADER = "Payreports-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureVerificationError(Exception):
    """The payload was not signed with this secret, or the signature is too old."""


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    body = payload.decode() if isinstance(payload, bytes) else payload
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def signature_header(payload: bytes | str, secrets_: str | list[str], timestamp: int) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>...]`: one v1 per secret (newest first), so during a rotation
    a receiver holding either the old or the new secret can verify."""
    if isinstance(secrets_, str):
        secrets_ = [secrets_]
    return ",".join([f"t={timestamp}"] + [f"v1={compute_signature(payload, s, timestamp)}"
                                           for s in secrets_])


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
    new one, which signs from then on — alongside the previous one for the grace period
    (settings.webhook_secret_rotation_grace_seconds, see signing_secrets)."""
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


def signing_secrets(account_id: str, settings: Settings | None = None) -> list[str]:
    """The secrets that sign the account's events now, newest first: the current one, plus every
    older one whose successor was created less than the rotation grace period ago."""
    settings = settings or get_settings()
    current = webhook_secret(account_id, settings)
    with db.connect("app", settings, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT secret, lag(created_at) OVER (ORDER BY created_at DESC, id DESC) AS replaced_at"
            " FROM webhook_secrets WHERE account_id = %s ORDER BY created_at DESC, id DESC",
            (account_id,)).fetchall()
        now = conn.execute("SELECT now()").fetchone()[0]
    grace = timedelta(seconds=settings.webhook_secret_rotation_grace_seconds)
    older = [secret for secret, replaced_at in rows[1:] if replaced_at is not None
             and now - replaced_at < grace]
    return [current, *older]


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
    permanent: bool = False  # retrying cannot help (the target is refused)


# One reason for every transport failure: telling "refused" from "timed out" or "reset" would let
# an account map which ports of a host are open.
CONNECT_FAILED = "no HTTP response (connection failed, timed out or TLS error)"


def post_event(url: str, payload: bytes, secrets_: str | list[str], settings: Settings, *,
               timestamp: int | None = None) -> PostResult:
    """One POST to the address the URL resolves to, after the SSRF guard (exports/delivery/
    netguard.py) checked it; the connection is pinned to that address. ok only for a 2xx answer;
    redirects are not followed; the response body is never read; the whole attempt (connect to
    response headers) takes at most settings.webhook_timeout_seconds. Never raises for network
    trouble. `secrets_`: the signing secrets (several during a rotation), newest first."""
    stamp = int(timestamp if timestamp is not None else time.time())
    try:
        target, address = netguard.resolve_target(
            url, allow_private=settings.webhook_allow_private_targets)
    except netguard.UnsafeTarget as exc:
        return PostResult(False, None, f"refused: {exc}", permanent=True)
    except (OSError, UnicodeError):
        return PostResult(False, None, netguard.NOT_PUBLIC_BY_NAME + " (retried: lookup failed)")
    default_port = 443 if target.scheme == "https" else 80
    literal = netguard.literal_address(target.host)
    host = f"[{target.host}]" if literal is not None and literal.version == 6 else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    ip_text = f"[{address}]" if address.version == 6 else str(address)
    headers = {"Host": host_header, "Content-Type": "application/json",
               "Content-Length": str(len(payload)), "User-Agent": "payreports-webhooks/1",
               SIGNATURE_HEADER: signature_header(payload, secrets_, stamp)}
    # TLS: SNI and certificate check against the name, although we connect to the address.
    extensions: dict[str, Any] = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"),
                                                           settings.webhook_timeout_seconds)}
    if target.scheme == "https" and literal is None:
        extensions["sni_hostname"] = target.host
    url = f"{target.scheme}://{ip_text}:{target.port}{target.path}"
    try:
        status = _post_within(url, payload, headers, extensions, settings.webhook_timeout_seconds)
    except _TRANSPORT_ERRORS:
        return PostResult(False, None, CONNECT_FAILED)
    if 200 <= status < 300:
        return PostResult(True, status, None)
    if 300 <= status < 400:
        return PostResult(False, status, f"HTTP {status}: redirects are not followed")
    return PostResult(False, status, f"HTTP {status}")


_TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                     httpcore.UnsupportedProtocol, OSError)  # OSError includes ssl.SSLError


def tls_context() -> ssl.SSLContext:
    """Certificate verification for webhook endpoints (httpx's defaults: certifi's roots)."""
    return httpx.create_ssl_context()


class _AbortableBackend(httpcore.SyncBackend):
    """Keeps a duplicate of every socket it opens so a watchdog can shut it down: httpx/httpcore
    time each read separately, so an endpoint trickling one byte at a time would otherwise hold
    the worker for hours."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def connect_tcp(self, *args, **kwargs):
        stream = super().connect_tcp(*args, **kwargs)
        self.sockets.append(stream.get_extra_info("socket").dup())
        return stream

    def abort(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv, also through TLS

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _post_within(url: str, payload: bytes, headers: dict[str, str], extensions: dict[str, Any],
                 deadline_seconds: float) -> int:
    """POST and return the response status, all within `deadline_seconds`; the body is never
    read (an internal service's answer cannot leak through it), redirects are not followed,
    proxies from the environment are not used (they would connect by name)."""
    backend = _AbortableBackend()
    watchdog = threading.Timer(deadline_seconds, backend.abort)
    watchdog.daemon = True
    try:
        with httpcore.ConnectionPool(ssl_context=tls_context(), network_backend=backend,
                                     max_connections=1) as pool:
            watchdog.start()
            with pool.stream("POST", url, headers=list(headers.items()), content=payload,
                             extensions=extensions) as response:
                return response.status
    finally:
        watchdog.cancel()
        backend.close()
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code, None)
    if 300 <= response.status_code < 400:
        return PostResult(False, response.status_code,
                          f"HTTP {response.status_code}: redirects are not followed")
    return PostResult(False, response.status_code, f"HTTP {response.status_code}")
