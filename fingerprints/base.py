"""Fingerprint types, media kinds and the package's exception tree.

Errors (httpx style: catch the base class at an edge, the leaves where you can act)::

    FingerprintError
    ├── Unfingerprintable        the bytes cannot be fingerprinted; str(exc) is a one-line reason
    └── UnknownFingerprintType   a stored type name that no registered type carries
"""

from __future__ import annotations

import abc
import enum
from typing import ClassVar


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    AUDIO = "audio"


class FingerprintError(Exception):
    """Base class of everything this package raises on purpose."""


class Unfingerprintable(FingerprintError):
    """The media cannot be fingerprinted; the message is one line, safe to store and show."""

    def __init__(self, reason: str, type_name: str | None = None) -> None:
        self.reason = " ".join(str(reason).split())[:300] or "unfingerprintable"
        self.type_name = type_name
        super().__init__(self.reason)

    def __reduce__(self) -> tuple[type[Unfingerprintable], tuple[str, str | None]]:
        return (type(self), (self.reason, self.type_name))


class UnknownFingerprintType(FingerprintError, KeyError):
    """No registered fingerprint type has this name."""

    def __str__(self) -> str:
        return f"unknown fingerprint type: {self.args[0]!r}" if self.args else "unknown type"


class FingerprintType(abc.ABC):
    """One way to turn media bytes into a comparable string (pytx ``SignalType``)."""

    name: ClassVar[str]  # storage key: never rename
    version: ClassVar[int]  # bump whenever output for the same input may change
    media: ClassVar[MediaKind]

    @classmethod
    @abc.abstractmethod
    def from_bytes(cls, data: bytes) -> str:
        """Fingerprint a catalogue original, or raise Unfingerprintable."""

    @classmethod
    def query_from_bytes(cls, data: bytes) -> str:
        """Fingerprint a found file; types whose query side differs override this."""
        return cls.from_bytes(data)

    @classmethod
    @abc.abstractmethod
    def distance(cls, a: str, b: str) -> float:
        """Dissimilarity of two values of this type; 0 for identical media."""
