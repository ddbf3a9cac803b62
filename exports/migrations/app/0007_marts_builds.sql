-- "Data available up to T" means the marts reports read are built through T: after each
-- successful dbt build the launcher records the oldest replication watermark that build
-- consumed (exports.replication.record_marts_build). One row per marts database.
CREATE TABLE marts_builds (
    marts_database  text PRIMARY KEY,
    built_through   timestamptz NOT NULL,
    built_at        timestamptz NOT NULL DEFAULT now(),
    dbt_invocation  text
);
