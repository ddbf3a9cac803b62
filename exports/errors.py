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
    (dotted for nested fields, e.g. "parameters.interval_end")."""

    code = "parameter_invalid"


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
