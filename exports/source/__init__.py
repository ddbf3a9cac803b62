"""The demo payment platform in the source Postgres database: a deterministic generator, recent
mutations for incremental replication, and the ledger invariants both must keep."""

from exports.source.generator import GenerationSummary, SourceNotEmpty, generate_platform
from exports.source.invariants import ledger_invariant_violations
from exports.source.mutations import MutationSummary, mutate_recent

__all__ = [
    "GenerationSummary",
    "MutationSummary",
    "SourceNotEmpty",
    "generate_platform",
    "ledger_invariant_violations",
    "mutate_recent",
]
