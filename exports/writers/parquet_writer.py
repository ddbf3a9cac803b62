"""Parquet: pyarrow ParquetWriter fed from ClickHouse Native column blocks, bounded row groups.

ClickHouse converts each column to a transport-friendly type (timestamps to Int64 epoch
microseconds, dates to Int32 epoch days) and clickhouse-connect streams the Native blocks
(`query_column_block_stream`, no per-query settings, so chdb streams it); each block becomes
Arrow arrays and row groups of at most ROW_GROUP_ROWS rows.

Types (formatting.parquet_type, the rule table's Arrow rendering): timestamps ->
timestamp[us, tz=<the column's zone>], dates -> date32, integers -> int64, booleans -> bool,
strings/json -> string.

Money, one schema whatever the currencies (one, several, or none: an empty file), so a nightly
load never breaks on a quiet day: each money column is decimal128(38, 4) in major units under its
own name (4 = the largest currency exponent the source allows, so USD, JPY and KWD are all exact),
or with money_format="minor" int64 minor units named `<column>_minor`. Either way the file has
`currency` (unless the report already has a column of that name) and `currency_exponent`, so
each amount's own precision is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from clickhouse_connect.driver.client import Client

from exports.reports.query import Manifest, ReportQuery
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, file_digest, timezone_of)
from exports.writers.formatting import (MAX_CURRENCY_EXPONENT, PARQUET_MONEY_PRECISION,
                                        minor_units_name, parquet_type)
from exports.writers.sqlformat import CURRENCY_COLUMN, EXPONENT_COLUMN, ident

ROW_GROUP_ROWS = 256_000


def _decimal_from_minor(minor: pa.Array, scale: int) -> pa.Array:
    """int64 minor units -> decimal128(38, scale) with the same unscaled value (exact)."""
    values = pc.fill_null(minor, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)  # little-endian 128-bit two's complement
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(38, scale), len(values),
                                 [minor.buffers()[0], pa.py_buffer(words.tobytes())],
                                 null_count=minor.null_count)


def write_parquet(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
                  progress: Progress, money_format: Literal["major", "minor"] = "major") -> Manifest:
    names = [c.name for c in query.columns]
    select: list[str] = []
    fields: list[pa.Field] = []
    for index, column in enumerate(query.columns):
        ref = facts.column_sql(index)
        tz = timezone_of(facts.column_types[index]) or "UTC"
        arrow = parquet_type(column.kind, money_format=money_format, timezone=tz)
        name = column.name
        if column.kind == "money":
            select.append(f"toInt64({ref})")
            if money_format == "minor":
                name = minor_units_name(column.name)
            else:  # minor units rescaled to the file's one scale: exact integer arithmetic
                select[-1] = (f"toInt64({ref}) * toInt64(intExp10({MAX_CURRENCY_EXPONENT} - "
                              f"least({ident(EXPONENT_COLUMN)}, {MAX_CURRENCY_EXPONENT})))")
        elif column.kind == "timestamp":
            select.append(f"toUnixTimestamp64Micro(toDateTime64({ref}, 6))")
        elif column.kind == "date":
            select.append(f"toInt32({ref})")
        elif column.kind == "integer":
            select.append(f"toInt64({ref})")
        elif column.kind == "boolean":
            select.append(f"toBool({ref})")
        else:
            select.append(f"toString({ref})")
        fields.append(pa.field(name, arrow))
    if query.money_columns:
        if "currency" not in names:
            select.append(ident(CURRENCY_COLUMN))
            fields.append(pa.field("currency", pa.string()))
        select.append(f"toInt8({ident(EXPONENT_COLUMN)})")
        fields.append(pa.field("currency_exponent", pa.int8()))
    if any(e > MAX_CURRENCY_EXPONENT for e in facts.exponents.values()):
        raise ValueError(f"{query.report_type}: a currency exponent above "
                         f"{MAX_CURRENCY_EXPONENT} does not fit the Parquet money scale")
    schema = pa.schema(fields)
    sql = f"SELECT {', '.join(select)} FROM ({query.sql})"

    def to_arrow(values, field: pa.Field) -> pa.Array:
        if pa.types.is_decimal(field.type):
            return _decimal_from_minor(pa.array(values, pa.int64()), field.type.scale)
        if pa.types.is_timestamp(field.type):
            return pa.array(values, pa.int64()).cast(field.type)
        if pa.types.is_date32(field.type):
            return pa.array(values, pa.int32()).cast(pa.date32())
        return pa.array(values, field.type)

    with atomic_output(out_path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            with client.query_column_block_stream(sql, parameters=query.parameters) as blocks:
                for block in blocks:
                    batch = pa.record_batch([to_arrow(col, f) for col, f in zip(block, fields)],
                                            schema=schema)
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    progress.advance(batch.num_rows)
                    if pending_rows >= ROW_GROUP_ROWS:
                        writer.write_table(pa.Table.from_batches(pending, schema),
                                           row_group_size=ROW_GROUP_ROWS)
                        pending, pending_rows = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema),
                                   row_group_size=ROW_GROUP_ROWS)
        check_row_count(progress.rows, facts, query)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(progress.rows)
    return build_manifest(query, "parquet", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=progress.rows, columns=schema.names,
                          extra={"money": "int64_minor" if money_format == "minor" else
                                 f"decimal128({PARQUET_MONEY_PRECISION}, {MAX_CURRENCY_EXPONENT})_major"})
