"""Dagster definitions, one folder per domain.

Convention:
- `orchestration/defs/<domain>/` is a package (has `__init__.py`); every module in it is imported
  and every *module-level* Dagster object (assets, asset checks, jobs, schedules, sensors) is
  loaded by the code location that lists the domain: `platform` in orchestration/definitions.py,
  `reports`, `schedules` and `maintenance` in orchestration/reports_definitions.py (a new domain is
  added to one of those two lists). Build per-table or per-report objects with a factory and assign the results to
  module-level names (or a module-level list/`dg.Definitions`).
- Domains: `platform/` (replication, dbt marts, their checks, `platform_refresh`), `reports/`,
  `schedules/`, `maintenance/`.
- Resources are NOT defined in domain folders: they are shared and bound once in
  `orchestration/definitions.py` from `orchestration/resources.py` (`warehouse`, `dbt`). Ask for
  them by those parameter names.
- Names are global across domains: prefix job/sensor/schedule names with their domain's subject
  (e.g. `platform_refresh`, `report_request_sensor`).
- Any run that opens the embedded warehouse must carry `orchestration.tags.warehouse_tags()`
  so dagster.yaml's queue limit serializes chdb users.
"""
