"""`payreports` — the one command-line entry point for people.

Each command family lives in its own module and is registered here:
  demo / services     exports.cli.platform   (demo platform, embedded services, replication, sql)
  report ...          exports.cli.report     (run a report to a file, list report types)
  api                 exports.cli.api        (serve the Report API)
  ops ...             exports.cli.ops        (queue status, retry, backfill, expire)
  dbt build | docs    exports.cli.dbt        (build the marts, build/serve the dbt docs site)
  ui                  exports.cli.stack      (Dagster webserver + daemon on this project's instance)
  users ...           exports.cli.users      (web app users: create, list, set-password)
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Reporting system for payment platforms.")

# module -> how it is mounted: a name mounts the module's `app` as a sub-command group,
# None merges the module's commands at the top level.
_COMMAND_MODULES: dict[str, str | None] = {
    "exports.cli.platform": None,
    "exports.cli.stack": None,
    "exports.cli.report": "report",
    "exports.cli.api": "api",
    "exports.cli.ops": "ops",
    "exports.cli.dbt": "dbt",
    "exports.cli.users": "users",
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
    from exports.cli.quiet import quiet_warnings

    quiet_warnings()
    app()
