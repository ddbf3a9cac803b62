"""Stable account shards: an account's shard is a pure function of its id, so it never changes
as accounts are added, and every process (sensor, run, CLI) computes the same one.

SHARD_COUNT is part of the partition keys Dagster stores: changing it would move accounts
between partitions and orphan their history, so it is a constant, not a setting.
"""

from __future__ import annotations

import hashlib

from exports.errors import InvalidParameter

SHARD_COUNT = 64
SHARD_KEYS: tuple[str, ...] = tuple(f"{shard:02d}" for shard in range(SHARD_COUNT))


def shard_of(account_id: str) -> int:
    """The account's shard: the first 8 bytes of sha256(account id) mod SHARD_COUNT (Python's
    hash() is salted per process, so it would not do)."""
    digest = hashlib.sha256(account_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % SHARD_COUNT


def shard_key_of(account_id: str) -> str:
    return SHARD_KEYS[shard_of(account_id)]


def parse_shard_key(key: str) -> int:
    if key not in SHARD_KEYS:
        raise InvalidParameter(f"shard must be one of {SHARD_KEYS[0]}..{SHARD_KEYS[-1]}, got {key!r}",
                               param="shard")
    return int(key)
