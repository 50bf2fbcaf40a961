"""`@slabcache.cached`: memoization of sync and async functions and methods, single-flight,
exceptions, cache_info/cache_clear, keys built from the arguments."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time

import pytest

import slabcache
from conftest import BIG, FakeTimer, call_with_timeout, run_async, run_threads


def test_memoizes_and_counts():
    calls = []

    @slabcache.cached(max_bytes=BIG)
    def square(x):
        calls.append(x)
        return x * x

    assert square(3) == 9
    assert square(3) == 9
    assert square(4) == 16
    assert calls == [3, 4]
    info = square.cache_info()
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 2, BIG, 2)
    assert tuple(info) == (1, 2, BIG, 2)


def test_cache_attribute_is_the_cache_behind_it():
    @slabcache.cached(max_bytes=8 << 20)
    def f(x):
        return x

    assert isinstance(f.cache, slabcache.Cache)
    assert f.cache.stats().max_bytes == 8 << 20
    f(1)
    assert len(f.cache) == f.cache_info().currsize == 1


def test_cache_clear_forgets_results_and_counts():
    calls = []

    @slabcache.cached()
    def f(x):
        calls.append(x)
        return [x]

    f(1)
    f(1)
    f.cache_clear()
    info = f.cache_info()
    assert (info.hits, info.misses, info.currsize) == (0, 0, 0)
    assert f(1) == [1]
    assert calls == [1, 1]


def test_wraps_the_function():
    @slabcache.cached()
    def documented(x):
        """The docstring."""
        return x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "The docstring."


def test_results_are_copies():
    @slabcache.cached()
    def f(x):
        return [x, {"k": x}]

    first = f(1)
    first.append("mutated")
    assert f(1) == [1, {"k": 1}]


@pytest.mark.parametrize(
    "args_a, args_b, same",
    [
        (("a",), ("a",), True),
        (("a",), (b"a",), False),
        ((1, 2), (1, 2), True),
        ((1, 2), (2, 1), False),
        ((None, True, 1.5), (None, True, 1.5), True),
        (((1, ("x", b"y")),), ((1, ("x", b"y")),), True),
        (((1, 2),), ((1, 3),), False),
        ((10**30,), (10**30,), True),
        ((10**30,), (10**30 + 1,), False),
    ],
)
def test_keys_from_positional_arguments(args_a, args_b, same):
    calls = []

    @slabcache.cached()
    def f(*args):
        calls.append(args)
        return len(calls)

    first = f(*args_a)
    second = f(*args_b)
    assert (first == second) is same
    assert len(calls) == (1 if same else 2)


def test_keyword_arguments_in_any_order_share_a_key():
    calls = []

    @slabcache.cached()
    def f(a=0, b=0, c=0):
        calls.append((a, b, c))
        return a + 10 * b + 100 * c

    assert f(a=1, b=2) == 21
    assert f(b=2, a=1) == 21
    assert f(a=1, b=3) == 31
    assert len(calls) == 2


class Token:
    """A hashable argument outside the fast types (picklable, so it takes the fallback)."""

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        return isinstance(other, Token) and other.name == self.name


def test_other_hashables_fall_back_and_still_memoize():
    calls = []

    @slabcache.cached()
    def f(x):
        calls.append(x)
        return repr(sorted(x)) if isinstance(x, frozenset) else x.name

    assert f(frozenset({1, 2})) == "[1, 2]"
    assert f(frozenset({2, 1})) == "[1, 2]"
    assert f(Token("t")) == "t"
    assert f(Token("t")) == "t"
    assert f(Token("u")) == "u"
    assert len(calls) == 3


def test_unhashable_argument_is_a_type_error():
    @slabcache.cached()
    def f(x):
        return 1

    with pytest.raises(TypeError):
        f({1, 2})
    assert f(1) == 1  # still usable


def test_unpicklable_hashable_argument_is_a_type_error():
    @slabcache.cached()
    def f(x):
        return 1

    with pytest.raises(TypeError):
        f(threading.Lock())
    assert f(2) == 1


def test_custom_key_function():
    calls = []

    @slabcache.cached(key=lambda user, request_id: user)
    def profile(user, request_id):
        calls.append(request_id)
        return {"user": user}

    assert profile("ada", 1) == {"user": "ada"}
    assert profile("ada", 2) == {"user": "ada"}
    assert profile("bob", 3) == {"user": "bob"}
    assert calls == [1, 3]


def test_ttl_with_the_caches_timer():
    t = FakeTimer()
    c = slabcache.Cache(max_bytes=BIG, timer=t)
    calls = []

    @slabcache.cached(ttl=5, cache=c)
    def f(x):
        calls.append(x)
        return len(calls)

    assert f("a") == 1
    t.advance(4)
    assert f("a") == 1
    t.advance(2)
    assert f("a") == 2
    assert calls == ["a", "a"]


def test_invalid_ttl():
    with pytest.raises(ValueError):

        @slabcache.cached(ttl=-1)
        def f(x):
            return x


def test_functions_sharing_a_cache_keep_their_entries_apart():
    shared = slabcache.Cache(max_bytes=BIG)
    shared["plain"] = "a plain entry"

    @slabcache.cached(cache=shared)
    def double(x):
        return x * 2

    @slabcache.cached(cache=shared)
    def triple(x):
        return x * 3

    assert double(5) == 10 and triple(5) == 15
    assert double(5) == 10 and triple(5) == 15
    assert double.cache is shared and triple.cache is shared
    # The decorated functions' entries are not keys of the mapping.
    assert list(shared) == ["plain"]
    assert dict(shared.items()) == {"plain": "a plain entry"}
    # Clearing one function of a shared cache leaves the other's results and plain keys.
    calls = []

    @slabcache.cached(cache=shared)
    def tracked(x):
        calls.append(x)
        return x

    tracked(1)
    tracked(1)
    triple.cache_clear()
    tracked(1)
    assert calls == [1]
    assert shared["plain"] == "a plain entry"


def test_returning_an_unencodable_value_caches_nothing():
    calls = []

    @slabcache.cached()
    def f(x):
        calls.append(x)
        return threading.Lock() if len(calls) == 1 else "ok"

    with pytest.raises(TypeError):
        f(1)
    assert f(1) == "ok"
    assert f(1) == "ok"
    assert len(calls) == 2


def test_sync_function_returning_an_awaitable_is_a_type_error():
    made = []

    async def inner():
        return 1

    @slabcache.cached()
    def f(x):
        made.append(inner())
        return made[-1]

    with pytest.raises(TypeError):
        f(1)
    for c in made:
        c.close()


# --- methods --------------------------------------------------------------------------------


class Account:
    calls = 0

    def __init__(self, owner):
        self.owner = owner

    @slabcache.cached()
    def greeting(self, word):
        Account.calls += 1
        return f"{word}, {self.owner}"


def test_methods_key_on_self_and_arguments():
    Account.calls = 0
    a, b = Account("ada"), Account("bob")
    assert a.greeting("hi") == "hi, ada"
    assert b.greeting("hi") == "hi, bob"
    assert a.greeting("hi") == "hi, ada"
    assert a.greeting("yo") == "yo, ada"
    assert Account.calls == 3
    assert Account.greeting.cache_info().hits == 1
    # Looked up on the class, it is the decorated function itself.
    assert Account.greeting(a, "hi") == "hi, ada"
    assert Account.calls == 3


class AsyncAccount:
    calls = 0

    def __init__(self, owner):
        self.owner = owner

    @slabcache.cached()
    async def greeting(self, word):
        AsyncAccount.calls += 1
        await asyncio.sleep(0)
        return f"{word}, {self.owner}"


def test_async_methods():
    AsyncAccount.calls = 0
    a, b = AsyncAccount("ada"), AsyncAccount("bob")

    async def main():
        return [await a.greeting("hi"), await b.greeting("hi"), await a.greeting("hi")]

    assert run_async(main) == ["hi, ada", "hi, bob", "hi, ada"]
    assert AsyncAccount.calls == 2


# --- single-flight: threads -----------------------------------------------------------------


def test_sixteen_threads_one_argument_run_once():
    calls = []

    @slabcache.cached()
    def slow(x):
        calls.append(x)
        time.sleep(0.2)
        return ("result", x)

    results = run_threads(16, lambda i: slow(7))
    assert calls == [7]
    assert [r for _, r in results] == [("result", 7)] * 16
    info = slow.cache_info()
    assert info.hits + info.misses == 16
    assert info.currsize == 1


def test_exception_reaches_every_thread_and_nothing_is_cached():
    calls = []

    class Failure(Exception):
        pass

    @slabcache.cached()
    def slow(x):
        calls.append(x)
        time.sleep(0.2)
        if len(calls) == 1:
            raise Failure(f"bad {x}")
        return "recovered"

    results = run_threads(16, lambda i: slow("k"))
    assert len(calls) == 1
    for status, error in results:
        assert status == "err" and type(error) is Failure and str(error) == "bad k"
    assert slow.cache_info().currsize == 0
    assert slow("k") == "recovered"
    assert len(calls) == 2


def test_key_error_from_the_function_reaches_the_caller():
    @slabcache.cached()
    def f(x):
        raise KeyError(x)

    with pytest.raises(KeyError):
        f("missing")
    with pytest.raises(KeyError):
        f("missing")


def test_recursive_call_with_the_same_arguments_gets_an_error():
    @slabcache.cached()
    def loop(x):
        return loop(x)

    with pytest.raises(slabcache.RecursiveLoad):
        call_with_timeout(lambda: loop(1), timeout=5)
    assert loop.cache_info().currsize == 0


def test_recursion_with_other_arguments_works():
    calls = []

    @slabcache.cached()
    def fib(n):
        calls.append(n)
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert call_with_timeout(lambda: fib(60), timeout=5) == 1548008755920
    assert sorted(calls) == list(range(61))


# --- single-flight: asyncio -----------------------------------------------------------------


def test_hundred_tasks_one_argument_run_once():
    calls = []

    @slabcache.cached()
    async def slow(x):
        calls.append(x)
        await asyncio.sleep(0.2)
        return {"x": x}

    async def main():
        return await asyncio.gather(*(slow("a") for _ in range(100)))

    results = run_async(main)
    assert calls == ["a"]
    assert results == [{"x": "a"}] * 100
    info = slow.cache_info()
    assert info.hits + info.misses == 100
    assert info.currsize == 1


def test_async_memoizes_and_counts():
    calls = []

    @slabcache.cached()
    async def f(x):
        calls.append(x)
        return x + 1

    async def main():
        return [await f(1), await f(1), await f(2)]

    assert run_async(main) == [2, 2, 3]
    assert calls == [1, 2]
    info = f.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)
    f.cache_clear()
    assert f.cache_info().currsize == 0
    assert isinstance(f.cache, slabcache.Cache)


def test_async_exception_reaches_every_task_and_nothing_is_cached():
    calls = []

    @slabcache.cached()
    async def slow(x):
        calls.append(x)
        await asyncio.sleep(0.1)
        if len(calls) == 1:
            raise ValueError(f"bad {x}")
        return "recovered"

    async def main():
        return await asyncio.gather(*(slow(1) for _ in range(100)), return_exceptions=True)

    results = run_async(main)
    assert len(calls) == 1
    assert all(type(r) is ValueError and str(r) == "bad 1" for r in results)
    assert slow.cache_info().currsize == 0

    async def again():
        return await slow(1)

    assert run_async(again) == "recovered"


def test_async_recursive_call_gets_an_error():
    @slabcache.cached()
    async def loop(x):
        return await loop(x)

    with pytest.raises(slabcache.RecursiveLoad):
        run_async(lambda: loop(1), timeout=5)


def test_async_function_with_threads_calling_it_through_their_own_loops():
    # Several threads, each running its own event loop, call one async function with one
    # argument: it still runs once.
    calls = []

    @slabcache.cached()
    async def slow(x):
        calls.append(x)
        await asyncio.sleep(0.2)
        return x * 2

    results = run_threads(4, lambda i: asyncio.run(slow(21)))
    assert results == [("ok", 42)] * 4
    assert calls == [21]


# --- reference leaks ------------------------------------------------------------------------


def test_no_reference_leaks():
    def body(x, y=None):
        return [x, y]

    f = slabcache.cached()(body)
    arg = ("an", "argument", 1)
    f(arg)
    gc.collect()
    before_body, before_arg = sys.getrefcount(body), sys.getrefcount(arg)
    for i in range(10_000):
        f(arg)  # hit
        f(i % 50, y=arg)  # misses, then hits
    gc.collect()
    assert sys.getrefcount(body) == before_body
    assert sys.getrefcount(arg) == before_arg
