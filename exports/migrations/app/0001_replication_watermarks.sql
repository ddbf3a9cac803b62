-- Replication state: one row per replicated source table, written after each successful pull.
-- watermark = the source's now() read at the start of that pull (rows with updated_at <= it are
-- in the warehouse). The API derives "data available up to" = min(watermark) from this table
-- without touching the warehouse.
CREATE TABLE replication_watermarks (
    table_name   text PRIMARY KEY,
    watermark    timestamptz NOT NULL,
    rows_pulled  bigint NOT NULL,
    synced_at    timestamptz NOT NULL DEFAULT now()
);
