"""rightswatch fingerprints: a pure library (no database, network or config).

Sniff media bytes, fingerprint them with every registered type, and match found files
against a catalogue. See docs/architecture.md for the contract.
"""

# First, before anything loads numpy: on AMD Zen 4, numpy's AVX-512 sorts are 4x slower than
# its AVX2 ones, and importing `cpu` picks the AVX2 ones there.
from fingerprints import cpu  # noqa: F401  (imported for that effect)

# isort: split
from fingerprints.base import (
    FingerprintError,
    FingerprintType,
    MediaKind,
    Unfingerprintable,
    UnknownFingerprintType,
)
from fingerprints.matcher import Hit, Matcher
from fingerprints.prints import Prints, fingerprint_query, fingerprint_work
from fingerprints.sniff import Sniffed, sniff

__all__ = [
    "FingerprintError",
    "FingerprintType",
    "Hit",
    "Matcher",
    "MediaKind",
    "Prints",
    "Sniffed",
    "Unfingerprintable",
    "UnknownFingerprintType",
    "fingerprint_query",
    "fingerprint_work",
    "sniff",
]
