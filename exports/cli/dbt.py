"""`payreports dbt build | docs`: the dbt project for analysts and operators.

Both run dbt through dbt_project/chdb_dbt.py (embedded warehouse lock, server profile), the same
launcher Dagster uses, so a `payreports dbt build` also moves "data available up to" (the marts'
built-through time) exactly like a Dagster refresh does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from exports.settings import REPO_ROOT

app = typer.Typer(no_args_is_help=True, help="dbt marts: build them, browse their documentation.")
console = Console()

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_LAUNCHER = DBT_PROJECT_DIR / "chdb_dbt.py"
DOCS_FILES = ("index.html", "manifest.json", "catalog.json")


def run_dbt(args: list[str]) -> int:
    return subprocess.run([sys.executable, str(DBT_LAUNCHER), *args], cwd=DBT_PROJECT_DIR).returncode


def generate_docs(target_path: Path) -> list[Path]:
    """`dbt docs generate` (models, columns, tests, lineage and the warehouse's catalog) into
    `target_path`; returns the site's files, or raises RuntimeError with dbt's output."""
    target_path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, str(DBT_LAUNCHER), "docs", "generate", "--static", "--target-path", str(target_path)],
        cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    files = [target_path / name for name in DOCS_FILES]
    if result.returncode != 0 or not all(f.exists() for f in files):
        raise RuntimeError(f"dbt docs generate failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
    return files


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def build(ctx: typer.Context) -> None:
    """`dbt build` (models, seeds, tests) on the warehouse; extra arguments go to dbt, e.g.
    `payreports dbt build --select fct_balance_transactions+`."""
    raise typer.Exit(run_dbt(["build", *ctx.args]))


@app.command()
def docs(serve: bool = typer.Option(False, "--serve", help="Serve the site after building it."),
         port: int = typer.Option(8080, help="Port for --serve."),
         host: str = typer.Option("127.0.0.1", help="Address for --serve."),
         output: Optional[Path] = typer.Option(None, help="Where to write the site "
                                                "(default: dbt_project/target).")) -> None:
    """Build the dbt documentation site (every model and column described, tests, lineage);
    with --serve, serve it at http://HOST:PORT until interrupted."""
    target = (output or DBT_PROJECT_DIR / "target").resolve()
    try:
        with console.status("dbt docs generate…"):
            files = generate_docs(target)
    except RuntimeError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    console.print(f"Docs site built in {target} ({', '.join(f.name for f in files)}; "
                  f"static_index.html is a single self-contained file)")
    if serve:
        console.print(f"Serving http://{host}:{port} (Ctrl-C to stop)")
        raise typer.Exit(run_dbt(["docs", "serve", "--no-browser", "--host", host, "--port", str(port),
                                  "--target-path", str(target)]))
