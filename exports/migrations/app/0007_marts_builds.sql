-- "Data available up to T" means the marts reports read are built through T. After each
-- successful dbt model build the launcher (dbt_project/chdb_dbt.py) records, per model, the
-- oldest replication watermark that build consumed, capped by its parent models' own values
-- (exports.replication.record_model_builds); data_available_end is the minimum over the models
-- report queries read.
CREATE TABLE marts_builds (
    marts_database  text NOT NULL,
    model           text NOT NULL,
    built_through   timestamptz NOT NULL,
    built_at        timestamptz NOT NULL DEFAULT now(),
    dbt_invocation  text,
    PRIMARY KEY (marts_database, model)
);
