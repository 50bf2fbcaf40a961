"""``@cached``: memoize a function (sync or async) in a slabcache ``Cache``.

The sync path is native (``_native.CachedFunction``): keys are built in Rust from the
arguments, and a miss is a single-flight load. An async function gets a thin wrapper here,
over the same keys and the cache's async loads.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, Optional, TypeVar

from . import _load, _native

__all__ = ["cached", "CacheInfo"]

F = TypeVar("F", bound=Callable[..., Any])


class CacheInfo(NamedTuple):
    """What ``f.cache_info()`` returns, as in functools: ``maxsize`` is the cache's byte
    budget and ``currsize`` its number of entries."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class _AsyncCachedFunction:
    """An async function memoized in a cache: ``await f(...)``."""

    def __init__(self, native: _native.CachedFunction) -> None:
        self._native = native
        self._cache = native.cache
        self._ttl = native._ttl
        functools.update_wrapper(self, native._func)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        native = self._native
        key = native._call_key(*args, **kwargs)
        value = self._cache._get_raw(key, _load.MISSING)
        if value is not _load.MISSING:
            native._count(True)
            return value
        native._count(False)
        marker = (id(self._cache), bytes, key)
        _load._refuse_recursion(marker)
        load = self._cache._load_async_raw(key, self._ttl)
        func = native._func
        return await _load.drive(load, lambda: func(*args, **kwargs), marker)

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def cache_info(self) -> CacheInfo:
        return self._native.cache_info()

    def cache_clear(self) -> None:
        self._native.cache_clear()

    @property
    def cache(self) -> Any:
        return self._cache


def cached(
    max_bytes: int = 64 << 20,
    ttl: Optional[float] = None,
    key: Optional[Callable[..., Any]] = None,
    cache: Any = None,
) -> Callable[[F], F]:
    """Memoizes a function or method (sync or async) in a slabcache ``Cache``.

    Concurrent calls with the same arguments run the function once and all get its result;
    an exception reaches every waiting caller and nothing is cached. Keys are built from the
    arguments (str, bytes, int, float, bool, None and tuples of them are fast; other hashables
    are pickled); ``key=`` replaces that with a function of the same arguments. ``cache=``
    shares an existing cache (its ``max_bytes`` then applies, and ``max_bytes`` here is
    ignored); each decorated function keeps its own entries apart.
    """
    from . import Cache  # the public class, with the MutableMapping mixins

    if not isinstance(max_bytes, int):
        raise TypeError("use @cached() or @cached(max_bytes=...), not bare @cached")

    def decorate(func: F) -> F:
        owns = cache is None
        backing = Cache(max_bytes=max_bytes) if owns else cache
        native = _native.CachedFunction(func, backing, owns, ttl, key)
        if inspect.iscoroutinefunction(func):
            return _AsyncCachedFunction(native)  # type: ignore[return-value]
        functools.update_wrapper(native, func)
        return native  # type: ignore[return-value]

    return decorate
