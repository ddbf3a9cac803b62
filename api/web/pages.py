"""The web app's pages: server-rendered Jinja2 templates, htmx for live parts.

Every page reads and writes through the same `exports/` functions the Report API routes call
(the request store, the catalog and engine validation, templates, notifications, webhooks,
storage), always with the signed-in user's account, so there is no second path to the data and
another account's ids answer "not found" exactly like missing ones.

The reports pages are registered twice: under /reports for signed-in users and under
/embed/reports for embedded sessions (`_register_report_pages`); nothing else accepts an embed
session.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Callable
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.auth import SCOPES, validate_scopes
from api.web import auth as web_auth
from api.web.auth import Principal, embedded_session, signed_in_user
from api.web.cron_text import describe as describe_cron
from exports import users
from exports.delivery import dispatch, notifications, webhooks
from exports.errors import InvalidParameter, NotFound, RateLimited, ReportingError
from exports.reports.catalog import REPORT_TYPES, get_report_type
from exports.reports.params import FORMATS, OPTION_FORMATS
from exports.reports.relative import describe_interval, resolve_relative_range
from exports.requests import store
from exports.scheduling import templates as templates_core
from exports.scheduling.scheduler import due_times_between
from exports.settings import Settings
from exports.storage import get_storage

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)

AppUser = Annotated[Principal, Depends(signed_in_user)]
EmbedUser = Annotated[Principal, Depends(embedded_session)]

PERIOD_PRESETS = (("yesterday", "Yesterday"), ("last_7_days", "Last 7 days"),
                  ("last_month", "Last month"), ("last_quarter", "Last quarter"),
                  ("custom", "Custom dates"))
SCHEDULE_RANGES = (("yesterday", "Yesterday"), ("last_7_days", "Last 7 days"),
                   ("last_week", "Last week (Mon–Sun)"), ("last_month", "Last month"),
                   ("last_quarter", "Last quarter"), ("month_to_date", "Month to date"))
REQUESTED_WITHIN = (("", "Any time"), ("1", "Today and yesterday"), ("7", "Last 7 days"),
                    ("30", "Last 30 days"))
ACTIVE = ("pending", "processing")
TIMESTAMP_FORMAT_LABELS = (("stripe", "2024-11-03 01:30:00 (Stripe)"),
                           ("iso8601", "2024-11-03T01:30:00-04:00 (ISO)"))
FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "pdf": "PDF", "parquet": "Parquet"}
FILTER_LABELS = {"currency": "Currency", "reporting_category": "Reporting categories",
                 "status": "Payment statuses", "payout": "Payout id", "customer": "Customer id"}
_TZ_CACHE: dict[str, tuple[float, str]] = {}


# ------------------------------------------------------------------------------------ helpers

def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def account_tz(account_id: str, settings: Settings) -> str:
    """The account's timezone (source database), cached a minute per process."""
    cached = _TZ_CACHE.get(account_id)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    from exports.reports.engine import account_timezone

    tz = account_timezone(account_id, settings) or "UTC"
    _TZ_CACHE[account_id] = (time.monotonic() + 60, tz)
    return tz


def fmt_dt(value: datetime | None, tz: str, with_zone: bool = False) -> str:
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M") + (f" {tz}" if with_zone else "")


def fmt_size(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(size)


TEMPLATES.env.filters["size"] = fmt_size
TEMPLATES.env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
TEMPLATES.env.filters["thousands"] = lambda n: "—" if n is None else f"{n:,}"


def type_title(report_type: str) -> str:
    try:
        return get_report_type(report_type).title
    except InvalidParameter:
        return report_type


def period_text(row: dict, tz: str) -> str:
    """What the report covers, as the engine resolved it (manifest) or as it was asked, in the
    report's timezone: whole days as first – last day, else times."""
    from exports.reports.params import parse_instant

    extra = (row.get("manifest") or {}).get("extra") or {}
    params = row.get("parameters") or {}
    shown_tz = extra.get("timezone") or params.get("timezone") or tz
    zone = ZoneInfo(shown_tz) if shown_tz in _known_timezones() else ZoneInfo(tz)
    start = end = None
    if extra.get("interval_end"):
        end = datetime.fromisoformat(extra["interval_end"])
        start = datetime.fromisoformat(extra["interval_start"]) if extra.get("interval_start") else None
    elif params.get("relative_range"):
        return dict(PERIOD_PRESETS + SCHEDULE_RANGES).get(params["relative_range"],
                                                           params["relative_range"].replace("_", " "))
    else:
        try:
            end = parse_instant(params["interval_end"], "interval_end", str(zone)) if params.get("interval_end") else None
            start = parse_instant(params["interval_start"], "interval_start", str(zone)) if params.get("interval_start") else None
        except (InvalidParameter, TypeError):
            return f"{params.get('interval_start', '…')} – {params.get('interval_end', '…')} (end exclusive)"
    if end is None:
        return "—" if start is None else f"from {start.astimezone(zone):%Y-%m-%d %H:%M}"
    end_dt = end.astimezone(zone)
    if start is None:
        return f"as of {end_dt:%Y-%m-%d %H:%M}"
    start_dt = start.astimezone(zone)
    if start_dt.time() == end_dt.time() == datetime.min.time():
        last = end_dt - timedelta(days=1)
        return (f"{start_dt:%Y-%m-%d}" if last.date() == start_dt.date()
                else f"{start_dt:%Y-%m-%d} – {last:%Y-%m-%d}")
    return f"{start_dt:%Y-%m-%d %H:%M} – {end_dt:%Y-%m-%d %H:%M}"


def report_view(row: dict, tz: str) -> dict[str, Any]:
    return {
        **row, "title": type_title(row["report_type"]), "period": period_text(row, tz),
        "created": fmt_dt(row["created_at"], tz), "completed": fmt_dt(row["completed_at"], tz),
        "expires": fmt_dt(row["expires_at"], tz), "data_as_of": fmt_dt(row["data_version"], tz),
        "active": row["status"] in ACTIVE,
        "cancelable": row["status"] in ACTIVE, "downloadable": row["status"] == "completed",
    }


def render(request: Request, template: str, principal: Principal | None, status_code: int = 200,
           **context) -> HTMLResponse:
    settings = settings_of(request)
    unread = 0
    if principal is not None and not principal.embedded:
        unread = notifications.count_unread(principal.account_id, settings=settings)
    return TEMPLATES.TemplateResponse(request, template, {
        "me": principal, "unread": unread, "path": request.url.path, **context},
        status_code=status_code)


def error_field(exc: ReportingError) -> str:
    """The form field an engine error names ("parameters.interval_end" -> "interval_end")."""
    param = exc.param or ""
    name = param.removeprefix("parameters.").split("[")[0]
    return {"relative_range": "period", "relative_date_range": "period",
            "account.timezone": "timezone"}.get(name, name) or "form"


def _get_report(principal: Principal, report_id: str, settings: Settings) -> dict:
    try:
        return store.get(report_id, principal.account_id, settings)
    except NotFound:
        raise web_auth.PageNotFound() from None


# ------------------------------------------------------------------------------ sign in / out

@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/reports", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/reports", ended: str = "") -> HTMLResponse:
    notice = ("Your session has ended (you signed out elsewhere, it expired, or an admin changed "
              "your user). Sign in again to continue.") if ended else None
    return _login_form(request, next=next, notice=notice)


def _login_form(request: Request, *, next: str, email: str = "", error: str | None = None,
                notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    import secrets

    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status_code=status_code, csrf=csrf,
                      next=_safe_next(next), email=email, error=error, notice=notice)
    response.set_cookie(web_auth.LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="lax",
                        secure=settings_of(request).secure_cookies, path="/login", max_age=3600)
    return response


def _safe_next(target: str) -> str:
    """Only same-site paths: never a redirect to another host after sign-in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/reports"
    return target


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_path = _safe_next(str(form.get("next", "/reports")))
    cookie = request.cookies.get(web_auth.LOGIN_CSRF_COOKIE, "")
    if not cookie or cookie != form.get("csrf_token"):
        return _login_form(request, next=next_path, email=email, status_code=400,
                           error="The sign-in form expired; please try again.")
    settings = settings_of(request)
    try:
        user = await run_in_threadpool(users.authenticate, email, password, web_auth.client_ip(request),
                                       settings=settings)
    except RateLimited as exc:
        response = _login_form(request, next=next_path, email=email, error=exc.message, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except users.UserDisabled as exc:
        return _login_form(request, next=next_path, email=email, error=exc.message, status_code=403)
    if user is None:
        return _login_form(request, next=next_path, email=email, status_code=401,
                           error="That email and password do not match.")
    token, session = await run_in_threadpool(users.start_session, user, settings=settings)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(web_auth.SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=settings.secure_cookies, path="/",
                        max_age=int(users.SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(web_auth.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, submitted=Depends(web_auth.app_form)) -> RedirectResponse:
    await run_in_threadpool(users.end_session, request.cookies.get(web_auth.SESSION_COOKIE, ""),
                            settings=settings_of(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(web_auth.SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------------ reports

def _list_context(principal: Principal, settings: Settings, report_type: str, status: str,
                  within: str, before: str | None) -> dict[str, Any]:
    tz = account_tz(principal.account_id, settings)
    created_gte = None
    if within in ("1", "7", "30"):
        today = datetime.now(ZoneInfo(tz)).date()
        from exports.reports.relative import local_midnight

        created_gte = local_midnight(today - timedelta(days=int(within) - (0 if within == "1" else 1)),
                                     ZoneInfo(tz))
    try:
        rows, has_more = store.list_requests(
            principal.account_id, limit=25, starting_after=before or None, status=status or None,
            report_type=report_type or None, created_gte=created_gte, settings=settings)
    except InvalidParameter:
        rows, has_more = [], False
    views = [report_view(r, tz) for r in rows]
    return {"reports": views, "has_more": has_more, "tz": tz,
            "prefix": "/embed/reports" if principal.embedded else "/reports",
            "any_active": any(v["active"] for v in views),
            "filters": {"type": report_type, "status": status, "within": within},
            "report_types": REPORT_TYPES.values(), "statuses": store.STATUSES,
            "within_options": REQUESTED_WITHIN}


def _register_report_pages(prefix: str, principal_dep: Callable, form_dep: Callable) -> None:
    who = Depends(principal_dep)  # a default, not an annotation: this module's annotations are strings

    @router.get(prefix)
    def reports_page(request: Request, me: Principal = who, type: str = "", status: str = "", within: str = "",
                     before: str | None = None) -> HTMLResponse:
        settings = settings_of(request)
        me.require("reports.view", "see reports")
        context = _list_context(me, settings, type, status, within, before)
        template = "reports_table.html" if request.headers.get("hx-request") else "reports.html"
        return render(request, template, me, **context)

    @router.get(prefix + "/new")
    def new_report_page(request: Request, me: Principal = who, report_type: str = "balance.summary",
                        again: str | None = None) -> HTMLResponse:
        me.require("reports.request", "request reports")
        settings = settings_of(request)
        values: dict[str, Any] = {"report_type": report_type if report_type in REPORT_TYPES
                                  else "balance.summary", "period": "last_month", "format": "csv"}
        if again:
            values.update(_values_from_report(_get_report(me, again, settings)))
        return render(request, "new_report.html", me, **_new_report_context(me, settings, values, {}))

    @router.get(prefix + "/new/fields")
    def new_report_fields(request: Request, me: Principal = who) -> HTMLResponse:
        """htmx: the type-specific part of the form (columns, filters, period check)."""
        me.require("reports.request", "request reports")
        settings = settings_of(request)
        values = _form_values(request.query_params)
        _drop_other_types_choices(values, request.query_params)
        context = _new_report_context(me, settings, values, {})
        return render(request, "new_report_fields.html", me, **context)

    @router.post(prefix + "/new")
    def create_report(request: Request, submitted=Depends(form_dep)) -> Response:
        me, form = submitted
        me.require("reports.request", "request reports")
        settings = settings_of(request)
        values = _form_values(form)
        if _drop_other_types_choices(values, form):  # sent before the new type's fields arrived
            title = type_title(values["report_type"])
            return render(request, "new_report.html", me, status_code=400, **_new_report_context(
                me, settings, values, {"form": f"The columns and filters below are now those of "
                                               f"{title}; check them and request the report again."}))
        try:
            row = _create_request(me, values, settings)
        except ReportingError as exc:
            errors = {error_field(exc): exc.message}
            return render(request, "new_report.html", me, status_code=400,
                          **_new_report_context(me, settings, values, errors))
        return RedirectResponse(me.url(f"{prefix}/{row['id']}"), status_code=303)

    @router.get(prefix + "/{report_id}")
    def report_page(request: Request, report_id: str, me: Principal = who) -> HTMLResponse:
        me.require("reports.view", "see reports")
        settings = settings_of(request)
        row = _get_report(me, report_id, settings)
        tz = account_tz(me.account_id, settings)
        context: dict[str, Any] = {"report": report_view(row, tz), "tz": tz, "prefix": prefix}
        if request.headers.get("hx-request"):
            if not context["report"]["active"]:  # finished: reload for the figures and actions
                return Response(status_code=200, headers={"HX-Refresh": "true"})
            return render(request, "report_status.html", me, **context)
        from api.web.summary import load_figures

        context["figures"] = load_figures(row, settings)
        context["is_summary"] = get_report_type(row["report_type"]).shape == "summary"
        context["deliveries"] = [] if me.embedded else [
            {**dispatch.delivery_to_api(d), "at": fmt_dt(d["created_at"], tz)}
            for d in dispatch.list_deliveries(report_id, me.account_id, settings)]
        return render(request, "report.html", me, **context)

    @router.get(prefix + "/{report_id}/download")
    def download(request: Request, report_id: str, me: Principal = who) -> Response:
        me.require("reports.view", "download reports")
        settings = settings_of(request)
        row = _get_report(me, report_id, settings)
        if row["status"] != "completed" or not row["file_key"]:
            why = ("its file was deleted when it expired; run it again" if row["status"] == "expired"
                   else f"it is {row['status']}")
            return render(request, "message.html", me, status_code=409, title="No file to download",
                          message=f"Report {report_id} has no file: {why}.")
        filename = row["file_key"].rsplit("/", 1)[-1]
        url = get_storage(settings).download_url(row["file_key"], settings.download_url_ttl_seconds,
                                                 filename)
        return RedirectResponse(url, status_code=303)

    @router.post(prefix + "/{report_id}/cancel")
    def cancel(request: Request, report_id: str, submitted=Depends(form_dep)) -> Response:
        me, _form = submitted
        me.require("reports.request", "cancel reports")
        settings = settings_of(request)
        try:
            store.cancel(report_id, me.account_id, settings)
        except NotFound:
            raise web_auth.PageNotFound() from None
        except InvalidParameter as exc:
            return render(request, "message.html", me, status_code=409, title="Cannot cancel",
                          message=exc.message)
        return RedirectResponse(me.url(f"{prefix}/{report_id}"), status_code=303)


def _form_values(form) -> dict[str, Any]:
    values = {k: str(form.get(k, "") or "").strip() for k in (
        "report_type", "format", "period", "timezone", "interval_start", "interval_end",
        "currency", "payout", "customer", "email_to", "webhook_url", "timestamp_format", "locale")}
    values["csv_bom"] = str(form.get("csv_bom", "") or "") == "true"
    values["columns"] = [c for c in form.getlist("columns") if c]
    values["reporting_category"] = [c for c in form.getlist("reporting_category") if c]
    values["status"] = [c for c in form.getlist("status") if c]
    if values["report_type"] not in REPORT_TYPES:
        values["report_type"] = values["report_type"] or "balance.summary"
    return values


def _drop_other_types_choices(values: dict[str, Any], form) -> bool:
    """Columns and filters are the type's own: when the form's were drawn for another type (the
    `fields_for` it carries), they are dropped so the new type's defaults apply. Checked on the
    server, so a quick click that overtakes the fields' refresh cannot mix two types' choices."""
    drawn_for = str(form.get("fields_for") or "")
    if not drawn_for or drawn_for == values["report_type"]:
        return False
    values.update(columns=[], reporting_category=[], status=[], currency="", payout="", customer="")
    return True


def _values_from_report(row: dict) -> dict[str, Any]:
    """The form values that ask for the same report again ("Run again")."""
    params = dict(row["parameters"] or {})
    params.update(params.pop("filters", None) or {})
    values: dict[str, Any] = {"report_type": get_report_type(row["report_type"]).id,
                              "format": row["format"], "timezone": params.get("timezone", ""),
                              "columns": params.get("columns") or [],
                              "email_to": ", ".join(row.get("email_recipients") or []),
                              "webhook_url": row.get("webhook_url") or ""}
    if params.get("relative_range"):
        values["period"] = params["relative_range"]
    else:
        values["period"] = "custom"
        for key in ("interval_start", "interval_end"):
            if params.get(key) is not None:
                values[key] = _date_text(params[key], key, values["timezone"] or None)
    for name in ("currency", "payout", "customer", "timestamp_format", "locale"):
        if params.get(name):
            values[name] = params[name]
    values["csv_bom"] = params.get("csv_bom") is True
    for name in ("reporting_category", "status"):
        value = params.get(name)
        if value:
            values[name] = value if isinstance(value, list) else [value]
    return values


def _date_text(value: Any, key: str, tz: str | None) -> str:
    """A stored interval bound as the form's date field shows it (end dates are inclusive)."""
    from exports.reports.params import parse_instant

    try:
        instant = parse_instant(value, key, tz or "UTC").astimezone(ZoneInfo(tz or "UTC"))
    except InvalidParameter:
        return str(value)
    day = instant.date() - timedelta(days=1) if key == "interval_end" else instant.date()
    return day.isoformat()


def _check_custom_dates(values: dict[str, Any]) -> None:
    """The form's dates in its own words: the engine would describe the (exclusive) end it was
    given, a day after the inclusive date the user typed."""
    if values.get("period") != "custom":
        return
    try:
        first = date.fromisoformat(values.get("interval_start") or "")
        last = date.fromisoformat(values.get("interval_end") or "")
    except ValueError:
        return  # missing or unreadable: the engine's message names the field
    if last < first:
        raise InvalidParameter(f"The last day ({last:%d %b %Y}) is before the first day "
                               f"({first:%d %b %Y}).", param="parameters.interval_end")


def _parameters(values: dict[str, Any], tz: str) -> dict[str, Any]:
    report = get_report_type(values["report_type"])
    if report.interval != "end_only":
        _check_custom_dates(values)
    params: dict[str, Any] = {"timezone": tz}
    if values.get("period") == "custom":
        if report.interval != "end_only" and values.get("interval_start"):
            params["interval_start"] = values["interval_start"]
        if values.get("interval_end"):
            params["interval_end"] = _exclusive_end(values["interval_end"])
    elif values.get("period"):
        params["relative_range"] = values["period"]
    if values.get("columns"):
        params["columns"] = values["columns"]
    for name in sorted(report.filters):
        value = values.get(name)
        if value:
            params[name] = value
    # File options, only those of the chosen format (the engine refuses the others).
    fmt = values.get("format") or "csv"
    if fmt in OPTION_FORMATS["csv_bom"] and values.get("csv_bom"):
        params["csv_bom"] = True
    for name in ("timestamp_format", "locale"):
        if fmt in OPTION_FORMATS[name] and values.get(name):
            params[name] = values[name]
    return params


def _exclusive_end(text: str) -> str:
    """The form's "to" date is inclusive (through the end of that day); the engine's
    interval_end is exclusive, so it gets the next day's midnight."""
    try:
        return (date.fromisoformat(text) + timedelta(days=1)).isoformat()
    except ValueError:
        return text  # the engine's validation names the field


def _create_request(me: Principal, values: dict[str, Any], settings: Settings) -> dict:
    """POST /v1/reports' own code path (api.routes.reports.submit_report): the same delivery
    checks, rate limit, validation, cap and store calls."""
    from api.routes.reports import submit_report

    tz = values.get("timezone") or account_tz(me.account_id, settings)
    parameters = _parameters(values, tz)
    delivery = {}
    if not me.embedded:  # the embedded view requests and downloads; delivery stays the platform's
        recipients = split_addresses(values.get("email_to", ""))
        delivery = {"email_to": recipients or None, "webhook_url": values.get("webhook_url") or None}
    return submit_report(me.account_id, get_report_type(values["report_type"]).id, parameters,
                         values.get("format") or "csv", settings, requested_by=me.requested_by,
                         **delivery)


def split_addresses(text: str) -> list[str]:
    """Addresses typed into one field, separated by commas, semicolons or new lines."""
    return [a.strip() for a in re.split(r"[,;\n]", text or "") if a.strip()]


def _new_report_context(me: Principal, settings: Settings, values: dict[str, Any],
                        errors: dict[str, str]) -> dict[str, Any]:
    from exports.reports.engine import validate_report_request
    from exports.replication import data_available_end

    try:
        report = get_report_type(values.get("report_type") or "balance.summary")
    except InvalidParameter:  # reported on the field by the caller; show the form for a known type
        report = get_report_type("balance.summary")
    values["report_type"] = report.id
    home_tz = account_tz(me.account_id, settings)
    tz = values.get("timezone") or home_tz
    if tz not in _known_timezones():  # named on the field; times on the page stay readable
        errors = errors or {"timezone": f"{tz!r} is not a time zone we know; use an IANA name "
                                        "such as 'Europe/Berlin'."}
        tz = home_tz
    values.setdefault("period", "last_month")
    values["format"] = values.get("format") or "csv"
    if not values.get("columns"):
        values["columns"] = report.default_columns
    chosen = [c for c in values["columns"] if c in report.column_names]
    columns = ([report.column(c) for c in chosen]
               + [c for c in report.columns if c.name not in chosen])
    available = data_available_end(settings)
    now = datetime.now(UTC)
    # The period as the engine will read it, checked now so a period past the available data
    # is explained before submitting (same validation as on submit).
    preview = None
    check = None
    if not errors:
        try:
            validated = validate_report_request(me.account_id, report.id, _parameters(values, tz),
                                                values["format"], settings=settings,
                                                account_timezone=home_tz, data_available_end=available)
            preview = describe_interval(validated.interval_start, validated.interval_end, tz)
        except ReportingError as exc:
            check = {"field": error_field(exc), "message": exc.message}
    presets = []
    for key, label in PERIOD_PRESETS:
        span = ""
        if key != "custom":
            try:
                start, end = resolve_relative_range(key, tz, now)
                span = describe_interval(None if report.interval == "end_only" else start, end, tz)
            except Exception:  # noqa: BLE001 — an unknown timezone is reported on the field
                span = ""
        presets.append({"key": key, "label": label, "span": span})
    return {
        "values": values, "errors": errors, "check": check, "preview": preview,
        "report": report, "report_types": list(REPORT_TYPES.values()), "columns": columns,
        "chosen": set(chosen), "presets": presets, "formats": FORMATS, "format_labels": FORMAT_LABELS,
        "filter_labels": FILTER_LABELS, "tz": tz, "home_tz": home_tz,
        "timestamp_formats": TIMESTAMP_FORMAT_LABELS,
        "timezones": sorted(available_timezones()),
        "available": fmt_dt(available, tz, with_zone=True) if available else None,
        "prefix": "/embed/reports" if me.embedded else "/reports",
    }


def _known_timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones()) | {"UTC"}
    return _TIMEZONES


_TIMEZONES: frozenset[str] | None = None


_register_report_pages("/reports", signed_in_user, web_auth.app_form)
_register_report_pages("/embed/reports", embedded_session, web_auth.embed_form)


# ---------------------------------------------------------------------------------- schedules

def _next_runs(row: dict, count: int = 5, with_zone: bool = True) -> list[str]:
    if not row["schedule_enabled"] or not row["schedule_cron"]:
        return []
    now = datetime.now(UTC)
    runs = due_times_between(row["schedule_cron"], row["timezone"], now, now + timedelta(days=800),
                             limit=count)
    zone = ZoneInfo(row["timezone"])
    suffix = f" {row['timezone']}" if with_zone else ""
    return [f"{r.astimezone(zone):%a %d %b %Y %H:%M}{suffix}" for r in runs]


def _schedule_view(row: dict, tz: str) -> dict[str, Any]:
    return {**row, "title": type_title(row["report_type"]),
            "schedule_text": (describe_cron(row["schedule_cron"], row["timezone"])
                              if row["schedule_cron"] else "not scheduled (run on demand)"),
            "range_text": dict(SCHEDULE_RANGES).get(row["relative_range"] or "", row["relative_range"] or "—"),
            "next_runs": _next_runs(row), "paused": not row["schedule_enabled"]}


@router.get("/schedules")
def schedules_page(request: Request, me: AppUser) -> HTMLResponse:
    settings = settings_of(request)
    tz = account_tz(me.account_id, settings)
    rows = templates_core.list_templates(me.account_id, settings=settings)
    return render(request, "schedules.html", me, schedules=[_schedule_view(r, tz) for r in rows])


CRON_PRESETS = (("daily", "Every day"), ("weekdays", "Every weekday (Mon–Fri)"),
                ("weekly", "Every Monday"), ("monthly", "Every month on the 1st"),
                ("custom", "Custom cron expression"))


def _cron_from_form(form) -> str:
    preset = str(form.get("frequency", "monthly"))
    hour, _, minute = str(form.get("time", "06:00") or "06:00").partition(":")
    try:
        h, m = int(hour), int(minute or 0)
    except ValueError:
        raise InvalidParameter("Give the time as HH:MM, e.g. 06:00", param="time") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise InvalidParameter("Give the time as HH:MM, e.g. 06:00", param="time")
    return {"daily": f"{m} {h} * * *", "weekdays": f"{m} {h} * * 1-5", "weekly": f"{m} {h} * * 1",
            "monthly": f"{m} {h} 1 * *"}.get(preset) or str(form.get("cron", "")).strip()


def _schedule_form_context(me: Principal, settings: Settings, values: dict, errors: dict) -> dict:
    return {"values": values, "errors": errors, "report_types": list(REPORT_TYPES.values()),
            "formats": FORMATS, "format_labels": FORMAT_LABELS, "ranges": SCHEDULE_RANGES,
            "cron_presets": CRON_PRESETS, "timezones": sorted(available_timezones()),
            "tz": values.get("timezone") or account_tz(me.account_id, settings)}


@router.get("/schedules/new")
def new_schedule_page(request: Request, me: AppUser) -> HTMLResponse:
    me.require("schedules.manage", "manage schedules")
    settings = settings_of(request)
    values = {"report_type": "balance.summary", "format": "pdf", "relative_range": "last_month",
              "frequency": "monthly", "time": "06:00", "timezone": account_tz(me.account_id, settings)}
    return render(request, "schedule_new.html", me, **_schedule_form_context(me, settings, values, {}))


@router.get("/schedules/preview")
def schedule_preview(request: Request, me: AppUser) -> HTMLResponse:
    """htmx: the schedule being typed, in words, with its next five runs."""
    form = request.query_params
    timezone = str(form.get("timezone") or account_tz(me.account_id, settings_of(request)))
    try:
        cron = templates_core.validate_cron(_cron_from_form(form))
        templates_core.validate_timezone(timezone)
        row = {"schedule_enabled": True, "schedule_cron": cron, "timezone": timezone}
        return render(request, "schedule_preview.html", me, text=describe_cron(cron, timezone),
                      runs=_next_runs(row, with_zone=False), timezone=timezone, error=None)
    except InvalidParameter as exc:
        return render(request, "schedule_preview.html", me, text=None, runs=[], error=exc.message)


@router.post("/schedules/new")
def create_schedule(request: Request, submitted=Depends(web_auth.app_form)) -> Response:
    me, form = submitted
    me.require("schedules.manage", "manage schedules")
    settings = settings_of(request)
    values = {k: str(form.get(k, "") or "").strip() for k in (
        "name", "report_type", "format", "relative_range", "frequency", "time", "cron", "timezone",
        "email_recipients", "webhook_url")}
    try:
        cron = _cron_from_form(form)
        recipients = split_addresses(values["email_recipients"])
        row = templates_core.create_template(me.account_id, {
            "name": values["name"], "report_type": values["report_type"], "format": values["format"],
            "relative_range": values["relative_range"] or None, "schedule_cron": cron,
            "timezone": values["timezone"] or account_tz(me.account_id, settings),
            "schedule_enabled": True, "email_recipients": recipients,
            "webhook_url": values["webhook_url"] or None}, settings=settings, created_by=me.email)
    except ReportingError as exc:
        field = {"schedule_cron": "cron"}.get(exc.param or "", error_field(exc))
        if field.startswith("email_recipients"):
            field = "email_recipients"
        return render(request, "schedule_new.html", me, status_code=400,
                      **_schedule_form_context(me, settings, values, {field: exc.message}))
    return RedirectResponse(f"/schedules/{row['id']}", status_code=303)


def _get_schedule(me: Principal, schedule_id: str, settings: Settings) -> dict:
    try:
        return templates_core.get_template(schedule_id, me.account_id, settings=settings)
    except NotFound:
        raise web_auth.PageNotFound() from None


def _schedule_page(request: Request, me: Principal, row: dict, status_code: int = 200,
                   errors: dict | None = None, values: dict | None = None) -> HTMLResponse:
    settings = settings_of(request)
    tz = account_tz(me.account_id, settings)
    runs, _ = store.list_requests(me.account_id, limit=20, template_id=row["id"], settings=settings)
    values = values or {"email_recipients": ", ".join(row["email_recipients"] or []),
                        "webhook_url": row["webhook_url"] or ""}
    return render(request, "schedule.html", me, status_code=status_code,
                  schedule=_schedule_view(row, tz), runs=[report_view(r, tz) for r in runs], tz=tz,
                  errors=errors or {}, values=values)


@router.get("/schedules/{schedule_id}")
def schedule_page(request: Request, me: AppUser, schedule_id: str) -> HTMLResponse:
    return _schedule_page(request, me, _get_schedule(me, schedule_id, settings_of(request)))


@router.post("/schedules/{schedule_id}/{action}")
def schedule_action(request: Request, schedule_id: str, action: str,
                    submitted=Depends(web_auth.app_form)) -> Response:
    me, form = submitted
    me.require("schedules.manage", "manage schedules")
    settings = settings_of(request)
    row = _get_schedule(me, schedule_id, settings)
    if action == "delivery":  # recipients and webhook, checked as the API checks them
        values = {k: str(form.get(k, "") or "").strip() for k in ("email_recipients", "webhook_url")}
        try:
            templates_core.update_template(schedule_id, me.account_id, {
                "email_recipients": split_addresses(values["email_recipients"]),
                "webhook_url": values["webhook_url"] or None}, settings=settings)
        except ReportingError as exc:
            field = "webhook_url" if (exc.param or "").startswith("webhook_url") else "email_recipients"
            return _schedule_page(request, me, row, 400, {field: exc.message}, values)
    elif action in ("pause", "resume"):
        templates_core.update_template(schedule_id, me.account_id,
                                       {"schedule_enabled": action == "resume"}, settings=settings)
    elif action == "delete":
        templates_core.delete_template(schedule_id, me.account_id, settings=settings)
        return RedirectResponse("/schedules", status_code=303)
    else:
        raise web_auth.PageNotFound()
    return RedirectResponse(f"/schedules/{schedule_id}", status_code=303)


# ------------------------------------------------------------------------------ notifications

@router.get("/notifications")
def notifications_page(request: Request, me: AppUser) -> HTMLResponse:
    settings = settings_of(request)
    tz = account_tz(me.account_id, settings)
    rows = notifications.list_notifications(me.account_id, limit=50, settings=settings)
    return render(request, "notifications.html", me,
                  notes=[{**r, "at": fmt_dt(r["created_at"], tz)} for r in rows])


@router.post("/notifications/{notification_id}/read")
def read_notification(request: Request, notification_id: str,
                      submitted=Depends(web_auth.app_form)) -> Response:
    me, _form = submitted
    row = notifications.mark_read(me.account_id, notification_id, settings=settings_of(request))
    if row is None:
        raise web_auth.PageNotFound()
    target = f"/reports/{row['request_id']}" if row["request_id"] else "/notifications"
    return RedirectResponse(target, status_code=303)


# ----------------------------------------------------------------------------------- webhooks

@router.get("/webhooks")
def webhooks_page(request: Request, me: AppUser) -> HTMLResponse:
    me.require("webhooks.manage", "manage webhooks")
    settings = settings_of(request)
    tz = account_tz(me.account_id, settings)
    log = dispatch.list_account_deliveries(me.account_id, channel="webhook", limit=50, settings=settings)
    endpoints = sorted({t["webhook_url"] for t in templates_core.list_templates(me.account_id, settings=settings)
                        if t["webhook_url"]} | {d["target"] for d in log})
    return render(request, "webhooks.html", me, endpoints=endpoints,
                  deliveries=[{**dispatch.delivery_to_api(d), "at": fmt_dt(d["created_at"], tz),
                               "next_at": fmt_dt(d["next_attempt_at"], tz) if d["status"] == "pending"
                               and d["next_attempt_at"] else None,
                               "attempt_rows": [{**a, "at": fmt_dt(a["at"], tz)} for a in d["attempts"]]}
                              for d in log])


@router.get("/webhooks/secret")
def reveal_secret(request: Request, me: AppUser) -> HTMLResponse:
    me.require("webhooks.manage", "see the webhook secret")
    secret = webhooks.webhook_secret(me.account_id, settings_of(request))
    return render(request, "webhook_secret.html", me, secret=secret)


@router.post("/webhooks/secret/rotate")
def rotate_secret(request: Request, submitted=Depends(web_auth.app_form)) -> HTMLResponse:
    me, _form = submitted
    me.require("webhooks.manage", "rotate the webhook secret")
    secret = webhooks.webhook_secret(me.account_id, settings_of(request), rotate=True)
    return render(request, "webhook_secret.html", me, secret=secret, rotated=True)


# ----------------------------------------------------------------------------------- API keys

def _keys_context(me: Principal, settings: Settings, **extra) -> dict[str, Any]:
    tz = account_tz(me.account_id, settings)
    keys = [{**k, "created": fmt_dt(k["created_at"], tz), "last_used": fmt_dt(k["last_used_at"], tz),
             "revoked": fmt_dt(k["revoked_at"], tz) if k["revoked_at"] else None}
            for k in store.list_api_keys(me.account_id, settings)]
    return {"keys": keys, "scopes": SCOPES, "errors": {}, "chosen_scopes": [], **extra}


@router.get("/keys")
def keys_page(request: Request, me: AppUser) -> HTMLResponse:
    me.require("keys.manage", "manage API keys")
    return render(request, "keys.html", me, **_keys_context(me, settings_of(request)))


@router.post("/keys")
def create_key(request: Request, submitted=Depends(web_auth.app_form)) -> HTMLResponse:
    me, form = submitted
    me.require("keys.manage", "manage API keys")
    settings = settings_of(request)
    name = str(form.get("name", "")).strip()[:100]
    restricted = form.get("kind") == "restricted"
    ticked = list(form.getlist("scopes"))
    try:
        if ticked and not restricted:  # never a standard key when limits were asked for
            raise InvalidParameter("Scopes are ticked but the access is Standard (everything): choose "
                                   "Restricted to limit the key to the ticked scopes.", param="scopes")
        scopes = validate_scopes(ticked) if restricted else None
    except InvalidParameter as exc:
        return render(request, "keys.html", me, status_code=400,
                      **_keys_context(me, settings, errors={"scopes": exc.message}, name=name,
                                      chosen_scopes=ticked))
    secret, row = store.create_api_key(me.account_id, name, settings, scopes=scopes, created_by=me.email)
    return render(request, "keys.html", me, **_keys_context(me, settings, new_secret=secret, new_key=row))


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: str, submitted=Depends(web_auth.app_form)) -> Response:
    me, _form = submitted
    me.require("keys.manage", "manage API keys")
    if not store.revoke_api_key(key_id, settings_of(request), account_id=me.account_id):
        raise web_auth.PageNotFound("No such active key in your account.")
    return RedirectResponse("/keys", status_code=303)


# -------------------------------------------------------------------------------------- users

@router.get("/users")
def users_page(request: Request, me: AppUser) -> HTMLResponse:
    me.require("users.manage", "manage users")
    return render(request, "users.html", me, **_users_context(me, settings_of(request), {}, {}))


def _users_context(me: Principal, settings: Settings, values: dict, errors: dict) -> dict:
    tz = account_tz(me.account_id, settings)
    rows = [{**u, "last": fmt_dt(u["last_sign_in_at"], tz),
             "disabled": fmt_dt(u["disabled_at"], tz) if u["disabled_at"] else None,
             "is_me": u["id"] == me.user_id}
            for u in users.list_users(me.account_id, settings=settings)]
    changes = [{**c, "when": fmt_dt(c["at"], tz), "text": _change_text(c)}
               for c in users.list_changes(me.account_id, limit=30, settings=settings)]
    return {"people": rows, "roles": users.ROLES, "values": values, "errors": errors,
            "min_password": users.MIN_PASSWORD_LENGTH, "changes": changes, "tz": tz}


def _change_text(change: dict) -> str:
    return {"created": f"added as {change['new_value']}",
            "role": f"role {change['old_value']} → {change['new_value']}",
            "disabled": "disabled (signed out everywhere)", "enabled": "enabled again"}[change["change"]]


@router.post("/users")
def create_user(request: Request, submitted=Depends(web_auth.app_form)) -> Response:
    me, form = submitted
    me.require("users.manage", "manage users")
    settings = settings_of(request)
    values = {k: str(form.get(k, "")).strip() for k in ("email", "role")}
    try:
        users.create_user(me.account_id, values["email"], values["role"], str(form.get("password", "")),
                          created_by=me.email, settings=settings)
    except InvalidParameter as exc:
        return render(request, "users.html", me, status_code=400,
                      **_users_context(me, settings, values, {exc.param or "email": exc.message}))
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{user_id}/{action}")
def change_user(request: Request, user_id: str, action: str,
                submitted=Depends(web_auth.app_form)) -> Response:
    """Change a user's role, disable or re-enable them. The account keeps at least one active
    admin (an error shown next to that user); the change is recorded with who made it."""
    me, form = submitted
    me.require("users.manage", "manage users")
    settings = settings_of(request)
    try:
        if action == "role":
            changed = users.change_role(me.account_id, user_id, str(form.get("role", "")),
                                        changed_by=me.email, settings=settings)
        elif action in ("disable", "enable"):
            changed = users.set_disabled(me.account_id, user_id, action == "disable",
                                         changed_by=me.email, settings=settings)
        else:
            raise web_auth.PageNotFound()
    except InvalidParameter as exc:
        return render(request, "users.html", me, status_code=400,
                      **_users_context(me, settings, {}, {f"user-{user_id}": exc.message}))
    if changed is None:
        raise web_auth.PageNotFound("No such user in your account.")
    if changed["id"] == me.user_id and (changed["disabled_at"] or changed["role"] != "admin"):
        # No longer allowed here: signed out (disabled) or sent to a page they may still see.
        return RedirectResponse("/login" if changed["disabled_at"] else "/reports", status_code=303)
    return RedirectResponse("/users", status_code=303)
