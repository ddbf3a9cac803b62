"""The API with its app database stalled (accepting connections, never answering), stopped
(connections refused) and holding a statement past its timeout: JSON 503 with Retry-After within
a few seconds, /readyz 503 naming the check, and full recovery — with no request lost or
duplicated — when the database is back. The database is reached through a TCP proxy the test
switches between forwarding, stalling and down."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from exports import db
from exports.services import postgres as embedded
from tests.fixtures.api import start_api, stop_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

QUICK_SECONDS = 4.5  # the 2 s connect timeout plus slack for a loaded 2-core machine
BODY = {"report_type": "balance.summary.1", "format": "csv",
        "parameters": {"interval_start": 1714521600, "interval_end": 1717200000}}


class SwitchableProxy:
    """127.0.0.1:<port> -> the embedded Postgres, in mode 'forward', 'stall' or 'down'."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.mode = "forward"
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._start_accepting()

    def _start_accepting(self) -> None:
        threading.Thread(target=self._accept_loop, args=(self.listener,), daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "stall":
                self.held.append(client)  # the handshake is never answered
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stall(self) -> None:
        self.mode = "stall"

    def down(self) -> None:
        self.mode = "down"
        self.listener.close()  # new connections are refused

    def forward(self) -> None:
        if self.mode == "down":
            self.listener = socket.create_server(("127.0.0.1", self.port))
            self._start_accepting()
        self.mode = "forward"
        for sock in self.held:
            sock.close()
        self.held.clear()

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            sock.close()


@pytest.fixture
def proxied_api(postgres, tmp_path) -> Iterator[tuple[str, SwitchableProxy]]:
    proxy = SwitchableProxy(postgres.embedded_postgres_port)
    app_url = (f"postgresql://{embedded.SUPERUSER}@127.0.0.1:{proxy.port}/"
               f"{embedded.DATABASES['app']}")
    proc, base_url = start_api({"PAYREPORTS_APP_DATABASE_URL": app_url,
                                "PAYREPORTS_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1"},
                               str(tmp_path / "api.log"))
    try:
        yield base_url, proxy
    finally:
        proxy.forward()
        stop_api(proc)
        proxy.close()


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    return response, time.monotonic() - started


def assert_quick_503(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert elapsed < QUICK_SECONDS, elapsed
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_stalled_and_stopped_database_answer_503_quickly_and_recover(proxied_api, create_api_key):
    base_url, proxy = proxied_api
    account = "acct_dbf" + secrets.token_hex(4)
    key = create_api_key(account)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as client:
        first = client.post("/v1/reports", json=BODY, headers={"Idempotency-Key": "before"})
        assert first.status_code == 200, first.text
        report_id = first.json()["id"]
        assert client.get("/readyz").status_code == 200

        for fault in (proxy.stall, proxy.down):
            fault()
            assert_quick_503(*timed(client, "GET", f"/v1/reports/{report_id}"))
            assert_quick_503(*timed(client, "POST", "/v1/reports", json=BODY,
                                    headers={"Idempotency-Key": f"during-{fault.__name__}"}))
            ready, elapsed = timed(client, "GET", "/readyz")
            assert ready.status_code == 503 and elapsed < QUICK_SECONDS, (ready.text, elapsed)
            assert ready.json()["checks"]["postgres"].startswith("error")
            assert ready.json()["checks"]["storage"] == "ok"

            proxy.forward()
            assert client.get(f"/v1/reports/{report_id}").json()["status"] == "pending"
            assert client.get("/readyz").status_code == 200
            # The client's retry of the refused create is accepted, exactly once.
            retried = [client.post("/v1/reports", json=BODY,
                                   headers={"Idempotency-Key": f"during-{fault.__name__}"})
                       for _ in range(2)]
            assert [r.status_code for r in retried] == [200, 200]
            assert retried[0].json()["id"] == retried[1].json()["id"]

        listed = client.get("/v1/reports", params={"limit": 100}).json()["data"]
        assert len(listed) == 3  # before, during-stall, during-down: nothing lost or doubled


def test_a_statement_over_its_timeout_is_a_503(proxied_api, create_api_key, postgres):
    """A statement that waits (here on a lock another session holds) is cancelled by the
    statement timeout instead of holding the request."""
    base_url, _proxy = proxied_api
    account = "acct_dbf" + secrets.token_hex(4)
    key = create_api_key(account)
    with db.connect("app", postgres) as blocker:
        blocker.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.pending:' || %s))", (account,))
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as client:
            assert_quick_503(*timed(client, "POST", "/v1/reports", json=BODY))
        blocker.rollback()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as client:
        assert client.post("/v1/reports", json=BODY).status_code == 200


def test_connect_timeout_bounds_a_stalled_server(postgres):
    proxy = SwitchableProxy(postgres.embedded_postgres_port)
    proxy.stall()
    settings = postgres.model_copy(update={
        "app_database_url": f"postgresql://postgres@127.0.0.1:{proxy.port}/reporting"})
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.OperationalError):
            db.connect("app", settings)
    finally:
        proxy.close()
    assert time.monotonic() - started < QUICK_SECONDS


def test_sigstopped_embedded_postgres_answers_503_quickly_and_recovers(postgres, tmp_path):
    """Development mode: a dedicated embedded server, frozen with SIGSTOP, then thawed."""
    import os
    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from exports.requests import store
    from exports.settings import Settings
    from tests.fixtures.services import free_port

    # Outside pytest's 0700 temp tree, like the session's state dir (tests/fixtures/services.py):
    # the embedded server runs as its own system user.
    state = Path(tempfile.mkdtemp(prefix="payreports-test-stall-"))
    state.chmod(0o755)
    env = {"PAYREPORTS_STATE_DIR": str(state), "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(free_port())}
    dedicated = Settings(state_dir=state, embedded_postgres_port=int(env["PAYREPORTS_EMBEDDED_POSTGRES_PORT"]),
                         environment="test")
    proc, base_url = start_api(env, str(tmp_path / "api.log"))
    postmaster = int((dedicated.embedded_postgres_dir / "postmaster.pid").read_text().split()[0])
    try:
        key, _ = store.create_api_key("acct_dbf" + secrets.token_hex(4), "test", dedicated)
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as client:
            report_id = client.post("/v1/reports", json=BODY).json()["id"]
            os.kill(postmaster, signal.SIGSTOP)
            try:
                assert_quick_503(*timed(client, "GET", f"/v1/reports/{report_id}"))
                ready, elapsed = timed(client, "GET", "/readyz")
                assert ready.status_code == 503 and elapsed < QUICK_SECONDS, (ready.text, elapsed)
            finally:
                os.kill(postmaster, signal.SIGCONT)
            assert client.get(f"/v1/reports/{report_id}").status_code == 200
            assert client.get("/readyz").status_code == 200
    finally:
        stop_api(proc)
        embedded.stop(dedicated)
        shutil.rmtree(state, ignore_errors=True)
