"""Report templates: a saved report definition (type, default parameters, format) with an optional
schedule (cron in an IANA timezone + a relative range such as 'yesterday') and delivery targets
(email recipients, a webhook URL). All SQL on `report_templates` lives here.

Validation raises `InvalidParameter` naming the field (e.g. "schedule_cron", "timezone",
"email_recipients[1]", "webhook_url", "parameters.interval_end") so the API answers 400 with it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from croniter import CroniterError, croniter
from email_validator import EmailNotValidError, validate_email
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from exports import db
from exports.errors import InvalidParameter, LimitReached, NotFound, invalid_parameter_from, param_from_loc
from exports.reports import params as report_params
from exports.reports.params import show
from exports.scheduling.scheduler import next_due_time
from exports.settings import Settings, get_settings

CATCH_UP_POLICIES = ("all", "latest")
MAX_RECIPIENTS = 20
MAX_ADDRESS_CHARS = 254  # RFC 5321's limit on a forward path
MAX_DESCRIPTION_CHARS = 2000
MAX_CRON_CHARS = 200
# Changing any of these re-anchors the schedule at "now": due times before the change are not
# owed under the new schedule.
SCHEDULE_FIELDS = ("schedule_cron", "timezone", "schedule_enabled")


def new_template_id() -> str:
    return "rtpl_" + secrets.token_hex(12)


def _report_type_schema() -> dict[str, Any]:
    from exports.reports.catalog import REPORT_TYPES

    return {"type": "string", "enum": list(REPORT_TYPES),
            "description": "A report type id from GET /v1/report_types (a Stripe-style version "
                           "suffix such as '.1' is accepted too)."}


ReportTypeName = Annotated[str, Field(max_length=100), WithJsonSchema(_report_type_schema())]
FormatName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(report_params.FORMATS)})]
Parameters = Annotated[dict[str, Any], WithJsonSchema(report_params.parameters_json_schema())]


class TemplateChanges(BaseModel):
    """The fields a client may set, with their JSON types: strict, so "false" is not a boolean,
    a number is not a description and a list is not a name (a 400 naming the field, never a
    silent coercion). Values are checked further by validate_template."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    report_type: ReportTypeName | None = None
    parameters: Parameters | None = None
    format: FormatName | None = None
    schedule_cron: str | None = Field(default=None, max_length=MAX_CRON_CHARS,
                                      description="Five-field cron, e.g. '0 6 * * *'.")
    timezone: str | None = Field(default=None, max_length=report_params.MAX_TIMEZONE_CHARS,
                                 description="IANA time zone the cron is read in (default UTC).")
    relative_range: Annotated[str, WithJsonSchema(
        {"type": "string", "enum": list(report_params.RELATIVE_RANGES)})] | None = None
    catch_up: Literal[CATCH_UP_POLICIES] | None = None  # type: ignore[valid-type]
    schedule_enabled: bool | None = None
    email_recipients: list[Annotated[str, Field(max_length=MAX_ADDRESS_CHARS)]] | None = Field(
        default=None, max_length=MAX_RECIPIENTS)
    webhook_url: str | None = None


class NewTemplate(TemplateChanges):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "Daily activity", "report_type": "balance_change_from_activity.itemized",
         "format": "csv", "schedule_cron": "0 6 * * *", "timezone": "Europe/Berlin",
         "relative_range": "yesterday", "email_recipients": ["finance@example.com"]},
    ]})

    name: str = Field(min_length=1, max_length=255)
    report_type: ReportTypeName
    format: FormatName


# Fields a client may set; everything else on the row is managed by the system.
FIELDS = tuple(TemplateChanges.model_fields)


def check_types(body: Any, model: type[TemplateChanges]) -> dict[str, Any]:
    """The body as given (keys it did not set stay unset), or InvalidParameter naming the field."""
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.", param="body")
    try:
        model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise invalid_parameter_from(first, param_from_loc(first["loc"]) or "body") from None
    return body


# ---------------------------------------------------------------------------------- validation

def validate_cron(expression: Any, param: str = "schedule_cron") -> str:
    if not isinstance(expression, str) or not expression.strip() or len(expression) > MAX_CRON_CHARS:
        raise InvalidParameter("schedule_cron must be a cron expression such as '0 6 * * *'", param=param)
    expression = " ".join(expression.split())
    # Five fields (minute hour day-of-month month day-of-week) or a macro like @daily; croniter
    # would read a sixth field as seconds, which a report schedule has no use for.
    if not expression.startswith("@") and len(expression.split()) != 5:
        raise InvalidParameter(
            f"schedule_cron {show(expression)} must have 5 fields: minute hour day-of-month month "
            "day-of-week (e.g. '0 6 * * MON')", param=param)
    try:
        valid = croniter.is_valid(expression)
    except Exception:  # noqa: BLE001 — croniter raises on some malformed input instead of saying False
        valid = False
    if not valid:
        raise InvalidParameter(f"schedule_cron {show(expression)} is not a valid cron expression",
                               param=param)
    return expression


def first_due_time(cron: str, timezone: str, after: datetime, param: str = "schedule_cron") -> datetime:
    """The schedule's next due time; a cron that can never fire (0 0 31 2 *) or fires less than
    once in ten years is an InvalidParameter, not a scheduler crash."""
    try:
        return next_due_time(cron, timezone, after)
    except (CroniterError, ValueError):
        raise InvalidParameter(f"schedule_cron {show(cron)} never fires (no due time in the next ten "
                               "years); check the day of month against the month.", param=param) from None


def validate_timezone(name: Any, param: str = "timezone") -> str:
    return report_params.validate_timezone(name, param=param)


def validate_email_recipients(recipients: Any, param: str = "email_recipients") -> list[str]:
    if recipients is None:
        return []
    if not isinstance(recipients, list):
        raise InvalidParameter(f"{param} must be a list of email addresses", param=param)
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidParameter(f"{param} accepts at most {MAX_RECIPIENTS} addresses", param=param)
    normalized = []
    for index, address in enumerate(recipients):
        try:
            if not isinstance(address, str):
                raise EmailNotValidError("not a string")
            if len(address) > MAX_ADDRESS_CHARS:
                raise EmailNotValidError(f"longer than {MAX_ADDRESS_CHARS} characters")
            # Rejects CR/LF (header injection), spaces, display names and anything not an address.
            normalized.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise InvalidParameter(f"{show(address)} is not a valid email address: {exc}",
                                   param=f"{param}[{index}]") from None
    return normalized


def validate_webhook_url(url: Any, settings: Settings, param: str = "webhook_url") -> str | None:
    """The SSRF guard's create-time rules (exports/delivery/netguard.py); send time checks the
    resolved address again."""
    from exports.delivery import netguard

    if url is None or url == "":
        return None
    try:
        target = netguard.check_webhook_url(url, allow_private=settings.webhook_allow_private_targets)
    except netguard.UnsafeTarget as exc:
        raise InvalidParameter(str(exc), param=param) from None
    if settings.environment == "production" and target.scheme != "https":
        raise InvalidParameter("webhook_url must use https", param=param)
    return url


def validate_schedule_interval(cron: str, settings: Settings, param: str = "schedule_cron") -> None:
    """A schedule may not fire more often than settings.min_schedule_interval_seconds."""
    from exports.scheduling.scheduler import shortest_interval

    shortest = shortest_interval(cron)
    minimum = settings.min_schedule_interval_seconds
    if shortest is not None and shortest.total_seconds() < minimum:
        raise InvalidParameter(
            f"schedule_cron {cron!r} runs every {int(shortest.total_seconds() // 60)} minutes at its "
            f"most frequent; schedules may run at most once every {minimum // 60} minutes",
            param=param, code="schedule_too_frequent")


def _validate_report(account_id: str, fields: dict[str, Any], settings: Settings, now: datetime) -> None:
    """The report type, format and parameters must make a valid request as the scheduler will
    build it: defaults + the relative range resolved at the next due time (or now, unscheduled)."""
    from exports.reports.engine import validate_report_request
    from exports.scheduling.scheduler import scheduled_parameters

    when = fields.get("next_run_at") or now
    try:
        parameters = scheduled_parameters(
            {"default_parameters": fields["parameters"], "relative_range": fields["relative_range"],
             "timezone": fields["timezone"]}, when)
    except ValueError as exc:
        raise InvalidParameter(str(exc), param="relative_range") from None
    # The data does not have to be replicated yet: each scheduled run is validated again when it
    # is processed. Parameter errors name the field inside `parameters` ("parameters.<name>").
    validate_report_request(account_id, fields["report_type"], parameters, fields["format"],
                            settings=settings, now=when, account_timezone=fields["timezone"],
                            data_available_end=None)


def validate_template(account_id: str, fields: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """Check and normalise a complete set of template fields; raise InvalidParameter naming the field."""
    clean = dict(fields)
    name = clean.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidParameter("name is required (at most 255 characters)", param="name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        # The name becomes an email subject: a line break there is header injection.
        raise InvalidParameter("name must be a single line of text (no control characters)", param="name")
    for required in ("report_type", "format"):
        if not isinstance(clean.get(required), str) or not clean[required]:
            raise InvalidParameter(f"{required} is required", param=required)
    if clean.get("parameters") is None:
        clean["parameters"] = {}
    if not isinstance(clean["parameters"], dict):
        raise InvalidParameter("parameters must be an object", param="parameters")
    clean["timezone"] = validate_timezone(clean.get("timezone") or "UTC")
    if clean.get("description") is not None and (not isinstance(clean["description"], str)
                                                 or len(clean["description"]) > MAX_DESCRIPTION_CHARS):
        raise InvalidParameter(f"description must be text of at most {MAX_DESCRIPTION_CHARS} characters",
                               param="description")
    if clean.get("schedule_cron") is not None or clean.get("schedule_enabled"):
        clean["schedule_cron"] = validate_cron(clean.get("schedule_cron"))
        validate_schedule_interval(clean["schedule_cron"], settings)
    enabled = clean.get("schedule_enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidParameter("schedule_enabled must be true or false", param="schedule_enabled")
    clean["schedule_enabled"] = enabled if enabled is not None else clean.get("schedule_cron") is not None
    clean["next_run_at"] = (first_due_time(clean["schedule_cron"], clean["timezone"], now)
                            if clean["schedule_enabled"] else None)
    clean["catch_up"] = clean.get("catch_up") or "latest"
    if clean["catch_up"] not in CATCH_UP_POLICIES:
        raise InvalidParameter("catch_up must be 'all' or 'latest'", param="catch_up")
    if clean.get("relative_range") is not None and not isinstance(clean["relative_range"], str):
        raise InvalidParameter("relative_range must be a string such as 'yesterday'", param="relative_range")
    clean["relative_range"] = clean.get("relative_range") or None
    if clean["relative_range"]:
        for key in ("interval_start", "interval_end"):
            if key in clean["parameters"]:
                raise InvalidParameter(
                    f"Give either relative_range or parameters.{key}, not both: each scheduled run "
                    "covers the relative range as of its due time.", param=f"parameters.{key}")
    clean["email_recipients"] = validate_email_recipients(clean.get("email_recipients"))
    clean["webhook_url"] = validate_webhook_url(clean.get("webhook_url"), settings)
    _validate_report(account_id, clean, settings, now)
    return clean


# ----------------------------------------------------------------------------------------- CRUD

def _conn(settings: Settings):
    return db.connect("app", settings, autocommit=True, dict_rows=True)


def _next_run(fields: dict[str, Any], after: datetime) -> datetime | None:
    if not fields.get("schedule_enabled") or not fields.get("schedule_cron"):
        return None
    return next_due_time(fields["schedule_cron"], fields["timezone"], after)


def create_template(account_id: str, body: dict[str, Any], *, settings: Settings | None = None,
                    now: datetime | None = None, created_by: str | None = None) -> dict:
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    fields = validate_template(account_id, check_types(body, NewTemplate), settings, now)
    with _conn(settings) as conn, conn.transaction():
        # Counted under a per-account lock so parallel creates cannot all see room.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.templates:' || %s))", (account_id,))
        count = conn.execute("SELECT count(*) AS n FROM report_templates WHERE account_id = %s AND enabled",
                             (account_id,)).fetchone()["n"]
        if count >= settings.max_templates_per_account:
            raise LimitReached(f"This account already has {count} report templates (limit "
                               f"{settings.max_templates_per_account}); delete one to create another.")
        return conn.execute(
            "INSERT INTO report_templates (id, account_id, name, description, report_type,"
            " default_parameters, format, schedule_enabled, schedule_cron, timezone, relative_range,"
            " catch_up, next_run_at, email_recipients, webhook_url, created_at, updated_at, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING *",
            (new_template_id(), account_id, fields["name"].strip(), fields.get("description"),
             fields["report_type"], Jsonb(fields["parameters"]), fields["format"],
             fields["schedule_enabled"], fields.get("schedule_cron"), fields["timezone"],
             fields["relative_range"], fields["catch_up"], _next_run(fields, now),
             fields["email_recipients"], fields["webhook_url"], now, now, created_by),
        ).fetchone()


def get_template(template_id: str, account_id: str | None = None, *,
                 settings: Settings | None = None) -> dict:
    """Another account's template is reported exactly like a missing one."""
    sql = "SELECT * FROM report_templates WHERE id = %s AND enabled"
    args: list[Any] = [template_id]
    if account_id is not None:
        sql += " AND account_id = %s"
        args.append(account_id)
    with _conn(settings or get_settings()) as conn:
        row = conn.execute(sql, args).fetchone()
    if row is None:
        raise NotFound(f"No such report template: '{template_id}'", param="id")
    return row


def list_templates(account_id: str, *, settings: Settings | None = None) -> list[dict]:
    with _conn(settings or get_settings()) as conn:
        return conn.execute(
            "SELECT * FROM report_templates WHERE account_id = %s AND enabled"
            " ORDER BY created_at DESC, id DESC", (account_id,)).fetchall()


def update_template(template_id: str, account_id: str, changes: dict[str, Any], *,
                    settings: Settings | None = None, now: datetime | None = None) -> dict:
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    check_types(changes, TemplateChanges)
    current = get_template(template_id, account_id, settings=settings)
    merged = {field: current[field] for field in FIELDS if field in current}
    merged["parameters"] = current["default_parameters"]
    merged.update(changes)
    fields = validate_template(account_id, merged, settings, now)
    schedule_changed = any(fields.get(f) != current.get(f) for f in SCHEDULE_FIELDS)
    with _conn(settings) as conn:
        return conn.execute(
            "UPDATE report_templates SET name = %s, description = %s, report_type = %s,"
            " default_parameters = %s, format = %s, schedule_enabled = %s, schedule_cron = %s,"
            " timezone = %s, relative_range = %s, catch_up = %s, email_recipients = %s,"
            " webhook_url = %s, updated_at = %s,"
            # A changed schedule owes nothing before now: re-anchor and recompute the next run.
            " last_scheduled_for = CASE WHEN %s THEN GREATEST(last_scheduled_for, %s)"
            "   ELSE last_scheduled_for END,"
            " next_run_at = CASE WHEN %s THEN %s ELSE next_run_at END,"
            " deferred_reason = CASE WHEN %s THEN NULL ELSE deferred_reason END"
            " WHERE id = %s AND account_id = %s RETURNING *",
            (fields["name"].strip(), fields.get("description"), fields["report_type"],
             Jsonb(fields["parameters"]), fields["format"], fields["schedule_enabled"],
             fields.get("schedule_cron"), fields["timezone"], fields["relative_range"],
             fields["catch_up"], fields["email_recipients"], fields["webhook_url"], now,
             schedule_changed, now, schedule_changed,
             _next_run(fields, max(now, current["last_scheduled_for"] or now)), schedule_changed,
             template_id, account_id),
        ).fetchone()


def delete_template(template_id: str, account_id: str, *, settings: Settings | None = None) -> dict:
    """Soft delete: the row stays so past requests keep their template_id; it never runs again."""
    with _conn(settings or get_settings()) as conn:
        row = conn.execute(
            "UPDATE report_templates SET enabled = false, schedule_enabled = false, next_run_at = NULL,"
            " updated_at = now() WHERE id = %s AND account_id = %s AND enabled RETURNING *",
            (template_id, account_id)).fetchone()
    if row is None:
        raise NotFound(f"No such report template: '{template_id}'", param="id")
    return row


def to_api(row: dict) -> dict:
    """The template as the API shows it (Stripe-style object)."""
    def ts(value):
        return int(value.timestamp()) if value else None

    return {
        "id": row["id"], "object": "report_template", "name": row["name"],
        "description": row["description"], "report_type": row["report_type"],
        "parameters": row["default_parameters"], "format": row["format"],
        "schedule_enabled": row["schedule_enabled"], "schedule_cron": row["schedule_cron"],
        "timezone": row["timezone"], "relative_range": row["relative_range"],
        "catch_up": row["catch_up"], "email_recipients": list(row["email_recipients"] or []),
        "webhook_url": row["webhook_url"], "next_run_at": ts(row["next_run_at"]),
        # Set while the next run waits for the account's pending reports to drop below the cap.
        "deferred_reason": row.get("deferred_reason"),
        "last_scheduled_for": ts(row["last_scheduled_for"]), "created": ts(row["created_at"]),
        "updated": ts(row["updated_at"]),
    }
