"""Code location `reports`: on-demand report runs, per-account statements (partitioned), the
template scheduler, delivery retries and retention (see orchestration/definitions.py for why this is a location of its own). Nothing here
imports dagster-dbt: report runs call the pure-Python engine in `exports/`."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from orchestration.defs import maintenance, reports, schedules, statements

    return dg.Definitions.merge(*(dg.load_definitions_from_package_module(package)
                                  for package in (reports, statements, schedules, maintenance)))
