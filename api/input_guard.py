"""Text the database cannot store never reaches it: NUL characters and unpaired surrogates in
path segments, query strings, the Idempotency-Key header and JSON strings or keys; NaN and
Infinity (which Python's JSON parser accepts); absurdly nested JSON. Each is a 400 naming the
field, checked for every route by one app-level dependency (api.app)."""

from __future__ import annotations

import json

from fastapi import Request

from exports.errors import InvalidParameter

# The API's bodies are at most four levels deep; the limit only stops recursion bombs.
MAX_JSON_DEPTH = 32


def _unstorable(text: str) -> bool:
    """NUL, or a lone surrogate (valid JSON escapes, not encodable as UTF-8)."""
    return "\x00" in text or not text.isascii() and _has_surrogate(text)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_unstorable(value, path: str, depth: int = 0) -> str | None:
    """The path of the first string (or object key) in a JSON value Postgres cannot store."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidParameter(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
                               param="body")
    if isinstance(value, str):
        return path if _unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if _unstorable(str(key)):
                return child
            if found := _first_unstorable(item, child, depth + 1):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _first_unstorable(item, f"{path}[{index}]", depth + 1):
                return found
    return None


class _NotJson(ValueError):
    pass


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise _NotJson(text)
    return number


def _no_constants(name: str):
    raise _NotJson(name)


async def reject_unstorable_text(request: Request) -> None:
    """NUL characters and lone surrogates are never meaningful in an id, a query value or a JSON
    string, and Postgres can store neither in text or jsonb; NaN and Infinity are not JSON. Refuse
    them up front, naming the field, for every route."""
    for name, value in request.path_params.items():
        if _unstorable(str(value)):
            raise InvalidParameter(f"{name} must not contain NUL or unpaired surrogate characters.",
                                   param=name)
    for name, value in request.query_params.multi_items():
        if _unstorable(name) or _unstorable(value):
            raise InvalidParameter(f"{name[:100]!r} must not contain NUL characters.", param=name[:100])
    if _unstorable(request.headers.get("idempotency-key", "")):
        raise InvalidParameter("Idempotency-Key must not contain NUL characters.", param="Idempotency-Key")
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"null", parse_float=_finite,
                              parse_constant=_no_constants)
        except _NotJson:
            raise InvalidParameter("The request body is not valid JSON: NaN and Infinity are not "
                                   "JSON numbers.", param="body") from None
        except (ValueError, RecursionError):
            return  # the body's own parsing reports it
        if found := _first_unstorable(body, ""):
            raise InvalidParameter(f"{found} must not contain NUL (\\u0000) or unpaired surrogate "
                                   "characters.", param=found or "body")
