"""benchmarks/platform_scale.py exits non-zero unless every account's pack is complete: the
verdict it prints after its numbers."""

import sys
from collections import Counter

from exports.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from platform_scale import statement_problems  # noqa: E402

RUNS_OK = Counter(SUCCESS=4)


def test_every_pack_complete_is_no_problem():
    assert statement_problems("COMPLETED_SUCCESS", RUNS_OK, Counter(completed=300), 100, 100, 3) == []


def test_a_failed_or_unfinished_file_is_a_problem():
    problems = statement_problems("COMPLETED_SUCCESS", RUNS_OK, Counter(completed=299, failed=1), 99, 100, 3)
    assert any("not completed: {'failed': 1}" in p for p in problems)
    assert any("99 of 100" in p for p in problems)
    assert statement_problems("COMPLETED_SUCCESS", RUNS_OK, Counter(completed=300, pending=3), 100, 100, 3)


def test_a_failed_backfill_is_a_problem_even_when_the_files_are_there():
    assert statement_problems("COMPLETED_FAILED", RUNS_OK, Counter(completed=300), 100, 100, 3) == [
        "the backfill ended COMPLETED_FAILED"]


def test_missing_accounts_are_a_problem():
    # Fewer rows than accounts owed (e.g. the backfill skipped some shards): nothing failed, yet
    # packs are missing.
    problems = statement_problems("COMPLETED_SUCCESS", RUNS_OK, Counter(completed=150), 50, 100, 3)
    assert "50 of 100 accounts' packs complete" in problems
    assert any("expected 300" in p for p in problems)


def test_a_failed_run_is_a_problem_even_when_its_retry_finished_the_backfill():
    # A run the watchdog wrongly failed while it still rendered: Dagster retried it, every file
    # got done, and a second run had rendered beside the first meanwhile.
    problems = statement_problems("COMPLETED_SUCCESS", Counter(SUCCESS=4, FAILURE=1),
                                  Counter(completed=300), 100, 100, 3)
    assert problems == ["backfill runs not successful: {'FAILURE': 1}"]
