-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB creates `payments` (the demo payment source; in production the source is the
-- platform's own read replica). The app and Dagster get databases of their own.
CREATE DATABASE reporting;
CREATE DATABASE dagster;
