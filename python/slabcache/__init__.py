"""slabcache: a memory-bounded, concurrent in-process cache.

``Cache`` is a ``MutableMapping`` of ``str`` or ``bytes`` keys, bounded in bytes, with
versions and compare-and-swap, per-entry TTL, single-flight loading for threads and asyncio
tasks, tags and hot-key tracking. ``Backed`` puts a cache in front of a source (read-through,
write-through, write-around, write-behind, refresh-ahead, stale-while-revalidate, XFetch,
negative caching); ``cached`` memoizes functions. The guide is docs/python.md.
"""

from __future__ import annotations

from collections.abc import ItemsView, MutableMapping, ValuesView
from typing import Any, Awaitable, Callable, Optional, Union

from . import _native
from ._errors import (
    Error,
    Exists,
    KeyTooLarge,
    RecursiveLoad,
    ValueTooLarge,
    VersionMismatch,
)
from ._cached import CacheInfo, cached
from ._load import load_async
from ._native import Stats

__all__ = [
    "Backed",
    "Cache",
    "CacheInfo",
    "cached",
    "Stats",
    "Error",
    "Exists",
    "KeyTooLarge",
    "RecursiveLoad",
    "ValueTooLarge",
    "VersionMismatch",
    "MAX_KEY_LEN",
]

MAX_KEY_LEN: int = _native.MAX_KEY_LEN

Key = Union[str, bytes]

_NO_DEFAULT: Any = object()


class _ItemsView(ItemsView):
    __slots__ = ()

    def __iter__(self):
        # Each pair is read once, from one snapshot of its entry: a key removed meanwhile is
        # skipped rather than raising KeyError halfway through.
        return self._mapping._iter_items()


class _ValuesView(ValuesView):
    __slots__ = ()

    def __iter__(self):
        return self._mapping._iter_values()


class Cache(_native.Cache, MutableMapping):
    """A concurrent cache bounded in bytes: ``Cache(max_bytes=64 << 20, max_entries=None,
    ttl=None, ttl_jitter=0.0, serializer=None, timer=None, track_hot_keys=False)``.

    Keys are ``str`` or ``bytes`` (``"a"`` and ``b"a"`` are different keys); values are
    copies (see docs/python.md for which types are stored how).
    """

    __slots__ = ()

    def items(self) -> ItemsView:
        return _ItemsView(self)

    def values(self) -> ValuesView:
        return _ValuesView(self)

    async def get_or_load_async(
        self,
        key: Key,
        loader: Callable[[Key], Awaitable[Any]],
        ttl: Optional[float] = None,
    ) -> Any:
        """The value of ``key``; on a miss, ``await loader(key)``, run once for all the tasks
        and threads that miss the key meanwhile."""
        return await load_async(self, key, loader, ttl)

    # MutableMapping's __eq__ compares contents; a cache is not hashable.
    __hash__ = None  # type: ignore[assignment]


class Backed(_native.Backed):
    """A cache in front of a source: ``Backed(cache, source, write_mode="through", ttl=None,
    stale_while_revalidate=None, refresh_ahead=None, early_expiry=None, negative_ttl=None,
    ...)``. ``source`` is any object with ``load(key)``, ``store(key, value)`` and
    ``delete(key)``; ``load`` raises ``KeyError`` for a key the source does not have. The
    cache belongs to the ``Backed`` from then on (its entries carry the layer's timestamps):
    read it through the ``Backed``. A context manager: ``close()`` on exit.
    """

    __slots__ = ()

    def get(self, key: Key, default: Any = _NO_DEFAULT) -> Any:
        """The value of ``key``, loaded from the source on a miss; ``default`` when the
        source has no such key (``KeyError`` if no default is given)."""
        if default is _NO_DEFAULT:
            return super().get(key)
        return super().get(key, default)

    def __enter__(self) -> "Backed":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
