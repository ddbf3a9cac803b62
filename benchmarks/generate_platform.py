"""Benchmark: the demo platform generator at scale, against a plain bulk insert.

Starts a fresh embedded Postgres under a temporary state dir (own port), generates N payments
(default 10,000,000) and prints rows/s per table and the wall time, next to a baseline measured
in the same run on the same server: `INSERT INTO t SELECT g, ... FROM generate_series(1, N)` of N
narrow rows. The ratio says how many baseline-inserts one generation costs.

    python benchmarks/generate_platform.py --payments 1000000
    python benchmarks/generate_platform.py --payments 200000 --accounts 10000   # many small merchants
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exports import db  # noqa: E402
from exports.services import postgres as embedded  # noqa: E402
from exports.settings import Settings  # noqa: E402
from exports.source import generate_platform, ledger_invariant_violations  # noqa: E402
from tests.fixtures.services import free_port  # noqa: E402

# Which generation steps write which table (the other steps are planning/staging).
STEP_TABLE = {"accounts": "accounts", "customers": "customers", "payments": "payments",
              "refunds": "refunds", "disputes": "disputes", "payouts": "payouts",
              "balance_transactions": "balance_transactions"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--accounts", type=int, default=None,
                        help="number of merchant accounts (default: the six demo accounts)")
    parser.add_argument("--check-invariants", action="store_true",
                        help="also run the ledger invariant checks (slow at 10M)")
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp(prefix="payreports-bench-"))
    settings = Settings(state_dir=state_dir, embedded_postgres_port=free_port())
    try:
        embedded.ensure_running(settings)
        db.migrate("source", settings)
        n = args.payments

        with db.connect("source", settings) as conn:
            conn.execute("CREATE TABLE bench_baseline (id bigint PRIMARY KEY, value bigint)")
            conn.commit()
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_baseline SELECT g, g * 7 FROM generate_series(1, %s) g",
                         (n,))
            conn.commit()
            baseline = time.perf_counter() - started
            conn.execute("DROP TABLE bench_baseline")
            conn.commit()

        started = time.perf_counter()
        summary = generate_platform(settings, seed=args.seed, payments=n, days=args.days,
                                    end_date=date(2025, 1, 1), accounts=args.accounts)
        wall = time.perf_counter() - started

        print(f"payments={n:,} days={args.days} seed={args.seed} accounts={summary.rows['accounts']:,}")
        print(f"baseline: {n:,} narrow rows in {baseline:.2f}s = {n / baseline:,.0f} rows/s")
        print(f"{'step':<26}{'rows':>14}{'seconds':>10}{'rows/s':>14}")
        for step, seconds in summary.seconds.items():
            table = STEP_TABLE.get(step)
            rows = summary.rows[table] if table else None
            rate = f"{rows / seconds:,.0f}" if rows and seconds else ""
            print(f"{step:<26}{(f'{rows:,}' if rows is not None else ''):>14}{seconds:>10.2f}{rate:>14}")
        total_rows = sum(summary.rows.values())
        print(f"generate_platform wall: {wall:.2f}s for {total_rows:,} rows "
              f"({total_rows / wall:,.0f} rows/s overall, {n / wall:,.0f} payments/s)")
        print(f"ratio generate wall / baseline wall: {wall / baseline:.1f}x")
        if args.check_invariants:
            started = time.perf_counter()
            with db.connect("source", settings) as conn:
                violations = ledger_invariant_violations(conn)
            print(f"invariants: {len(violations)} violations in {time.perf_counter() - started:.1f}s")
            for violation in violations:
                print("  " + violation)
    finally:
        embedded.stop(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-0")
    main()
