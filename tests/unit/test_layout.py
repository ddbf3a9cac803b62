"""exports/ is the Dagster-free core: no module in it imports Dagster, orchestration/ or the CLI
(which drives both). A new import of either fails here instead of creeping in."""

from __future__ import annotations

import ast
import re

from exports.settings import REPO_ROOT

FORBIDDEN = ("dagster", "dagster_dbt", "dagster_postgres", "dagster_webserver", "orchestration", "cli")


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_neither_dagster_nor_orchestration():
    offenders = {}
    for path in sorted((REPO_ROOT / "exports").rglob("*.py")):
        bad = sorted(name for name in _imported_modules(ast.parse(path.read_text()))
                     if name.split(".")[0] in FORBIDDEN)
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert offenders == {}


def test_the_payreports_command_is_the_cli_package():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["payreports"] == "cli:main"
    assert "cli*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


# SQL that names the table: FROM/JOIN/INTO/UPDATE report_requests, or a DDL verb on it.
# (The project writes SQL keywords in capitals; prose does not.)
_REPORT_REQUESTS_SQL = re.compile(r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+report_requests\b")
STORE = "exports/requests/store.py"


def _string_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant but docstrings (f-string parts included)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_only_the_store_has_report_requests_sql():
    """DEVELOPERS.md: the store owns all report_requests SQL (its state machine's moves, the
    claim order, the pending cap). Docstrings and comments may name the table; SQL may not."""
    offenders = []
    for package in ("exports", "api", "orchestration", "cli"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(REPO_ROOT))
            if relative == STORE:
                continue
            for line, text in _string_literals(ast.parse(path.read_text())):
                if _REPORT_REQUESTS_SQL.search(text) and _looks_like_sql(text):
                    offenders.append(f"{relative}:{line}")
    assert offenders == []


def _looks_like_sql(text: str) -> bool:
    return re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|ALTER|CREATE)\b", text) is not None


def test_the_sql_check_sees_sql_and_ignores_prose():
    assert _REPORT_REQUESTS_SQL.search("SELECT 1 FROM report_requests LIMIT 1")
    assert _looks_like_sql("SELECT 1 FROM report_requests LIMIT 1")
    assert not _REPORT_REQUESTS_SQL.search("turns due template schedules into report_requests rows")
    tree = ast.parse('"""Docstring: UPDATE report_requests."""\nSQL = f"UPDATE report_requests SET x = {1}"')
    assert [text for _, text in _string_literals(tree)] == ["UPDATE report_requests SET x = "]
