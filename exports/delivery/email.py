"""Report emails over SMTP (settings.smtp_*; STARTTLS, implicit TLS and credentials optional).

A finished report gets an HTML + plain-text message with its name, period, row count and totals
per currency (from the manifest), and the file attached when it is at most
settings.email_attachment_max_bytes — otherwise a signed download link and its expiry. A failed
report gets a failure notice with the reason. There is never an empty email.
"""

from __future__ import annotations

import contextvars
import smtplib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from exports.money import exponent_of, format_minor
from exports.reports.relative import describe_interval
from exports.settings import Settings
from exports.storage import CONTENT_TYPES, get_storage

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    keep_trailing_newline=True,
)
# S3 presigned URLs cannot live longer than 7 days.
MAX_LINK_TTL_SECONDS = 7 * 24 * 3600 - 60


class PermanentDeliveryError(Exception):
    """Retrying cannot help (e.g. the server refused the recipient address)."""


def report_period(report: dict[str, Any]) -> str:
    """The period a report covers: as the engine resolved it (the manifest's interval, so
    "last_month" reads as its dates), else as it was asked."""
    extra = (report.get("manifest") or {}).get("extra") or {}
    parameters = report.get("parameters") or {}
    if extra.get("interval_end"):
        start = extra.get("interval_start")
        return describe_interval(datetime.fromisoformat(start) if start else None,
                                 datetime.fromisoformat(extra["interval_end"]),
                                 extra.get("timezone") or parameters.get("timezone") or "UTC")
    if parameters.get("relative_range"):
        return str(parameters["relative_range"]).replace("_", " ")
    start, end = parameters.get("interval_start"), parameters.get("interval_end")
    if not start and not end:
        return "all time"
    return f"{start or '…'} to {end or '…'} (end exclusive)"


def totals_lines(manifest: dict[str, Any] | None) -> list[dict[str, str]]:
    lines = []
    for column, by_currency in sorted(((manifest or {}).get("totals_minor") or {}).items()):
        for currency, minor in sorted(by_currency.items()):
            lines.append({"column": column, "currency": currency.upper(),
                          "amount": format_minor(int(minor), exponent_of(currency))})
    return lines


def _file_name(report: dict[str, Any]) -> str:
    manifest_name = (report.get("manifest") or {}).get("file_name")
    return manifest_name or report["file_key"].rsplit("/", 1)[-1]


def _link_ttl(report: dict[str, Any], settings: Settings) -> int:
    """Links in emails live as long as the file does (bounded by what S3 can presign)."""
    expires_at = report.get("expires_at")
    if expires_at is None:
        return settings.download_url_ttl_seconds
    remaining = int(expires_at.timestamp() - time.time())
    return max(60, min(remaining, MAX_LINK_TTL_SECONDS))


def build_message(report: dict[str, Any], event: str, *, to: str, report_name: str,
                  settings: Settings) -> EmailMessage:
    context: dict[str, Any] = {
        "report_name": report_name, "report_type": report["report_type"], "report_id": report["id"],
        "period": report_period(report), "format": report["format"],
    }
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.email_from.rpartition("@")[2] or None)
    message["X-Payreports-Report-Id"] = report["id"]
    attachment: bytes | None = None
    if event == "report.failed":
        message["Subject"] = f"Report failed: {report_name}"
        context["reason"] = report.get("error_message") or "The report could not be generated."
        kind = "report_failed"
    else:
        message["Subject"] = f"Your report is ready: {report_name}"
        size = int(report.get("file_size_bytes") or 0)
        storage = get_storage(settings)
        context.update(row_count=report.get("row_count"), totals=totals_lines(report.get("manifest")),
                       file_name=_file_name(report), file_size=size, sha256=report.get("sha256"),
                       attached=size <= settings.email_attachment_max_bytes)
        if context["attached"]:
            with storage.open(report["file_key"]) as handle:
                attachment = handle.read()
        else:
            ttl = _link_ttl(report, settings)
            context["download_url"] = storage.download_url(report["file_key"], ttl, context["file_name"])
            context["link_expires"] = datetime.fromtimestamp(time.time() + ttl, UTC).strftime(
                "%Y-%m-%d %H:%M UTC")
        kind = "report_succeeded"
    message.set_content(_templates.get_template(f"{kind}.txt.j2").render(context))
    message.add_alternative(_templates.get_template(f"{kind}.html.j2").render(context), subtype="html")
    if attachment is not None:
        content_type = CONTENT_TYPES.get(report["format"], "application/octet-stream")
        if context["file_name"].endswith(".gz"):
            content_type = CONTENT_TYPES["csv.gz"]
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(attachment, maintype=maintype, subtype=subtype,
                               filename=context["file_name"])
    return message


# Within `smtp_sessions()` (a run that sends many messages: a statement run sends three a pack)
# each thread keeps its SMTP connection for up to this many messages, instead of connect, TLS
# and login for every one; servers commonly cap messages per connection near 100.
MESSAGES_PER_CONNECTION = 50


def _connect(settings: Settings) -> smtplib.SMTP:
    timeout = settings.webhook_timeout_seconds
    if settings.smtp_ssl:
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        if settings.smtp_starttls and not settings.smtp_ssl:
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
    except BaseException:
        client.close()
        raise
    return client


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


class SmtpSessions:
    """One open SMTP connection per thread, with the number of messages it has carried."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._local = threading.local()
        self._open: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[smtplib.SMTP, bool]:
        """(this thread's connection, whether it was opened just now)."""
        current = getattr(self._local, "client", None)
        if current is not None and self._local.sent < MESSAGES_PER_CONNECTION:
            return current, False
        if current is not None:
            self.drop()
        client = _connect(self.settings)
        self._local.client, self._local.sent = client, 0
        with self._lock:
            self._open.append(client)
        return client, True

    def sent(self) -> None:
        self._local.sent += 1

    def drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._open:
                    self._open.remove(client)
            _quit(client)

    @contextmanager
    def active(self) -> Iterator[None]:
        """send_message in this block (and in threads running copies of its context) uses
        these sessions."""
        token = _sessions.set(self)
        try:
            yield
        finally:
            _sessions.reset(token)

    def close(self) -> None:
        with self._lock:
            clients, self._open = self._open, []
        for client in clients:
            _quit(client)


_sessions: contextvars.ContextVar[SmtpSessions | None] = contextvars.ContextVar("smtp_sessions",
                                                                                default=None)


@contextmanager
def smtp_sessions(settings: Settings) -> Iterator[SmtpSessions]:
    """Kept SMTP connections for the block (see SmtpSessions.active); closed at its end."""
    sessions = SmtpSessions(settings)
    try:
        with sessions.active():
            yield sessions
    finally:
        sessions.close()


def send_message(message: EmailMessage, settings: Settings) -> None:
    """Send over SMTP. Raises PermanentDeliveryError for refusals retrying cannot fix and other
    exceptions (OSError, smtplib.SMTPException) for transient trouble."""
    sessions = _sessions.get()
    if sessions is None:
        client = _connect(settings)
        try:
            _send_on(client, message)
        finally:
            _quit(client)
        return
    client, fresh = sessions.take()
    try:
        _send_on(client, message)
    except smtplib.SMTPServerDisconnected:
        # A kept connection the server closed while idle fails before the message is taken:
        # send it once on a new connection (one that was new already is a real failure).
        sessions.drop()
        if fresh:
            raise
        client, _ = sessions.take()
        try:
            _send_on(client, message)
        except BaseException:
            sessions.drop()
            raise
    except PermanentDeliveryError:
        sessions.sent()
        raise
    except BaseException:
        sessions.drop()  # the conversation's state is unknown: never reuse it
        raise
    sessions.sent()


def _send_on(client: smtplib.SMTP, message: EmailMessage) -> None:
    try:
        client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # smtplib has reset the transaction: the connection stays usable for the next message.
        raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentDeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise
