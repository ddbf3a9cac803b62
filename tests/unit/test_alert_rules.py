"""deploy/prometheus/alerts.yml: valid Prometheus rule files (structure as `promtool check
rules` requires it, every expression parsed by a real PromQL parser) carrying the design's
thresholds. That each referenced series is really exported is checked against a live /metrics
in tests/integration/test_metrics.py."""

from __future__ import annotations

import re

import pytest
import yaml

from exports.settings import REPO_ROOT

promql = pytest.importorskip("promql_parser", reason="needs promql-parser (test extra)")

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
COMPARISONS = {">", ">=", "<", "<=", "==", "!="}


def _rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _rule(name: str) -> dict:
    matches = [rule for rule in _rules() if rule.get("alert") == name]
    assert len(matches) == 1, f"expected one alert named {name}"
    return matches[0]


def _thresholds(node) -> list[tuple[str, float]]:
    """(operator, number) of every `<expr> OP <number>` comparison in the expression tree."""
    found = []
    if isinstance(node, promql.BinaryExpr):
        if str(node.op) in COMPARISONS and isinstance(node.rhs, promql.NumberLiteral):
            found.append((str(node.op), node.rhs.val))
        found += _thresholds(node.lhs) + _thresholds(node.rhs)
    elif isinstance(node, promql.ParenExpr):
        found += _thresholds(node.expr)
    return found


def test_rule_file_structure():
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    group_names = [group["name"] for group in document["groups"]]
    assert len(group_names) == len(set(group_names)), "group names must be unique"
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"}, group["name"]
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations",
                                 "keep_firing_for"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert DURATION.match(str(rule.get("for", "0s"))), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_every_expression_parses_as_promql(rule):
    promql.parse(rule["expr"])  # raises ValueError with the parser's message on bad syntax
    assert "payreports_" in rule["expr"]


def test_the_parser_rejects_broken_promql():
    with pytest.raises(ValueError):
        promql.parse("sum(rate(payreports_reports_finished_total[5m]) by")


def test_design_thresholds():
    p95 = promql.parse(_rule("ReportGenerationP95Slow")["expr"])
    assert (">", 600.0) in _thresholds(p95)  # 10 minutes, in the histogram's unit (seconds)
    quantile_call = p95.lhs
    assert quantile_call.func.name == "histogram_quantile" and quantile_call.args[0].val == 0.95
    assert "payreports_report_duration_seconds_bucket" in _rule("ReportGenerationP95Slow")["expr"]

    assert (">", 100.0) in _thresholds(promql.parse(_rule("ReportQueueDeep")["expr"]))
    assert "payreports_reports_queue_depth" in _rule("ReportQueueDeep")["expr"]

    failure = _rule("ReportFailureRateHigh")["expr"]
    assert (">", 0.05) in _thresholds(promql.parse(failure))
    assert 'status="failed"' in failure

    freshness = _rule("ReplicationStale")["expr"]
    (operator, seconds), = _thresholds(promql.parse(freshness))
    # Daily refresh: fire after one missed cycle (more than 24 h), but within two.
    assert operator == ">" and 24 * 3600 < seconds <= 48 * 3600
    assert "payreports_replication_watermark_age_seconds" in freshness
