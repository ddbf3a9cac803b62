"""Code location `platform`: replication, dbt marts and their checks, `platform_refresh`.

The project has two code locations (workspace.yaml), split by what their runs must import:
- `platform` (this module): orchestration/defs/platform — dagster-dbt and dbt-core, ~4 s of
  imports and manifest loading per run process, acceptable for a nightly refresh;
- `reports` (orchestration/reports_definitions.py): orchestration/defs/reports, schedules and
  maintenance — every on-demand report run starts a process that loads its location, and keeping
  dbt out of it measured ~4 s faster per run (request -> completed latency is the product).
"""

import dagster as dg

from orchestration.resources import shared_resources


@dg.definitions
def defs() -> dg.Definitions:
    from orchestration.defs import platform

    return dg.Definitions.merge(
        dg.load_definitions_from_package_module(platform),
        dg.Definitions(resources=shared_resources()),
    )
