"""On-demand latency: small report request -> completed, through the real API and dagster-daemon.

Starts (on a private state dir and port, embedded defaults) the demo platform, the API (uvicorn)
and `dagster-daemon`, then measures:
  1. p50/p95 of request -> completed over N spaced requests (one at a time, 2 s apart);
  2. the drain time of a burst of N concurrent requests (first POST -> last completed).
Prints them against the 8 s p95 goal and against a baseline measured in the same run: the time
`process_request` takes in-process for the same report (the floor the orchestration adds to).

    python benchmarks/request_latency.py [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

P95_GOAL_SECONDS = 8.0
BODY = {"report_type": "balance.summary.1", "format": "csv",
        "parameters": {"interval_start": 1790812800, "interval_end": 1793491200}}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="payreports-latency-"))
    os.environ.update({"PAYREPORTS_STATE_DIR": str(state),
                       "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(_free_port()),
                       "PAYREPORTS_API_RATE_BURST": str(args.requests * 3),
                       "PAYREPORTS_MAX_PENDING_PER_ACCOUNT": str(args.requests * 3)})
    import httpx

    from exports import db
    from exports.dagster_home import prepare_dagster_home
    from exports.requests import store
    from exports.requests.processing import process_request
    from exports.services import postgres as embedded
    from exports.settings import get_settings, reset_settings_cache
    from tests.fixtures.api import start_api, stop_api
    from tests.fixtures.platform import build_demo_platform

    reset_settings_cache()
    settings = get_settings()
    embedded.ensure_running(settings)
    db.migrate("source", settings)
    db.migrate("app", settings)
    print("building the demo platform ...", flush=True)
    build_demo_platform(settings)
    with db.connect("source", settings) as conn:
        account = conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]

    # Baseline: the same report processed in-process (no API, no queue, no run launch).
    baseline = []
    for _ in range(3):
        row, _ = store.create(store.NewRequest(account_id=account, report_type=BODY["report_type"],
                                               parameters=BODY["parameters"], format="csv"), settings)
        started = time.perf_counter()
        process_request(row["id"], settings)
        baseline.append(time.perf_counter() - started)
    baseline_s = statistics.median(baseline)

    env = {**os.environ, **prepare_dagster_home(settings)}
    repo = Path(__file__).resolve().parent.parent
    daemon = subprocess.Popen([sys.executable, "-m", "orchestration.daemon", "run", "-w",
                               str(repo / "workspace.yaml")], cwd=repo, env=env,
                              stdout=open(state / "daemon.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    api_proc, base_url = start_api({}, str(state / "api.log"))
    key, _ = store.create_api_key(account, "bench", settings)
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def wait_done(report_id: str, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = client.get(f"/v1/reports/{report_id}").json()["status"]
            if status in ("completed", "failed", "canceled"):
                if status != "completed":
                    raise RuntimeError(f"{report_id} ended {status}")
                return time.perf_counter()
            time.sleep(0.1)
        raise TimeoutError(report_id)

    try:
        # Warm-up: the daemon's first sensor tick and code-server start are not steady state.
        wait_done(client.post("/v1/reports", json=BODY).json()["id"])
        latencies = []
        for _ in range(args.requests):
            started = time.perf_counter()
            report_id = client.post("/v1/reports", json=BODY).json()["id"]
            latencies.append(wait_done(report_id) - started)
            time.sleep(2)
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]

        burst_start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: client.post("/v1/reports", json=BODY).json()["id"],
                                range(args.requests)))
        drain = max(wait_done(i) for i in ids) - burst_start
    finally:
        client.close()
        stop_api(api_proc)
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        embedded.stop(settings)

    print(f"baseline (in-process process_request): {baseline_s:.2f} s")
    print(f"request -> completed over {args.requests} spaced requests: p50 {p50:.2f} s, p95 {p95:.2f} s "
          f"(p95 goal {P95_GOAL_SECONDS:.0f} s: {'MET' if p95 <= P95_GOAL_SECONDS else 'MISSED'}; "
          f"p50 = {p50 / baseline_s:.1f}x baseline)")
    print(f"burst of {args.requests}: drained in {drain:.1f} s "
          f"({drain / args.requests:.2f} s per report, {drain / (args.requests * baseline_s):.1f}x the "
          f"serial in-process baseline)")


if __name__ == "__main__":
    main()
