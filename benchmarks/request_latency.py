"""On-demand latency: small report request -> completed, through the real API and dagster-daemon.

Starts (on a private state dir and port, embedded defaults) the demo platform, the API (uvicorn)
and `dagster-daemon`, then measures:
  1. p50/p95 of request -> completed over N spaced requests (one at a time, 2 s apart);
  2. the drain time of a burst of N concurrent requests (first created -> last completed).
Both from the rows' own timestamps (benchmarks/live_platform.py).
Prints them against the 8 s p95 goal and against a baseline measured in the same run: the time
`process_request` takes in-process for the same report (the floor the orchestration adds to).

    python benchmarks/request_latency.py [--requests 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from live_platform import SMALL_REPORT, LivePlatform, percentile, seconds

P95_GOAL_SECONDS = 8.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    platform = LivePlatform("payreports-latency-", {
        "PAYREPORTS_API_RATE_BURST": str(args.requests * 3),
        "PAYREPORTS_MAX_PENDING_PER_ACCOUNT": str(args.requests * 3)})
    with platform:
        from exports.requests import store
        from exports.requests.processing import process_request

        settings, account = platform.settings, platform.accounts[0]
        # Baseline: the same report processed in-process (no API, no queue, no run launch).
        baseline = []
        for _ in range(3):
            row, _ = store.create(store.NewRequest(
                account_id=account, report_type=SMALL_REPORT["report_type"],
                parameters=SMALL_REPORT["parameters"], format="csv"), settings)
            started = time.perf_counter()
            process_request(row["id"], settings)
            baseline.append(time.perf_counter() - started)
        baseline_s = statistics.median(baseline)

        platform.start_services()
        # Warm-up: the daemon's first sensor tick and code-server start are not steady state.
        platform.wait_finished([platform.post()], timeout=300)
        latencies = []
        for _ in range(args.requests):
            latencies.append(seconds(next(iter(platform.wait_finished([platform.post()]).values()))))
            time.sleep(2)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: platform.post(), range(args.requests)))
        burst = platform.wait_finished(ids).values()
        drain = (max(r["completed_at"] for r in burst) - min(r["created_at"] for r in burst)).total_seconds()

    print(f"baseline (in-process process_request): {baseline_s:.2f} s")
    print(f"request -> completed over {args.requests} spaced requests: p50 {p50:.2f} s, p95 {p95:.2f} s "
          f"(p95 goal {P95_GOAL_SECONDS:.0f} s: {'MET' if p95 <= P95_GOAL_SECONDS else 'MISSED'}; "
          f"p50 = {p50 / baseline_s:.1f}x baseline)")
    print(f"burst of {args.requests}: drained in {drain:.1f} s "
          f"({drain / args.requests:.2f} s per report, {drain / (args.requests * baseline_s):.1f}x the "
          f"serial in-process baseline)")


if __name__ == "__main__":
    main()
