"""The system of record: catalogue, crawl runs, matches, captures and the evidence ledger.

Errors (one tree, translated once at the edges: CLI exit codes, API status codes)::

    EvidenceError
    ├── BadInput            the caller's input is wrong (CLI exit 2, HTTP 422)
    │   └── NotFound        no such object in the caller's scope (CLI exit 2, HTTP 404)
    ├── DatabaseUnavailable the database cannot be reached or is read-only (CLI exit 1, HTTP 503)
    ├── StoreError          the blob store failed (no space, read-only)
    └── IntegrityProblem    stored evidence does not verify
"""

from evidence.errors import (
    BadInput,
    DatabaseUnavailable,
    EvidenceError,
    IntegrityProblem,
    NotFound,
    StoreError,
)

__all__ = [
    "BadInput",
    "DatabaseUnavailable",
    "EvidenceError",
    "IntegrityProblem",
    "NotFound",
    "StoreError",
]
