"""The asyncio driver of ``Cache.get_or_load_async``.

The native ``AsyncLoad`` joins the engine's single-flight table (the same one threads use);
this loop polls it: it runs the loader when this task leads, and otherwise awaits an asyncio
future that the engine's waker resolves from whichever thread lands the load. A task never
blocks its event loop, and a thread waiting for a task's load never blocks the loop either.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any, Awaitable, Callable, Hashable, Optional, Union

from ._errors import RecursiveLoad

__all__ = ["load_async", "drive", "MISSING"]

Key = Union[str, bytes]

MISSING = _MISSING = object()
_DONE, _RUN_LOADER, _WAIT = 0, 1, 2

# The (cache, key) pairs this task's loaders are loading: a loader that awaits a load of its
# own key would wait for itself forever, so it gets RecursiveLoad instead. Context variables
# follow the awaits of one task, not other tasks.
_loading: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "slabcache_loading", default=frozenset()
)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def load_async(
    cache: Any,
    key: Key,
    loader: Callable[[Key], Awaitable[Any]],
    ttl: Optional[float],
) -> Any:
    """``cache.get_or_load_async(key, loader, ttl)``."""
    value = cache.get(key, _MISSING)
    if value is not _MISSING:
        return value
    marker = (id(cache), type(key), key)
    _refuse_recursion(marker)
    return await drive(cache._load_async(key, ttl), lambda: loader(key), marker)


def _refuse_recursion(marker: Hashable) -> None:
    if marker in _loading.get():
        raise RecursiveLoad(
            "a loader awaited a load of the key it is loading; waiting for itself would never end"
        )


async def drive(load: Any, call_loader: Callable[[], Any], marker: Hashable) -> Any:
    """Polls the native ``AsyncLoad`` ``load`` to its end; ``call_loader()`` makes the
    loader's awaitable if this task leads."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            woken = loop.create_future()
            state, value = load.poll(functools.partial(loop.call_soon_threadsafe, _wake, woken))
            if state == _DONE:
                return value
            if state == _RUN_LOADER:
                token = _loading.set(_loading.get() | {marker})
                try:
                    answer = call_loader()
                    if not hasattr(answer, "__await__"):
                        raise TypeError(
                            "an async load needs an async loader (one returning an "
                            f"awaitable), and this one returned {type(answer).__name__}"
                        )
                    value = await answer
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as error:  # every waiter gets the loader's exception
                    load.fail(error)
                else:
                    load.answer(value)
                finally:
                    _loading.reset(token)
            else:
                await woken
    finally:
        # Finished: a no-op. Cancelled while leading: the waiting tasks and threads start over.
        load.cancel()
