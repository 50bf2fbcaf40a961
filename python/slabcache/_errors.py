"""The exceptions slabcache raises. Every one derives from :class:`Error`."""

from __future__ import annotations

__all__ = [
    "Error",
    "KeyTooLarge",
    "ValueTooLarge",
    "VersionMismatch",
    "Exists",
    "RecursiveLoad",
]


class Error(Exception):
    """Base class of every exception slabcache raises itself."""


class KeyTooLarge(Error, ValueError):
    """The key is longer than the cache takes (65,534 bytes once encoded)."""


class ValueTooLarge(Error, ValueError):
    """The value, once encoded, is longer than the cache's largest value."""


class VersionMismatch(Error):
    """A conditional write found another version: ``current`` is the version it found."""

    def __init__(self, current: int) -> None:
        super().__init__(f"version mismatch: the current version is {current}")
        self.current = current

    def __reduce__(self):  # keeps .current through pickling (multiprocessing, logging)
        return (type(self), (self.current,))


class Exists(Error):
    """``add`` found the key already present."""


class RecursiveLoad(Error, RuntimeError):
    """A loader asked to load the key it is loading: waiting for itself would never end."""
