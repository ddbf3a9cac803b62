"""Only the statements asset and its check: a code location for tests that run a real daemon
without the reports location's sensors acting on the session's other requests."""

import dagster as dg

from orchestration.defs.statements.assets import statements, statements_data_on_time

defs = dg.Definitions(assets=[statements], asset_checks=[statements_data_on_time])
