"""The evidence package's exception tree (drawn in evidence/__init__.py)."""


def shown(value: object, limit: int = 300) -> str:
    """A user-supplied value as it may appear in a one-line error: control characters escaped."""
    text = str(value)
    if text.isprintable():
        return text[:limit]
    return repr(text)[1:-1][:limit]


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
