"""Lifetimes and resources: iterators outliving clear() and the cache itself, memory staying
within max_bytes, and no reference leaks."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import threading
import weakref

import pytest

import slabcache
from conftest import BIG, run_async, run_threads

# --- iterators ------------------------------------------------------------------------------


def _fill(cache, n=300):
    data = {f"k{i}": (i, "v" * (i % 20)) for i in range(n)}
    cache.update(data)
    return data


@pytest.mark.parametrize("view", ["keys", "items", "values", "iter"])
def test_iterator_outlives_clear(cache, view):
    data = _fill(cache)
    it = iter(cache) if view == "iter" else iter(getattr(cache, view)())
    first = next(it)
    cache.clear()
    rest = list(it)  # no crash; whatever it still yields was in the cache
    for x in [first] + rest:
        if view in ("keys", "iter"):
            assert x in data
        elif view == "items":
            assert data[x[0]] == x[1]
        else:
            assert x in data.values()
    assert len(cache) == 0
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("view", ["keys", "items", "values"])
def test_iterator_outlives_the_cache_object(view):
    c = slabcache.Cache(max_bytes=BIG)
    data = _fill(c)
    it = iter(getattr(c, view)())
    next(it)
    ref = weakref.ref(c) if _weakrefable(c) else None
    del c
    gc.collect()
    rest = list(it)
    for x in rest:
        if view == "keys":
            assert x in data
        elif view == "items":
            assert data[x[0]] == x[1]
        else:
            assert x in data.values()
    del it
    gc.collect()
    if ref is not None:
        assert ref() is None


def _weakrefable(obj):
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


def test_plain_iter_outlives_the_cache_object():
    c = slabcache.Cache(max_bytes=BIG)
    data = _fill(c, 1000)
    it = iter(c)
    del c
    gc.collect()
    keys = list(it)
    assert set(keys) <= set(data)
    # Nothing removed the entries: the iterator still sees them all.
    assert len(keys) == len(data)


def test_iteration_during_concurrent_writes_is_weakly_consistent(cache):
    _fill(cache, 500)
    stop = threading.Event()

    def writer(_):
        n = 0
        while not stop.is_set():
            cache[f"w{n % 300}"] = n
            cache.pop(f"k{n % 500}", None)
            if n % 97 == 0:
                cache.clear()
            n += 1
        return n

    t = threading.Thread(target=writer, args=(0,), daemon=True)
    t.start()
    try:
        for _ in range(30):
            for k, v in cache.items():
                assert isinstance(k, str)
                if k.startswith("w"):
                    assert isinstance(v, int)
            assert all(isinstance(k, str) for k in cache)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()


def test_iterators_from_many_threads(cache):
    _fill(cache, 200)

    def reader(_):
        total = 0
        for _ in range(20):
            total += sum(1 for _ in cache.items())
        return total

    results = run_threads(4, reader, timeout=30)
    assert all(status == "ok" and r == 20 * 200 for status, r in results), results


def test_one_iterator_shared_by_threads(cache):
    data = _fill(cache, 2000)
    it = iter(cache)
    lock = threading.Lock()
    seen = []

    def consume(_):
        for key in it:
            with lock:
                seen.append(key)
        return True

    run_threads(4, consume)
    assert sorted(seen) == sorted(data)  # each key once, none lost


# --- memory bound ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_bytes, writes", [(16 << 20, 50_000), (4 << 20, 5_000)])
def test_memory_stays_within_max_bytes_under_mixed_writes(max_bytes, writes):
    # 16 MiB: the 50,000 writes of the issue. 4 MiB: two pages, where size classes fight for
    # pages (fewer writes: each one evicts there, which is slow).
    c = slabcache.Cache(max_bytes=max_bytes)
    rng = random.Random(1234)
    sizes = [8, 40, 200, 1000, 5000, 30_000, 200_000]
    weights = [30, 30, 20, 10, 6, 3, 1]
    blobs = {s: bytes(rng.getrandbits(8) for _ in range(64)) * (s // 64 + 1) for s in sizes}
    peak = 0
    for i in range(writes):
        size = rng.choices(sizes, weights)[0]
        key = f"key{rng.randrange(20_000)}"
        kind = i % 4
        if kind == 0:
            value = blobs[size][:size]
        elif kind == 1:
            value = "s" * size
        elif kind == 2:
            value = [i, blobs[size][: size // 2]]
        else:
            value = blobs[size][: size - 1]
        c[key] = value
        if i % 500 == 499:
            s = c.stats()
            peak = max(peak, s.arena_bytes_used)
            assert s.arena_bytes_used <= max_bytes, s
            assert s.payload_bytes <= max_bytes, s
            assert s.entries == len(c)
            assert c[key] == value  # the newest write is readable
    s = c.stats()
    assert s.arena_bytes_used <= max_bytes and s.payload_bytes <= max_bytes
    assert s.evictions > 0  # the bound was actually reached
    assert peak > max_bytes // 2
    assert len(c) > 0


def test_clear_gives_the_memory_back():
    c = slabcache.Cache(max_bytes=8 << 20)
    for i in range(2000):
        c[f"k{i}"] = b"x" * 2000
    assert c.stats().payload_bytes > 1 << 20
    c.clear()
    s = c.stats()
    assert s.entries == 0 and s.payload_bytes == 0


# --- reference leaks ------------------------------------------------------------------------

N = 10_000


class _Obj:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return isinstance(other, _Obj) and other.n == self.n


@pytest.mark.parametrize(
    "value",
    [b"bytes value", "str value", [1, "two", (3.0, None)], {"k": [1, 2]}, _Obj(5), 12345678901234],
    ids=["bytes", "str", "list", "dict", "pickled", "int"],
)
def test_set_and_get_do_not_leak_the_value(cache, value):
    key = "refkey"
    cache[key] = value
    cache[key]
    gc.collect()
    before_value = sys.getrefcount(value)
    before_key = sys.getrefcount(key)
    for _ in range(N):
        cache[key] = value
        cache.set(key, value)
        got = cache[key]
        cache.get(key)
        cache.get_versioned(key)
    del got
    gc.collect()
    assert sys.getrefcount(value) == before_value
    assert sys.getrefcount(key) == before_key


def test_get_or_load_hits_and_misses_do_not_leak_the_loader(cache):
    value = ["loaded", 1]

    def loader(key):
        return value

    cache.get_or_load("warm", loader)
    gc.collect()
    before_loader = sys.getrefcount(loader)
    before_value = sys.getrefcount(value)
    for i in range(N):
        cache.get_or_load("warm", loader)  # hit
        cache.get_or_load(f"miss{i % 50}", loader)  # miss (then deleted)
        del cache[f"miss{i % 50}"]
    gc.collect()
    assert sys.getrefcount(loader) == before_loader
    assert sys.getrefcount(value) == before_value


def test_failing_loads_do_not_leak(cache):
    error = ValueError("always")

    def loader(key):
        raise error

    for _ in range(10):
        try:
            cache.get_or_load("k", loader)
        except ValueError:
            pass
    error.__traceback__ = None  # re-raising one object grows its traceback: start clean
    gc.collect()
    before_loader = sys.getrefcount(loader)
    before_error = sys.getrefcount(error)
    for _ in range(N):
        try:
            cache.get_or_load("k", loader)
        except ValueError:
            pass
    error.__traceback__ = None
    gc.collect()
    assert sys.getrefcount(loader) == before_loader
    assert sys.getrefcount(error) == before_error


def test_async_loads_do_not_leak_the_loader(cache):
    value = ("v", 1)

    async def loader(key):
        return value

    async def main(n):
        for i in range(n):
            await cache.get_or_load_async("hit", loader)
            await cache.get_or_load_async(f"m{i % 10}", loader)
            del cache[f"m{i % 10}"]

    run_async(lambda: main(10))
    gc.collect()
    before_loader = sys.getrefcount(loader)
    before_value = sys.getrefcount(value)
    run_async(lambda: main(2000), timeout=30)
    gc.collect()
    assert sys.getrefcount(loader) == before_loader
    assert sys.getrefcount(value) == before_value


def test_iteration_does_not_leak_keys_or_the_cache():
    c = slabcache.Cache(max_bytes=BIG)
    c.update({f"k{i}": i for i in range(50)})
    gc.collect()
    before = sys.getrefcount(c)
    for _ in range(1000):
        list(c.items())
        list(c)
    gc.collect()
    assert sys.getrefcount(c) == before


def test_caches_are_freed():
    # Build and drop many caches with entries: the memory each one holds goes back (a leak of
    # 64 MiB arenas would exhaust memory long before the loop ends) and nothing crashes.
    for _ in range(200):
        c = slabcache.Cache(max_bytes=BIG)
        for i in range(100):
            c[f"k{i}"] = b"x" * 10_000
        it = iter(c.items())
        next(it)
        del c, it
    gc.collect()
