"""What the request benchmarks share: a private platform (the demo one, or a generated one of N
accounts) with the real API and dagster-daemon, requests made through the API, one loop that
waits for them to finish, and a sampler of the processes' peak RSS.

    with LivePlatform(env={...}) as platform:       # state dir, embedded Postgres, demo data
        ...in-process baseline on platform.settings...
        platform.start_services()                    # dagster-daemon + API (uvicorn) + API key
        report_id = platform.post(BODY)
        rows = platform.wait_finished([report_id])   # id -> row with created_at / completed_at

    LivePlatform(prefix, build=GeneratedPlatform(accounts=10_000))   # a generated platform instead

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
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


def pdf_font_subsetter() -> str:
    """What WeasyPrint subsets the summary PDFs' fonts with, for a benchmark's first lines:
    HarfBuzz (libharfbuzz-subset0, as the Dockerfile installs) or its fontTools fallback, with
    which a statement's summary PDF took ~1.6x as long to lay out (a run without it measures
    another machine)."""
    import ctypes.util

    if ctypes.util.find_library("harfbuzz-subset"):
        return "PDF fonts subset by HarfBuzz"
    return ("PDF fonts subset by fontTools: libharfbuzz-subset0 is missing, summary PDFs ~1.6x "
            "slower than in production")


# Generated platforms end here: October 2026 is the last full month of data (SMALL_REPORT's
# period, and the statements benchmarks' month).
GENERATED_END_DATE = date(2026, 11, 1)


def build_generated_platform(settings, accounts: int, payments_per_account: int = 20
                             ) -> dict[str, float]:
    """`generate_platform(accounts=N)` (a few payments each, 60 days to GENERATED_END_DATE),
    replicated and the marts built: seconds of each step."""
    from exports import replication
    from exports.source import generate_platform
    from exports.warehouse import open_warehouse
    from tests.fixtures.platform import run_dbt

    timings = {}
    started = time.perf_counter()
    generate_platform(settings, seed=13, accounts=accounts, payments=accounts * payments_per_account,
                      days=60, end_date=GENERATED_END_DATE)
    timings["generation"] = time.perf_counter() - started
    started = time.perf_counter()
    with open_warehouse(settings, purpose="benchmark replication") as client:
        replication.sync_all(client, settings)
    timings["replication"] = time.perf_counter() - started
    started = time.perf_counter()
    build = run_dbt(["build"], settings)
    if build.returncode != 0:
        raise SystemExit(f"dbt build failed:\n{build.stdout[-4000:]}")
    timings["marts"] = time.perf_counter() - started
    return timings


@dataclass
class GeneratedPlatform:
    """A LivePlatform `build`: a generated platform of `accounts` (timings kept)."""

    accounts: int
    payments_per_account: int = 20
    timings: dict[str, float] = field(default_factory=dict)

    def __call__(self, settings) -> None:
        print(f"generating a platform of {self.accounts:,} accounts ...", flush=True)
        self.timings = build_generated_platform(settings, self.accounts, self.payments_per_account)


def build_demo(settings) -> None:
    from tests.fixtures.platform import build_demo_platform

    print("building the demo platform ...", flush=True)
    build_demo_platform(settings)


class RssSampler(threading.Thread):
    """Peak RSS of a process tree: the largest single process and the whole tree's sum. `others`
    (name -> pid) count for the largest single process only."""

    def __init__(self, root_pid: int, others: dict[str, int] | None = None):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.others = others or {}
        self.peak_single = 0
        self.peak_single_name = ""
        self.peak_total = 0
        self.current_single = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.root_pid)
        others = []
        for name, pid in self.others.items():
            try:
                others.append((name, psutil.Process(pid)))
            except psutil.NoSuchProcess:
                pass
        while not self.stop.wait(0.2):
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            sizes = []
            for proc in procs:
                try:
                    sizes.append((proc.memory_info().rss, proc))
                except psutil.Error:
                    pass
            if not sizes:
                continue
            total = sum(size for size, _ in sizes)
            for name, proc in others:
                try:
                    sizes.append((proc.memory_info().rss, name))
                except psutil.Error:
                    pass
            largest, which = max(sizes, key=lambda pair: pair[0])
            self.current_single = largest
            if largest > self.peak_single:
                self.peak_single = largest
                self.peak_single_name = which if isinstance(which, str) else _describe(which)
            self.peak_total = max(self.peak_total, total)


def _describe(proc) -> str:
    """A short name for a daemon-tree process: its module or script; a multiprocessing worker
    (e.g. a statements run's PDF layout workers) by its parent."""
    try:
        argv = proc.cmdline()
        code = " ".join(argv)
        if "multiprocessing.forkserver" in code:  # orchestration/launcher.py
            return ("a run forked by the warm run launcher" if proc.parent().cmdline() == argv
                    else "the warm run launcher's forkserver")
        if "multiprocessing.spawn" in code:  # e.g. exports/statements/render_pool.py
            return f"a spawned worker of {_describe(proc.parent())}"
    except Exception:  # noqa: BLE001 - it may have exited
        return "daemon tree process"
    if "-m" in argv[:-1]:  # e.g. "dagster api grpc" (a code server), "orchestration.daemon run"
        return " ".join(argv[argv.index("-m") + 1:][:3])
    return " ".join(Path(a).name for a in argv[:3])


class LivePlatform:
    """A platform on a private state dir and Postgres port (embedded defaults): the demo one, or
    what `build(settings)` makes (e.g. GeneratedPlatform)."""

    def __init__(self, prefix: str, env: dict[str, str] | None = None,
                 build: Callable[..., None] = build_demo):
        from tests.fixtures.services import free_port

        self.state = Path(tempfile.mkdtemp(prefix=prefix))
        self.state.chmod(0o755)
        os.environ.update({"PAYREPORTS_STATE_DIR": str(self.state),
                           "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(free_port()), **(env or {})})
        self.build = build
        self.daemon: subprocess.Popen | None = None
        self.api = None
        self.client = None
        self.clients: dict[str, object] = {}  # account id -> httpx.Client with its own API key
        self.settings = None

    def __enter__(self) -> "LivePlatform":
        from exports import db
        from exports.services import postgres as embedded
        from exports.settings import get_settings, reset_settings_cache

        reset_settings_cache()
        self.settings = get_settings()
        try:
            embedded.ensure_running(self.settings)
            db.migrate("source", self.settings)
            db.migrate("app", self.settings)
            self.build(self.settings)
            with db.connect("source", self.settings) as conn:
                self.accounts = [row[0] for row in conn.execute("SELECT id FROM accounts ORDER BY id")]
        except BaseException:
            self.__exit__()
            raise
        return self

    def start_services(self, prepare_home: Callable[[Path], None] | None = None) -> None:
        """dagster-daemon (its DAGSTER_HOME first passed to `prepare_home`), the API, a key."""
        from exports.dagster_home import prepare_dagster_home
        from tests.fixtures.api import start_api

        env = {**os.environ, **prepare_dagster_home(self.settings)}
        if prepare_home:
            prepare_home(Path(env["DAGSTER_HOME"]))
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "orchestration.daemon", "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=env, stdout=open(self.state / "daemon.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        self.api, self.base_url = start_api({}, str(self.state / "api.log"))
        self.client = self.client_for(self.accounts[0])

    def client_for(self, account_id: str):
        """An API client with a key of `account_id`'s own (created on first use)."""
        import httpx

        from exports.requests import store

        if account_id not in self.clients:
            key, _ = store.create_api_key(account_id, "bench", self.settings)
            self.clients[account_id] = httpx.Client(
                base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        return self.clients[account_id]

    def post(self, body: dict = SMALL_REPORT, account_id: str | None = None) -> str:
        client = self.client if account_id is None else self.client_for(account_id)
        response = client.post("/v1/reports", json=body)
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
        """Stop everything started, whatever failed (also on Ctrl-C): API, the daemon's process
        group (its code servers and runs), embedded Postgres."""
        from exports.services import postgres as embedded
        from tests.fixtures.api import stop_api

        try:
            for client in self.clients.values():
                client.close()
            if self.api is not None:
                stop_api(self.api)
            if self.daemon is not None:
                _stop_group(self.daemon)
        finally:
            if self.settings is not None:
                embedded.stop(self.settings)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group `proc` leads; SIGKILL what is left after 60 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group outlived the daemon
    except ProcessLookupError:
        pass
