"""Threads and asyncio: CAS increments, single-flight loading (threads, tasks, both), loader
exceptions reaching every waiter, recursive loads, and garbage collection during a load.

Every wait is bounded (see conftest): a deadlock fails the test rather than hanging it."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

import slabcache
from conftest import BIG, call_with_timeout, run_async, run_threads, wait_until


# --- CAS ------------------------------------------------------------------------------------


def test_four_threads_cas_increments_end_exact(cache):
    per_thread = 500
    cache["counter"] = 0

    def worker(_):
        mismatches = 0
        for _ in range(per_thread):
            while True:
                value, version = cache.get_versioned("counter")
                try:
                    cache.compare_and_swap("counter", version, value + 1)
                    break
                except slabcache.VersionMismatch as e:
                    assert e.current != version
                    mismatches += 1
        return mismatches

    results = run_threads(4, worker, timeout=30)
    assert all(status == "ok" for status, _ in results), results
    assert cache["counter"] == 4 * per_thread
    assert cache.stats().cas_failures == sum(m for _, m in results)


def test_add_is_exclusive_across_threads(cache):
    def worker(i):
        try:
            cache.add("only", i)
            return True
        except slabcache.Exists:
            return False

    results = run_threads(16, worker)
    assert [r for _, r in results].count(True) == 1


# --- single-flight: threads -----------------------------------------------------------------


def test_sixteen_threads_one_slow_loader_runs_once(cache):
    calls = []

    def loader(key):
        calls.append(key)
        time.sleep(0.2)
        return {"key": key, "n": len(calls)}

    results = run_threads(16, lambda i: cache.get_or_load("k", loader))
    assert calls == ["k"]
    assert [r for _, r in results] == [{"key": "k", "n": 1}] * 16
    assert cache["k"] == {"key": "k", "n": 1}
    s = cache.stats()
    assert s.loads == 1
    assert s.load_waits >= 1


def test_get_or_load_hit_does_not_call_the_loader(cache):
    cache["k"] = "cached"
    assert cache.get_or_load("k", lambda k: pytest.fail("loader called on a hit")) == "cached"


def test_get_or_load_passes_the_key_and_caches_with_ttl(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    seen = []

    def loader(key):
        seen.append(key)
        return key * 2

    assert c.get_or_load(b"ab", loader, ttl=5) == b"abab"
    assert c.get_or_load("ab", loader) == "abab"  # a different key
    assert seen == [b"ab", "ab"] and type(seen[0]) is bytes
    timer.advance(6)
    assert b"ab" not in c and c["ab"] == "abab"


def test_different_keys_load_in_parallel(cache):
    # Single-flight is per key: 8 threads on 8 keys each sleeping 0.2 s take ~0.2 s, not 1.6 s.
    def worker(i):
        return cache.get_or_load(f"k{i}", lambda k: (time.sleep(0.2), k)[1])

    start = time.monotonic()
    results = run_threads(8, worker)
    elapsed = time.monotonic() - start
    assert [r for _, r in results] == [f"k{i}" for i in range(8)]
    assert elapsed < 1.0, elapsed


def test_loader_exception_reaches_every_thread_and_nothing_is_cached(cache):
    calls = []

    class Boom(Exception):
        pass

    def loader(key):
        calls.append(key)
        time.sleep(0.2)
        raise Boom(f"failed loading {key}")

    results = run_threads(16, lambda i: cache.get_or_load("k", loader))
    assert len(calls) == 1
    for status, error in results:
        assert status == "err"
        assert type(error) is Boom
        assert str(error) == "failed loading k"
    assert "k" not in cache
    # Nothing remembered: the next call loads again.
    assert cache.get_or_load("k", lambda k: "ok") == "ok"
    assert cache["k"] == "ok"


def test_loader_key_error_means_not_found(cache):
    def loader(key):
        time.sleep(0.1)
        raise KeyError(key)

    results = run_threads(8, lambda i: cache.get_or_load("nf", loader))
    for status, error in results:
        assert status == "err" and type(error) is KeyError
        assert error.args == ("nf",)
    assert "nf" not in cache


def test_loader_returning_an_awaitable_is_a_type_error(cache):
    made = []

    async def coro_fn():
        return 1

    def loader(key):
        made.append(coro_fn())
        return made[-1]

    with pytest.raises(TypeError):
        cache.get_or_load("k", loader)
    for c in made:
        c.close()
    assert "k" not in cache
    assert cache.get_or_load("k", lambda k: 2) == 2


def test_loader_value_too_large_is_returned_uncached(cache):
    # The engine's documented rule (core/src/load/mod.rs): a loaded value the cache cannot
    # hold is returned to every caller, uncached.
    calls = []

    def loader(key):
        calls.append(key)
        return b"x" * (2 << 20)

    assert cache.get_or_load("big", loader) == b"x" * (2 << 20)
    assert "big" not in cache
    assert cache.get_or_load("big", loader) == b"x" * (2 << 20)
    assert len(calls) == 2
    assert cache.get_or_load("big", lambda k: b"small") == b"small"
    assert cache["big"] == b"small"


def test_loader_returning_an_unpicklable_value(cache):
    lock = threading.Lock()
    with pytest.raises(TypeError):
        cache.get_or_load("lock", lambda k: lock)
    assert "lock" not in cache
    assert cache.get_or_load("lock", lambda k: "fine") == "fine"


def _delete(cache, key):
    try:
        del cache[key]
    except KeyError:  # absent (being loaded): the delete still counts
        pass


def test_a_delete_during_a_load_wins(cache):
    # The load stores its value under a lease that a delete of the key landing meanwhile
    # breaks ("update the database, then delete the cache entry"): the caller gets the
    # loaded value, and the key stays absent.
    def loader(key):
        t = threading.Thread(target=_delete, args=(cache, key))
        t.start()
        t.join(5)
        return "loaded before the update"

    assert cache.get_or_load("k", loader) == "loaded before the update"
    assert "k" not in cache


def test_a_write_during_a_load_wins(cache):
    def loader(key):
        t = threading.Thread(target=cache.__setitem__, args=(key, "written meanwhile"))
        t.start()
        t.join(5)
        return "loaded"

    assert cache.get_or_load("k", loader) == "loaded"
    assert cache["k"] == "written meanwhile"


# --- single-flight: asyncio -----------------------------------------------------------------


def test_hundred_tasks_one_slow_async_loader_runs_once(cache):
    calls = []

    async def loader(key):
        calls.append(key)
        await asyncio.sleep(0.2)
        return [key, len(calls)]

    async def main():
        return await asyncio.gather(*(cache.get_or_load_async("k", loader) for _ in range(100)))

    results = run_async(main)
    assert calls == ["k"]
    assert results == [["k", 1]] * 100
    assert cache["k"] == ["k", 1]


def test_async_hit_does_not_call_the_loader(cache):
    cache["k"] = 1

    async def loader(key):
        pytest.fail("loader called on a hit")

    assert run_async(lambda: cache.get_or_load_async("k", loader)) == 1


def test_async_loader_exception_reaches_every_task(cache):
    calls = []

    async def loader(key):
        calls.append(key)
        await asyncio.sleep(0.1)
        raise ValueError(f"no {key}")

    async def main():
        return await asyncio.gather(
            *(cache.get_or_load_async("k", loader) for _ in range(100)), return_exceptions=True
        )

    results = run_async(main)
    assert len(calls) == 1
    assert all(type(r) is ValueError and str(r) == "no k" for r in results), results[:3]
    assert "k" not in cache

    async def good(key):
        return "ok"

    assert run_async(lambda: cache.get_or_load_async("k", good)) == "ok"
    assert cache["k"] == "ok"


def test_async_loader_key_error(cache):
    async def loader(key):
        raise KeyError(key)

    with pytest.raises(KeyError):
        run_async(lambda: cache.get_or_load_async("nf", loader))
    assert "nf" not in cache


def test_sync_loader_given_to_async_api_is_a_type_error(cache):
    with pytest.raises(TypeError):
        run_async(lambda: cache.get_or_load_async("k", lambda k: 1))
    assert "k" not in cache


def test_async_tasks_on_different_keys_overlap(cache):
    async def loader(key):
        await asyncio.sleep(0.2)
        return key

    async def main():
        start = time.monotonic()
        out = await asyncio.gather(*(cache.get_or_load_async(f"k{i}", loader) for i in range(20)))
        return out, time.monotonic() - start

    out, elapsed = run_async(main)
    assert out == [f"k{i}" for i in range(20)]
    assert elapsed < 1.5, elapsed


def test_cancelled_leader_lets_waiters_start_over(cache):
    calls = []

    async def loader(key):
        calls.append(key)
        if len(calls) == 1:
            await asyncio.sleep(10)  # the first leader hangs and is cancelled
        await asyncio.sleep(0.05)
        return "second"

    async def main():
        leader = asyncio.ensure_future(cache.get_or_load_async("k", loader))
        await asyncio.sleep(0.05)
        waiter = asyncio.ensure_future(cache.get_or_load_async("k", loader))
        await asyncio.sleep(0.05)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await waiter

    assert run_async(main, timeout=5) == "second"
    assert len(calls) == 2
    assert cache["k"] == "second"


# --- threads and tasks together -------------------------------------------------------------


def _mixed_run(cache, leader):
    """Threads and tasks load one key together; `leader` says who starts first. Returns
    (thread results, task results, loader calls, event-loop ticks while waiting)."""
    calls = []
    started = threading.Event()
    go = threading.Event()

    def sync_loader(key):
        calls.append("thread")
        started.set()
        time.sleep(0.3)
        return "from-thread"

    async def async_loader(key):
        calls.append("task")
        started.set()
        await asyncio.sleep(0.3)
        return "from-task"

    thread_results = []

    def thread_body():
        go.wait(5)
        thread_results.append(cache.get_or_load("k", sync_loader))

    threads = [threading.Thread(target=thread_body, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.ensure_future(ticker())
        if leader == "thread":
            go.set()
            while not started.is_set():
                await asyncio.sleep(0.002)
            tasks = [cache.get_or_load_async("k", async_loader) for _ in range(50)]
        else:
            tasks = [asyncio.ensure_future(cache.get_or_load_async("k", async_loader))]
            while not started.is_set():
                await asyncio.sleep(0.002)
            go.set()
            tasks += [cache.get_or_load_async("k", async_loader) for _ in range(49)]
        ticks_before = ticks
        out = await asyncio.gather(*tasks)
        waited_ticks = ticks - ticks_before
        stop.set()
        await tick_task
        return out, waited_ticks

    task_results, ticks = run_async(main)
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads), "threads still waiting: a deadlock?"
    return thread_results, task_results, calls, ticks


def test_threads_and_tasks_share_one_load_thread_leads(cache):
    thread_results, task_results, calls, ticks = _mixed_run(cache, "thread")
    assert calls == ["thread"]
    assert thread_results == ["from-thread"] * 8
    assert task_results == ["from-thread"] * 50
    # The tasks waited for a thread's load without blocking the event loop: the ticker kept
    # running (about 30 ticks in 0.3 s; a blocked loop gives ~0).
    assert ticks >= 5, ticks


def test_threads_and_tasks_share_one_load_task_leads(cache):
    thread_results, task_results, calls, ticks = _mixed_run(cache, "task")
    assert calls == ["task"]
    assert thread_results == ["from-task"] * 8
    assert task_results == ["from-task"] * 50
    # Threads waiting for a task's load do not block the loop that runs it.
    assert ticks >= 5, ticks


def test_thread_exception_reaches_waiting_tasks(cache):
    started = threading.Event()

    def sync_loader(key):
        started.set()
        time.sleep(0.2)
        raise LookupError("thread failed")

    box = {}

    def thread_body():
        try:
            cache.get_or_load("k", sync_loader)
        except LookupError as e:
            box["thread"] = e

    t = threading.Thread(target=thread_body, daemon=True)
    t.start()

    async def async_loader(key):
        return "should not run"

    async def main():
        while not started.is_set():
            await asyncio.sleep(0.002)
        return await asyncio.gather(
            *(cache.get_or_load_async("k", async_loader) for _ in range(10)),
            return_exceptions=True,
        )

    results = run_async(main)
    t.join(5)
    assert not t.is_alive()
    assert str(box["thread"]) == "thread failed"
    assert all(type(r) is LookupError and str(r) == "thread failed" for r in results), results
    assert "k" not in cache


# --- recursion ------------------------------------------------------------------------------


def test_sync_loader_loading_its_own_key_gets_recursive_load(cache):
    inner = []

    def loader(key):
        try:
            return cache.get_or_load(key, loader)
        except slabcache.RecursiveLoad as e:
            inner.append(e)
            raise

    with pytest.raises(slabcache.RecursiveLoad) as info:
        call_with_timeout(lambda: cache.get_or_load("self", loader), timeout=5)
    assert isinstance(info.value, RuntimeError)
    assert len(inner) == 1
    assert "self" not in cache
    assert cache.get_or_load("self", lambda k: "fine") == "fine"


def test_recursive_load_can_be_caught_by_the_loader(cache):
    def loader(key):
        try:
            return cache.get_or_load(key, loader)
        except slabcache.RecursiveLoad:
            return "fallback"

    assert call_with_timeout(lambda: cache.get_or_load("k", loader), timeout=5) == "fallback"
    assert cache["k"] == "fallback"


def test_loader_loading_another_key_is_fine(cache):
    def loader(key):
        if key == "outer":
            return "outer+" + cache.get_or_load("inner", loader)
        return "inner"

    assert call_with_timeout(lambda: cache.get_or_load("outer", loader), 5) == "outer+inner"
    assert cache["inner"] == "inner"


def test_mutual_recursion_between_two_keys_does_not_hang(cache):
    # a's loader loads b, whose loader loads a: a cycle on one thread.
    def loader(key):
        return cache.get_or_load("b" if key == "a" else "a", loader)

    with pytest.raises(slabcache.RecursiveLoad):
        call_with_timeout(lambda: cache.get_or_load("a", loader), timeout=5)
    assert "a" not in cache and "b" not in cache


def test_async_loader_awaiting_its_own_key_gets_recursive_load(cache):
    async def loader(key):
        return await cache.get_or_load_async(key, loader)

    with pytest.raises(slabcache.RecursiveLoad):
        run_async(lambda: cache.get_or_load_async("self", loader), timeout=5)
    assert "self" not in cache

    async def fine(key):
        return "fine"

    assert run_async(lambda: cache.get_or_load_async("self", fine)) == "fine"


def test_async_recursion_in_a_sibling_task_is_not_recursion(cache):
    # Two different tasks loading the same key are ordinary waiters, not a recursion: the
    # second waits for the first.
    async def loader(key):
        await asyncio.sleep(0.05)
        return "v"

    async def main():
        first = asyncio.ensure_future(cache.get_or_load_async("k", loader))
        await asyncio.sleep(0.01)
        second = await cache.get_or_load_async("k", loader)
        return await first, second

    assert run_async(main) == ("v", "v")


# --- garbage collection during a load -------------------------------------------------------


class _Cyclic:
    """Garbage in a reference cycle whose finalizer writes to the cache."""

    def __init__(self, cache, i):
        self.cache, self.i, self.me = cache, i, self

    def __del__(self):
        self.cache[f"finalized{self.i}"] = self.i


def test_gc_inside_a_loader_does_not_block_other_threads(cache):
    stop = threading.Event()
    progress = []

    def busy():
        n = 0
        while not stop.is_set():
            cache[f"busy{n % 100}"] = n
            cache.get(f"busy{(n * 7) % 100}")
            cache.get_or_load(f"other{n % 10}", lambda k: k)
            n += 1
            if n % 50 == 0:
                progress.append(n)
        return n

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    assert wait_until(lambda: len(progress) > 0)

    def loader(key):
        for i in range(100):
            _Cyclic(cache, i)
        before = len(progress)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            gc.collect()
        # The other thread kept working while this loader collected garbage.
        return len(progress) - before

    made_progress = call_with_timeout(lambda: cache.get_or_load("gc", loader), timeout=10)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert made_progress > 0
    assert cache["gc"] == made_progress
    assert all(cache.get(f"finalized{i}") == i for i in range(100))


def test_gc_in_loader_while_other_threads_wait_for_the_same_key(cache):
    def loader(key):
        for i in range(50):
            _Cyclic(cache, i)
        gc.collect()
        time.sleep(0.1)
        gc.collect()
        return "done"

    results = run_threads(8, lambda i: cache.get_or_load("k", loader))
    assert [r for _, r in results] == ["done"] * 8


# --- concurrent mixed traffic ---------------------------------------------------------------


def test_concurrent_readers_and_writers_see_whole_values(cache):
    # Each write stores a value whose parts agree; a reader must never see a torn one.
    def worker(i):
        for n in range(2000):
            key = f"k{n % 16}"
            if (n + i) % 3 == 0:
                cache[key] = (n, "x" * (n % 50), n)
            else:
                v = cache.get(key)
                if v is not None:
                    assert v[0] == v[2] and len(v[1]) == v[0] % 50, v
            if n % 500 == 0:
                list(cache.items())
        return True

    results = run_threads(4, worker, timeout=30)
    assert all(r == ("ok", True) for r in results), results
