"""`payreports` — the one command-line entry point for people.

A package of its own, beside `exports/` (the Dagster-free core) and `orchestration/` (Dagster):
commands drive both (the demo runs `platform_refresh` through Dagster, `ui` starts its daemon).
Each command family lives in its own module and is registered here:
  demo / services     cli.platform   (demo platform, embedded services, replication, sql)
  report ...          cli.report     (run a report to a file, list report types)
  api                 cli.api        (serve the Report API)
  ops ...             cli.ops        (queue status, retry, statement backfill, refresh, expire)
  dbt build | docs    cli.dbt        (build the marts, build/serve the dbt docs site)
  ui                  cli.stack      (Dagster webserver + daemon on this project's instance)
  users ...           cli.users      (web app users: create, list, set-password, set-role, disable, enable)
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Reporting system for payment platforms.")

# module -> how it is mounted: a name mounts the module's `app` as a sub-command group,
# None merges the module's commands at the top level.
_COMMAND_MODULES: dict[str, str | None] = {
    "cli.platform": None,
    "cli.stack": None,
    "cli.report": "report",
    "cli.api": "api",
    "cli.ops": "ops",
    "cli.dbt": "dbt",
    "cli.users": "users",
}


def _register() -> None:
    for module_name, group in _COMMAND_MODULES.items():
        module = importlib.import_module(module_name)
        if group is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=group)


_register()


def main() -> None:
    from cli.quiet import quiet_warnings

    quiet_warnings()
    app()
