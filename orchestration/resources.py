"""Resources shared by every domain of orchestration/defs, bound once in definitions.py.

Thin wrappers over `exports/`: the warehouse resource opens `exports.warehouse.open_warehouse()`
(lock + client, closed at the end of the block), and the dbt resource runs dbt through
dbt_project/chdb_dbt.py, which takes the warehouse lock itself — so a step must not hold the
warehouse open while dbt runs.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg
from clickhouse_connect.driver.client import Client
from dagster_dbt import DbtCliResource, DbtProject

from exports.settings import REPO_ROOT, Settings, get_settings
from exports.warehouse import open_warehouse

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_LAUNCHER = DBT_PROJECT_DIR / "chdb_dbt.py"



class WarehouseResource(dg.ConfigurableResource):
    """The ClickHouse warehouse; open it late, close it early."""

    @property
    def settings(self) -> Settings:
        return get_settings()

    @contextmanager
    def open(self, purpose: str) -> Iterator[Client]:
        with open_warehouse(get_settings(), purpose=purpose) as client:
            yield client


def _dbt_sources_mtime() -> float:
    paths = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds"):
        paths.extend((DBT_PROJECT_DIR / folder).rglob("*"))
    return max(p.stat().st_mtime for p in paths if p.is_file())


def prepare_dbt_manifest(project: DbtProject) -> Path:
    """`dbt parse` when target/manifest.json is missing or older than the project's files, so
    definitions load on a fresh clone and pick up model edits. parse needs no warehouse."""
    manifest = project.manifest_path
    if manifest.exists() and manifest.stat().st_mtime >= _dbt_sources_mtime():
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes loading definitions at once
        if not manifest.exists() or manifest.stat().st_mtime < _dbt_sources_mtime():
            result = subprocess.run([sys.executable, str(DBT_LAUNCHER), "parse", "--quiet"],
                                    cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
            if result.returncode != 0 or not manifest.exists():
                raise RuntimeError(f"dbt parse failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return manifest


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    prepare_dbt_manifest(project)
    return project


def dbt_executable(settings: Settings | None = None) -> str:
    """A tiny executable that runs the launcher with this interpreter (DbtCliResource runs
    `dbt_executable <args>`; a shebang would depend on whichever python is first on PATH)."""
    settings = settings or get_settings()
    path = settings.state_dir / "bin" / "payreports-dbt"
    text = f'#!/bin/sh\nexec "{sys.executable}" "{DBT_LAUNCHER}" "$@"\n'
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(path)
    return str(path)


def shared_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(),
        "dbt": DbtCliResource(project_dir=dbt_project(), profiles_dir=str(DBT_PROJECT_DIR),
                              dbt_executable=dbt_executable()),
    }
