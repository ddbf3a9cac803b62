"""HMAC-signed, expiring download URLs for the local storage backend (S3 presigns its own)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


class SignatureInvalid(Exception):
    """The signature does not match the key and expiry, or the URL has expired."""


def _signature(secret: str, key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, key: str, ttl_seconds: int, *, now: float | None = None) -> tuple[int, str]:
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    return expires, _signature(secret, key, expires)


def signed_url(base_url: str, secret: str, key: str, ttl_seconds: int, *, now: float | None = None) -> str:
    expires, sig = sign(secret, key, ttl_seconds, now=now)
    return f"{base_url.rstrip('/')}/files/{quote(key)}?{urlencode({'expires': expires, 'sig': sig})}"


def verify(secret: str, key: str, expires: int | str, sig: str, *, now: float | None = None) -> None:
    """Raise SignatureInvalid unless `sig` signs (key, expires) and `expires` is in the future."""
    try:
        expires_int = int(expires)
    except (TypeError, ValueError):
        raise SignatureInvalid("malformed expiry") from None
    expected = _signature(secret, key, expires_int)
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a mismatch).
    if not hmac.compare_digest(expected.encode(), str(sig).encode("utf-8", "replace")):
        raise SignatureInvalid("signature does not match")
    if expires_int < (now if now is not None else time.time()):
        raise SignatureInvalid("link expired")
