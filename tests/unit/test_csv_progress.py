"""CSV progress: rows are estimated from bytes after a counted sample, never past the total."""

from __future__ import annotations

from exports.writers.csv_writer import CsvBody, RowEstimate
from exports.writers.manifest import Digest, Progress


def test_rows_are_counted_exactly_within_the_sample():
    estimate = RowEstimate()
    assert estimate.add(b"a,1\nb,2\n") == 2
    assert estimate.add(memoryview(b"c,3\n")) == 3


def test_rows_past_the_sample_are_estimated_from_bytes():
    row = b"py_0001,12.34,usd\n"  # 18 bytes
    estimate = RowEstimate()
    sample = row * (RowEstimate.SAMPLE_BYTES // len(row) + 1)
    assert estimate.add(sample) == sample.count(b"\n")
    # A block without newlines (a long quoted field) still advances by its bytes' worth.
    assert estimate.add(b"x" * len(row) * 1000) == sample.count(b"\n") + 1000


def test_body_progress_never_exceeds_the_row_count_and_the_bytes_are_all_hashed():
    seen: list[int] = []
    digest = Digest()
    body = CsvBody(digest, gzip=False, progress=Progress(seen.append), row_count=100_000)
    chunk = b"x,1\n" * (RowEstimate.SAMPLE_BYTES // 4)  # ~1M rows: more than row_count
    body.write_rows(chunk)
    body.write_rows(chunk)
    assert seen and seen == sorted(seen) and seen[-1] == 100_000
    assert digest.byte_size == 2 * len(chunk)
