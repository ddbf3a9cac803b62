"""The webhook SSRF guard and secret rotation against real services: a receiver on 127.0.0.1 is
refused in production settings (at create, through the API, and at send time) and reached only
with the development setting; the connection is pinned to the checked address (DNS rebinding);
no redirect is followed, no response body or port state reaches the account; during a rotation
both secrets sign."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError

from exports import db
from exports.delivery import notify_report_finished, webhooks
from exports.delivery.dispatch import list_deliveries
from exports.settings import Settings, get_settings
from tests.fixtures.api import production_env, start_api, stop_api
from tests.fixtures.services import free_port
from tests.integration.test_delivery import completed_request

pytestmark = pytest.mark.integration

STRONG_SECRET = secrets.token_hex(32)


def new_account() -> str:
    return "acct_ssrf" + secrets.token_hex(4)


@pytest.fixture
def dev_settings(postgres, webhook_receiver) -> Settings:
    webhook_receiver.clear()
    settings = get_settings()
    assert settings.webhook_allow_private_targets  # the test session's development setting
    return settings


@pytest.fixture
def guarded_settings(dev_settings) -> Settings:
    return dev_settings.model_copy(update={"webhook_allow_private_targets": False})


def webhook_delivery(settings, report_id: str, account: str) -> dict:
    [webhook] = [d for d in list_deliveries(report_id, account, settings) if d["channel"] == "webhook"]
    return webhook


def test_loopback_receiver_is_refused_at_send_time_without_the_development_setting(
        guarded_settings, dev_settings, webhook_receiver, tmp_path):
    # Stored before the guard existed (or by a path that skipped it): the send-time check stops it.
    account = new_account()
    report = completed_request(guarded_settings, tmp_path, account, webhook_url=webhook_receiver.url("/ssrf"))
    notify_report_finished(report["id"], guarded_settings, now=datetime.now(UTC))
    assert webhook_receiver.received("/ssrf") == []
    webhook = webhook_delivery(guarded_settings, report["id"], account)
    assert webhook["status"] == "failed" and webhook["attempt_count"] == 1  # permanent: no retries
    assert webhook["last_error"].startswith("refused: ") and "public" in webhook["last_error"]

    account = new_account()
    report = completed_request(dev_settings, tmp_path, account, webhook_url=webhook_receiver.url("/dev"))
    notify_report_finished(report["id"], dev_settings, now=datetime.now(UTC))
    assert len(webhook_receiver.received("/dev")) == 1
    assert webhook_delivery(dev_settings, report["id"], account)["status"] == "sent"


def test_production_api_refuses_internal_webhook_urls_for_reports_and_templates(
        postgres, create_api_key, webhook_receiver, tmp_path):
    proc, base_url = start_api(production_env(postgres), str(tmp_path / "api.log"))
    try:
        headers = {"Authorization": f"Bearer {create_api_key(new_account())}"}
        report_body = {"report_type": "balance_change_from_activity.itemized", "format": "csv",
                       "parameters": {"interval_start": "2026-05-01", "interval_end": "2026-05-02"}}
        template_body = {"name": "t", "report_type": "balance_change_from_activity.itemized",
                         "format": "csv", "relative_range": "yesterday"}
        for url in (webhook_receiver.url("/prod"), "https://169.254.169.254/latest/meta-data/",
                    "https://0x7f000001/", "https://2130706433/", "https://[::1]/",
                    "https://[::ffff:127.0.0.1]/", "https://localhost/", "https://user@10.0.0.1/",
                    "https:///nohost"):
            for path, body in (("/v1/reports", report_body), ("/v1/report_templates", template_body)):
                response = httpx.post(f"{base_url}{path}", headers=headers, timeout=30,
                                      json={**body, "webhook_url": url})
                assert response.status_code == 400, (path, url, response.text)
                assert response.json()["error"]["param"] == "webhook_url", (path, url)
    finally:
        stop_api(proc)
    assert webhook_receiver.received("/prod") == []


def test_production_refuses_to_start_with_private_targets_allowed():
    with pytest.raises(ValidationError, match="PAYREPORTS_WEBHOOK_ALLOW_PRIVATE_TARGETS"):
        Settings(environment="production", signing_secret=STRONG_SECRET,
                 webhook_allow_private_targets=True,
                 **{f"{n}_database_url": f"postgresql://db/{n}" for n in ("source", "app", "dagster")})


def test_a_name_resolving_to_loopback_is_refused_and_connections_are_pinned(
        dev_settings, guarded_settings, webhook_receiver, monkeypatch):
    """A public-looking name that resolves to 127.0.0.1 is refused at send time. DNS rebinding:
    the name answers 127.0.0.1 for the check and something else afterwards; the POST goes to the
    checked address (one lookup), with the name as Host header."""
    real_getaddrinfo = socket.getaddrinfo
    calls: list[str] = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            calls.append(host)
            if len(calls) > 1:
                raise socket.gaierror("rebinding answer (must not be asked for)")
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    url = f"http://hooks.rebind.test:{webhook_receiver.port}/pinned"
    refused = webhooks.post_event(url, b"{}", "whsec_test", guarded_settings)
    assert (refused.ok, refused.permanent) == (False, True) and refused.error.startswith("refused")
    assert webhook_receiver.received("/pinned") == []
    calls.clear()
    result = webhooks.post_event(url, b"{}", "whsec_test", dev_settings)
    assert result.ok, result
    assert calls == ["hooks.rebind.test"]
    [hook] = webhook_receiver.received("/pinned")
    assert hook.headers["host"] == f"hooks.rebind.test:{webhook_receiver.port}"


class OneShotServer:
    """A TCP server answering every connection with `response` (or hanging when None)."""

    def __init__(self, response: bytes | None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.response = response
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.response is None:
                self.held.append(conn)  # accept and never answer
                continue
            conn.recv(65536)
            conn.sendall(self.response)
            conn.close()

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_no_redirects_no_response_bodies_and_one_reason_for_every_connection_failure(dev_settings):
    settings = dev_settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    internal = b"db_password=hunter2 internal-service-banner"
    redirect = OneShotServer(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(internal) + internal)
    error = OneShotServer(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(internal) + internal)
    hanging = OneShotServer(None)
    garbage = OneShotServer(b"SSH-2.0-OpenSSH_9.6\r\n")
    closed_port = free_port()
    try:
        result = webhooks.post_event(f"http://127.0.0.1:{redirect.port}/", b"{}", "s", settings)
        assert (result.ok, result.status_code) == (False, 302)
        assert "redirects are not followed" in result.error and "hunter2" not in result.error
        result = webhooks.post_event(f"http://127.0.0.1:{error.port}/", b"{}", "s", settings)
        assert (result.ok, result.status_code, result.error) == (False, 500, "HTTP 500")
        reasons = {webhooks.post_event(f"http://127.0.0.1:{port}/", b"{}", "s", settings).error
                   for port in (closed_port, hanging.port, garbage.port)}
        assert reasons == {webhooks.CONNECT_FAILED}
    finally:
        for server in (redirect, error, hanging, garbage):
            server.close()


class TricklingServer(OneShotServer):
    """Answers one byte of a valid status line every 0.2 s, forever (slowloris)."""

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    @staticmethod
    def _trickle(conn):
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000:
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass


@pytest.mark.timeout(30)  # the per-read timeouts alone would let this run for hours
def test_a_trickling_endpoint_cannot_hold_the_sender_past_the_timeout(dev_settings):
    settings = dev_settings.model_copy(update={"webhook_timeout_seconds": 1.0})
    server = TricklingServer(None)
    try:
        started = time.monotonic()
        result = webhooks.post_event(f"http://127.0.0.1:{server.port}/", b"{}", "s", settings)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert (result.ok, result.error) == (False, webhooks.CONNECT_FAILED)
    assert elapsed < 3, elapsed


def test_both_secrets_sign_during_a_rotation_and_only_the_new_one_after(dev_settings, webhook_receiver,
                                                                       tmp_path):
    account = new_account()
    old = webhooks.webhook_secret(account, dev_settings)
    new = webhooks.webhook_secret(account, dev_settings, rotate=True)
    assert webhooks.signing_secrets(account, dev_settings) == [new, old]
    report = completed_request(dev_settings, tmp_path, account, webhook_url=webhook_receiver.url("/rot"))
    notify_report_finished(report["id"], dev_settings, now=datetime.now(UTC))
    [hook] = webhook_receiver.received("/rot")
    header = hook.headers[webhooks.SIGNATURE_HEADER.lower()]
    assert header.count("v1=") == 2
    webhooks.verify_signature(hook.body, header, old)  # a receiver not switched yet
    webhooks.verify_signature(hook.body, header, new)  # a receiver already switched

    # After the grace period only the current secret signs.
    with db.connect("app", dev_settings) as conn:
        conn.execute("UPDATE webhook_secrets SET created_at = created_at - %s WHERE account_id = %s",
                     (timedelta(seconds=dev_settings.webhook_secret_rotation_grace_seconds + 1), account))
    assert webhooks.signing_secrets(account, dev_settings) == [new]
    header = webhooks.signature_header(b"{}", webhooks.signing_secrets(account, dev_settings), 1)
    with pytest.raises(webhooks.SignatureVerificationError):
        webhooks.verify_signature(b"{}", header, old, tolerance=0)


def test_https_is_pinned_with_sni_and_the_certificate_checked_against_the_name(
        dev_settings, tmp_path, monkeypatch):
    """Connecting to the checked IP must not weaken TLS: the certificate is verified for the
    URL's host name (sent as SNI), so a name the certificate does not cover fails."""
    import http.server
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hooks.pinned.test", "-addext", "subjectAltName=DNS:hooks.pinned.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    seen: list[str] = []  # Host headers of the requests that arrived

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    sni_names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: sni_names.append(name)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real_getaddrinfo(
        "127.0.0.1" if host.endswith(".pinned.test") else host, *a, **k))
    monkeypatch.setattr(webhooks, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    try:
        ok = webhooks.post_event(f"https://hooks.pinned.test:{port}/tls", b"{}", "s", dev_settings)
        assert (ok.ok, ok.status_code) == (True, 204), ok
        assert sni_names == ["hooks.pinned.test"]
        assert seen == [f"hooks.pinned.test:{port}"]
        wrong = webhooks.post_event(f"https://other.pinned.test:{port}/tls", b"{}", "s", dev_settings)
        assert (wrong.ok, wrong.error) == (False, webhooks.CONNECT_FAILED)
        assert len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()
