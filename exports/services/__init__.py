"""Embedded stand-ins for production services (Postgres today; the chdb engine needs no process)."""
