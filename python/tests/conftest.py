"""Shared helpers of slabcache's Python tests.

Nothing here may hang a run: pytest has no timeout plugin here, so every helper that waits on
threads or an event loop runs the work in daemon threads and fails the test when they are not
done in time (a deadlock fails instead of hanging the suite).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, List, Tuple

import pytest

import slabcache

# Big enough that nothing the functional tests store is ever evicted (see py-api-choices: a
# slab of a few MiB evicts across size classes early).
BIG = 64 << 20


class FakeTimer:
    """A `timer` for `Cache(timer=...)`: returns `now`, which the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture
def cache() -> slabcache.Cache:
    return slabcache.Cache(max_bytes=BIG)


def call_with_timeout(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`fn()` in a daemon thread: its result, or its exception re-raised here; the test fails
    if it has not returned after `timeout` seconds."""
    box: dict = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # handed to the test thread
            box["error"] = error

    thread = threading.Thread(target=body, daemon=True, name="call_with_timeout")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"still running after {timeout} s: a deadlock?")
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_async(make_coro: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Runs the coroutine `make_coro()` in a fresh event loop, in a daemon thread (so even a
    blocked event loop fails the test instead of hanging it), under asyncio.wait_for."""

    async def main() -> Any:
        return await asyncio.wait_for(make_coro(), timeout)

    return call_with_timeout(lambda: asyncio.run(main()), timeout + 5.0)


def run_threads(
    n: int, target: Callable[[int], Any], timeout: float = 10.0
) -> List[Tuple[str, Any]]:
    """Runs `target(i)` for i in range(n) in n daemon threads released together by a barrier.
    Returns, per thread, ("ok", result) or ("err", exception). Fails the test if any thread is
    still running after `timeout` seconds."""
    barrier = threading.Barrier(n)
    results: List[Tuple[str, Any]] = [("missing", None)] * n

    def body(i: int) -> None:
        try:
            barrier.wait(timeout)
            results[i] = ("ok", target(i))
        except BaseException as error:
            results[i] = ("err", error)

    threads = [
        threading.Thread(target=body, args=(i,), daemon=True, name=f"worker-{i}")
        for i in range(n)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    if alive:
        pytest.fail(f"{alive} of {n} threads still running after {timeout} s: a deadlock?")
    return results


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> bool:
    """Polls `predicate` until it is true or `timeout` passes; returns its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(step)
