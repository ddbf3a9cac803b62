"""CSV progress: rows are estimated from bytes after a counted sample, never past the total;
the file follower hashes every byte of a file that grows while it follows it."""

from __future__ import annotations

import hashlib
import os
import threading
import time

from exports.writers import csv_writer
from exports.writers.csv_writer import CsvBody, FileFollower, RowEstimate
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


def test_file_follower_hashes_a_growing_file_across_unaligned_windows(tmp_path, monkeypatch):
    # Small windows and odd-sized appends: most windows start mid-page, so the mapping offset
    # is rounded down to a page and the view starts inside it.
    monkeypatch.setattr(csv_writer, "FOLLOW_WINDOW_BYTES", 10_000)
    monkeypatch.setattr(csv_writer, "FOLLOW_POLL_SECONDS", 0.001)
    path = tmp_path / "rows.csv"
    path.write_bytes(b"")
    digest = Digest()
    follower = FileFollower(path, CsvBody(digest, gzip=False, progress=Progress(None), row_count=0))
    thread = threading.Thread(target=follower.run)
    thread.start()
    written = bytearray()
    with open(path, "ab") as fh:
        for i in range(200):
            chunk = os.urandom(1 + (i * 7919) % 30_000)
            fh.write(chunk)
            fh.flush()
            written += chunk
            if i % 20 == 0:
                time.sleep(0.005)  # let the follower catch up, then wait for more
    follower.finished.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and follower.error is None
    assert digest.byte_size == len(written) > 2_000_000
    assert digest.sha256.hexdigest() == hashlib.sha256(written).hexdigest()
