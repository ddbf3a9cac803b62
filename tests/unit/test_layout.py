"""exports/ is the Dagster-free core: no module in it imports Dagster, orchestration/ or the CLI
(which drives both). A new import of either fails here instead of creeping in."""

from __future__ import annotations

import ast

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
