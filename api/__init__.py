"""The Report API: a thin FastAPI layer over `exports/` (auth, routes, schemas). Never imports Dagster."""
