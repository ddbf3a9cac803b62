"""A tiny code location for tests of the Dagster instance configuration (run queue limits)."""
