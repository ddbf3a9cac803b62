"""Dagster code for the reporting system: `definitions.py` plus `defs/<domain>/` (see defs/__init__.py).

Thin by rule: assets, checks, jobs and sensors call into `exports/`; no business logic lives here.
"""
