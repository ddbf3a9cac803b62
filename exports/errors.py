"""Errors that cross layers. The API turns these into Stripe-shaped 4xx bodies:
{"error": {"type": "invalid_request_error", "code": ..., "param": ..., "message": ...}}."""

from __future__ import annotations


class ReportingError(Exception):
    """Base for errors a user can act on (shown verbatim)."""

    http_status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"error": {"type": self.error_type, "code": self.code, "param": self.param,
                          "message": self.message}}


class InvalidParameter(ReportingError):
    """A request parameter is missing, malformed or out of range; `param` names it
    (dotted for nested fields, e.g. "parameters.interval_end"; [i] for list items)."""

    code = "parameter_invalid"


def param_from_loc(loc: tuple | list) -> str | None:
    """A pydantic error location as a param name: ('email_recipients', 1) -> 'email_recipients[1]',
    ('body', 'parameters', 'timezone') -> 'parameters.timezone' (FastAPI's source prefix dropped)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def invalid_parameter_from(error: dict, param: str | None) -> InvalidParameter:
    """One pydantic error (ValidationError.errors()[0]) as an InvalidParameter naming the field."""
    kind = error.get("type", "")
    message = {"missing": "this field is required", "extra_forbidden": "unknown parameter",
               "json_invalid": "the request body is not valid JSON"}.get(kind, error.get("msg", "invalid"))
    return InvalidParameter(f"{param}: {message}" if param else message, param=param)


class NotFound(ReportingError):
    http_status = 404
    code = "resource_missing"


class Conflict(ReportingError):
    http_status = 409
    code = "idempotency_key_in_use"


class RateLimited(ReportingError):
    http_status = 429
    error_type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, param: str | None = None):
        super().__init__(message, param=param)
        self.retry_after_seconds = retry_after_seconds


class ReportTooLarge(ReportingError):
    """E.g. an itemized PDF above the documented row limit."""

    code = "report_too_large"


class LimitReached(ReportingError):
    """The account holds as many of something (e.g. report templates) as it may; delete some first."""

    http_status = 409
    code = "limit_reached"
