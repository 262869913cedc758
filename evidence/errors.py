"""The evidence package's exception tree (drawn in evidence/__init__.py)."""


class EvidenceError(Exception):
    """Base of every error this package raises on purpose; str() is a one-line reason."""


class BadInput(EvidenceError):
    """The caller's input is wrong: a bad file, row, value or reference."""


class NotFound(BadInput):
    """No such object, or not in the caller's scope (the two are indistinguishable)."""


class DatabaseUnavailable(EvidenceError):
    """The database cannot be reached, is locked for too long, or is read-only."""


class StoreError(EvidenceError):
    """The blob store could not write or read a blob."""


class IntegrityProblem(EvidenceError):
    """Stored evidence does not match its recorded hashes or signatures."""
