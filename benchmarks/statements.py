"""Month-end statements end to end: N accounts' packs through the `statements` asset.

On a private state dir and port (embedded defaults: embedded Postgres, chdb, local files, an SMTP
catcher), generates a platform of N accounts (`generate_platform(accounts=N)`, a few payments
each), replicates it and builds the marts, then renders October 2026's statement pack
(PAYREPORTS_STATEMENT_REPORTS: balance summary PDF + two itemized CSVs by default) for every
account exactly as the month-end sensor requests it: the 64 shards as 4 runs of 16 partitions,
each executed by Dagster (`materialize` on an ephemeral instance) in a child process, so its peak
RSS is its own (VmHWM). Every file goes through report_requests, storage and delivery (email to
the account, in-app).

Baseline, measured in the same run: the engine alone rendering the same three files for a sample
of accounts into temp files with one shared warehouse client (no rows, no storage, no delivery,
no Dagster). Prints packs/s, seconds per pack, the ratio to the baseline and the time 10,000 packs
take at the measured rate (goal: <= 60 min on this 2-core machine).

    python benchmarks/statements.py --accounts 100
    nice python benchmarks/statements.py --accounts 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from live_platform import build_generated_platform, pdf_font_subsetter  # noqa: E402

GOAL_PACKS = 10_000
GOAL_SECONDS = 60 * 60
PERIOD_KEY = "2026-10-01"  # the last full month of a generated platform (live_platform)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _vm_hwm_mb() -> float:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmHWM"].split()[0]) / 1024


def render_child() -> None:
    """The end-to-end phase, in its own process: the month's 4 run requests, executed."""
    import dagster as dg

    from exports.statements.periods import StatementPeriod
    from orchestration.defs.statements.assets import statements
    from orchestration.defs.statements.schedules import month_run_requests

    period = StatementPeriod.from_key(PERIOD_KEY)
    started = time.perf_counter()
    runs = []
    with dg.DagsterInstance.ephemeral() as instance:
        for request in month_run_requests(period):
            run_started = time.perf_counter()
            result = dg.materialize([statements], instance=instance, tags=dict(request.tags),
                                    raise_on_error=False)
            runs.append({"run_key": request.run_key, "success": result.success,
                         "seconds": round(time.perf_counter() - run_started, 2)})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the PDF workers, once they exited
    print(json.dumps({"seconds": time.perf_counter() - started, "rss_mb": _vm_hwm_mb(), "runs": runs,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "worker_cpu_seconds": workers.ru_utime + workers.ru_stime,
                      "worker_rss_mb": workers.ru_maxrss / 1024}))


def _rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024


def watch(child: subprocess.Popen, settings, interval: float, samples: list) -> None:
    """Every `interval` s while the render child runs: statement files completed and the child's
    RSS, printed (a long run shows its rate as it goes) and kept for the memory-growth line."""
    from exports import db

    started = time.perf_counter()
    while child.poll() is None:
        time.sleep(interval)
        try:
            with db.connect("app", settings) as conn:
                files = conn.execute("SELECT count(*) FROM report_requests WHERE source = 'statement'"
                                     " AND status = 'completed'").fetchone()[0]
        except Exception:  # noqa: BLE001 - a sample missed is no reason to stop the benchmark
            continue
        rss = _rss_mb(child.pid)
        if rss is None:
            continue
        elapsed = time.perf_counter() - started
        samples.append((elapsed, files, rss))
        print(f"  {elapsed:7.0f} s: {files:,} files completed ({files / max(elapsed, 1e-9):.2f}/s), "
              f"render process RSS {rss:.0f} MB, load {os.getloadavg()[0]:.1f}", flush=True)


def baseline(settings, accounts: list[tuple[str, str]], work: Path) -> float:
    """Median seconds per pack: the engine alone, one shared client, files to a temp dir."""
    from exports.reports.engine import generate_report
    from exports.statements.items import statement_set
    from exports.statements.periods import StatementPeriod
    from exports.warehouse import open_warehouse

    period = StatementPeriod.from_key(PERIOD_KEY)
    items = statement_set(settings)
    per_pack = []
    with open_warehouse(settings, purpose="statements benchmark baseline") as client:
        for account_id, tz in accounts:
            started = time.perf_counter()
            for item in items:
                generate_report(account_id, item.report_type,
                                {"interval_start": period.start.isoformat(),
                                 "interval_end": period.end.isoformat(), "timezone": tz},
                                item.format, work / f"{account_id}-{item.name}.{item.format}",
                                settings=settings, client=client)
            per_pack.append(time.perf_counter() - started)
    return statistics.median(per_pack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--payments-per-account", type=int, default=20)
    parser.add_argument("--baseline-sample", type=int, default=10)
    parser.add_argument("--sample-seconds", type=float, default=60.0,
                        help="how often the progress and the render process' RSS are printed")
    parser.add_argument("--keep", action="store_true", help="keep the state dir (prints its path)")
    parser.add_argument("--render-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_child:
        render_child()
        return

    state = Path(tempfile.mkdtemp(prefix="payreports-statements-"))
    state.chmod(0o755)
    from aiosmtpd.controller import Controller

    from tests.fixtures.smtp import CollectingHandler

    smtp_handler = CollectingHandler()
    smtp = Controller(smtp_handler, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    os.environ.update({"PAYREPORTS_STATE_DIR": str(state),
                       "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(_free_port()),
                       "PAYREPORTS_SMTP_HOST": "127.0.0.1", "PAYREPORTS_SMTP_PORT": str(smtp.port),
                       "DAGSTER_HOME": str(state / "dagster-bench")})
    (state / "dagster-bench").mkdir()

    from exports import db
    from exports.services import postgres as embedded
    from exports.settings import get_settings, reset_settings_cache
    from exports.statements.items import statement_set

    reset_settings_cache()
    settings = get_settings()
    try:
        embedded.ensure_running(settings)
        db.migrate("source", settings)
        db.migrate("app", settings)
        timings = build_generated_platform(settings, args.accounts, args.payments_per_account)
        print(f"platform: {args.accounts:,} accounts, {args.accounts * args.payments_per_account:,} "
              f"payments, replicated and marts built in {sum(timings.values()):.0f} s; "
              f"{pdf_font_subsetter()}", flush=True)

        with db.connect("source", settings) as conn:
            sample = conn.execute("SELECT id, timezone FROM accounts ORDER BY id LIMIT %s",
                                  (args.baseline_sample,)).fetchall()
        work = state / "baseline"
        work.mkdir()
        base = baseline(settings, sample, work)
        print(f"baseline (engine alone, shared client): {base:.3f} s per pack "
              f"(median of {len(sample)})", flush=True)

        print(f"rendering (load {os.getloadavg()[0]:.1f}) ...", flush=True)
        log_path = state / "render-child.log"
        with open(log_path, "w") as child_log:
            child = subprocess.Popen([sys.executable, __file__, "--render-child"], stdout=subprocess.PIPE,
                                     stderr=child_log, text=True, env=os.environ.copy())
            samples: list[tuple[float, int, float]] = []
            watcher = threading.Thread(target=watch, args=(child, settings, args.sample_seconds, samples),
                                       daemon=True)
            watcher.start()
            out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"render child failed:\n{out[-3000:]}{log_path.read_text()[-5000:]}")
        result = json.loads(out.strip().splitlines()[-1])

        with db.connect("app", settings) as conn:
            statuses = dict(conn.execute("SELECT status, count(*) FROM report_requests "
                                         "WHERE source = 'statement' GROUP BY 1").fetchall())
            packs = conn.execute("SELECT count(DISTINCT account_id) FROM report_requests "
                                 "WHERE source = 'statement' AND status = 'completed'").fetchone()[0]
            size = int(conn.execute("SELECT coalesce(sum(file_size_bytes), 0) FROM report_requests "
                                    "WHERE source = 'statement'").fetchone()[0])
        seconds = result["seconds"]
        per_pack = seconds / max(packs, 1)
        projected = per_pack * GOAL_PACKS
        print(f"runs: {[(r['run_key'], r['success'], r['seconds']) for r in result['runs']]}")
        print(f"statement files by status: {statuses}; {size / 1e6:.1f} MB stored; "
              f"{len(smtp_handler.envelopes):,} emails delivered")
        print(f"end to end: {packs:,} packs in {seconds:.1f} s = {packs / seconds:.2f} packs/s, "
              f"{per_pack:.3f} s per pack; peak RSS of the rendering process {result['rss_mb']:.0f} MB")
        cpu_per_pack = result["cpu_seconds"] / max(packs, 1)
        print(f"CPU of the rendering process: {result['cpu_seconds']:.1f} s = {cpu_per_pack:.3f} s per "
              f"pack (wall/CPU {seconds / max(result['cpu_seconds'], 1e-9):.1f}: above ~1.3 the "
              f"machine was busy with other work; the embedded Postgres' CPU is not included)")
        print(f"PDF worker processes: {result['worker_cpu_seconds']:.1f} CPU-s = "
              f"{result['worker_cpu_seconds'] / max(packs, 1):.3f} s per pack; largest worker RSS "
              f"{result['worker_rss_mb']:.0f} MB")
        per_pack_files = len(statement_set(settings))
        if len(samples) >= 2:
            (_, files_a, rss_a), (_, files_b, rss_b) = samples[len(samples) // 2], samples[-1]
            if files_b > files_a:
                print(f"render process RSS {rss_a:.0f} MB at {files_a // per_pack_files:,} packs -> {rss_b:.0f} MB at "
                      f"{files_b // per_pack_files:,} packs: "
                      f"{(rss_b - rss_a) / ((files_b - files_a) / per_pack_files) * 1000:.0f} MB "
                      "per 1,000 packs over the second half")
        print(f"ratio end-to-end / baseline per pack: {per_pack / base:.2f}x")
        print(f"{GOAL_PACKS:,} packs at this rate: {projected / 60:.1f} min "
              f"(goal <= {GOAL_SECONDS // 60} min: {'met' if projected <= GOAL_SECONDS else 'NOT met'})"
              + ("" if packs >= GOAL_PACKS else f"  [extrapolated from {packs:,} packs]"))
    finally:
        smtp.stop()
        embedded.stop(settings)
        if args.keep:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-0")
    main()
