"""What the request benchmarks share: a private demo platform with the real API and
dagster-daemon, requests made through the API, and one loop that waits for them to finish.

    with LivePlatform(env={...}) as platform:       # state dir, embedded Postgres, demo data
        ...in-process baseline on platform.settings...
        platform.start_services()                    # dagster-daemon + API (uvicorn) + API key
        report_id = platform.post(BODY)
        rows = platform.wait_finished([report_id])   # id -> row with created_at / completed_at

Latencies come from the rows' own timestamps (created_at -> completed_at, both the database's
clock), read for all waited-for requests in one query per poll: polling each request through the
API would cost the machine more than the thing measured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# A small report: balance.summary CSV over October 2026 of the demo platform.
SMALL_REPORT = {"report_type": "balance.summary.1", "format": "csv",
                "parameters": {"interval_start": 1790812800, "interval_end": 1793491200}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def seconds(row: dict) -> float:
    return (row["completed_at"] - row["created_at"]).total_seconds()


class LivePlatform:
    """A demo platform on a private state dir and Postgres port (embedded defaults)."""

    def __init__(self, prefix: str, env: dict[str, str] | None = None):
        from tests.fixtures.services import free_port

        self.state = Path(tempfile.mkdtemp(prefix=prefix))
        self.state.chmod(0o755)
        os.environ.update({"PAYREPORTS_STATE_DIR": str(self.state),
                           "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(free_port()), **(env or {})})
        self.daemon: subprocess.Popen | None = None
        self.api = None
        self.client = None

    def __enter__(self) -> "LivePlatform":
        from exports import db
        from exports.services import postgres as embedded
        from exports.settings import get_settings, reset_settings_cache
        from tests.fixtures.platform import build_demo_platform

        reset_settings_cache()
        self.settings = get_settings()
        embedded.ensure_running(self.settings)
        db.migrate("source", self.settings)
        db.migrate("app", self.settings)
        print("building the demo platform ...", flush=True)
        build_demo_platform(self.settings)
        with db.connect("source", self.settings) as conn:
            self.accounts = [row[0] for row in conn.execute("SELECT id FROM accounts ORDER BY id")]
        return self

    def start_services(self, prepare_home: Callable[[Path], None] | None = None) -> None:
        """dagster-daemon (its DAGSTER_HOME first passed to `prepare_home`), the API, a key."""
        import httpx

        from exports.dagster_home import prepare_dagster_home
        from exports.requests import store
        from tests.fixtures.api import start_api

        env = {**os.environ, **prepare_dagster_home(self.settings)}
        if prepare_home:
            prepare_home(Path(env["DAGSTER_HOME"]))
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "orchestration.daemon", "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=env, stdout=open(self.state / "daemon.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        self.api, base_url = start_api({}, str(self.state / "api.log"))
        key, _ = store.create_api_key(self.accounts[0], "bench", self.settings)
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                   timeout=30)

    def post(self, body: dict = SMALL_REPORT) -> str:
        response = self.client.post("/v1/reports", json=body)
        if not response.is_success:
            raise RuntimeError(f"POST /v1/reports answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    def wait_finished(self, ids: list[str], timeout: float = 1800) -> dict[str, dict]:
        """Wait until every one of `ids` is finished; raise unless all completed."""
        from exports import db
        from exports.requests import store

        deadline = time.monotonic() + timeout
        # One pooled connection for the whole wait: a new connection per poll would also re-check
        # the embedded server each time, which a heavily loaded machine can make time out.
        with db.pooled(self.settings, max_size=1):
            return self._wait(ids, deadline, store)

    def _wait(self, ids: list[str], deadline: float, store) -> dict[str, dict]:
        while time.monotonic() < deadline:
            rows = store.statuses(ids, self.settings)
            done = {i: r for i, r in rows.items() if r["status"] in ("completed", "failed", "canceled")}
            if len(done) == len(ids):
                bad = [r for r in done.values() if r["status"] != "completed"]
                if bad:
                    raise RuntimeError(f"{len(bad)} requests did not complete, e.g. {bad[0]}")
                return done
            time.sleep(1 if len(ids) > 1 else 0.1)
        raise TimeoutError(f"{len(ids)} requests not finished")

    def __exit__(self, *exc) -> None:
        from exports.services import postgres as embedded
        from tests.fixtures.api import stop_api

        if self.client is not None:
            self.client.close()
        if self.api is not None:
            stop_api(self.api)
        if self.daemon is not None:
            os.killpg(self.daemon.pid, signal.SIGTERM)
            self.daemon.wait(timeout=60)
        embedded.stop(self.settings)
