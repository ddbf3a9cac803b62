"""The reporting system's core: settings, source schema, warehouse access, report engine,
writers, storage and delivery. Pure Python: nothing in this package imports Dagster."""
