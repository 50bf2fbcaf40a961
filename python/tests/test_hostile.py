"""Hostile input: every bad argument gives the documented error and leaves the cache usable."""

from __future__ import annotations

import asyncio
import pickle
import threading

import pytest

import slabcache
from conftest import BIG, FakeTimer, run_async


def assert_usable(cache):
    cache["__probe__"] = b"ok"
    assert cache["__probe__"] == b"ok"
    del cache["__probe__"]


# --- keys -----------------------------------------------------------------------------------

BAD_KEYS = [1, 1.5, None, ("a",), bytearray(b"a"), memoryview(b"a"), object(), ["a"], True]

KEY_OPS = {
    "getitem": lambda c, k: c[k],
    "setitem": lambda c, k: c.__setitem__(k, 1),
    "delitem": lambda c, k: c.__delitem__(k),
    "get": lambda c, k: c.get(k),
    "set": lambda c, k: c.set(k, 1),
    "add": lambda c, k: c.add(k, 1),
    "replace": lambda c, k: c.replace(k, 1),
    "get_versioned": lambda c, k: c.get_versioned(k),
    "compare_and_swap": lambda c, k: c.compare_and_swap(k, 1, 1),
    "delete_if_version": lambda c, k: c.delete_if_version(k, 1),
    "set_tagged": lambda c, k: c.set_tagged(k, 1, ["t"]),
    "get_or_load": lambda c, k: c.get_or_load(k, lambda key: 1),
    "pop": lambda c, k: c.pop(k),
    "setdefault": lambda c, k: c.setdefault(k, 1),
}


@pytest.mark.parametrize("op", sorted(KEY_OPS))
@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: type(k).__name__)
def test_bad_key_type_is_a_type_error_naming_the_type(cache, op, key):
    with pytest.raises(TypeError) as info:
        KEY_OPS[op](cache, key)
    assert type(key).__name__ in str(info.value), str(info.value)
    assert len(cache) == 0
    assert_usable(cache)


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: type(k).__name__)
def test_bad_key_type_is_not_in(cache, key):
    assert (key in cache) is False


def test_bad_key_type_async(cache):
    async def loader(key):
        return 1

    with pytest.raises(TypeError) as info:
        run_async(lambda: cache.get_or_load_async(42, loader))
    assert "int" in str(info.value)
    assert_usable(cache)


def test_unencodable_str_key(cache):
    # A lone surrogate has no UTF-8 form: an error (UnicodeEncodeError is a ValueError),
    # never a crash or a key that reads back as another.
    with pytest.raises((ValueError, TypeError)):
        cache["\ud800"] = 1
    assert len(cache) == 0
    assert_usable(cache)


HUGE_KEYS = ["k" * 70_000, b"k" * 70_000, "é" * 35_000, "k" * (slabcache.MAX_KEY_LEN + 1)]

WRITE_OPS = ["setitem", "set", "add", "set_tagged", "get_or_load", "replace", "compare_and_swap", "setdefault"]


@pytest.mark.parametrize("op", WRITE_OPS)
@pytest.mark.parametrize("key", HUGE_KEYS, ids=["str70k", "bytes70k", "utf8-70k", "max+1"])
def test_huge_key_writes_raise_key_too_large(cache, op, key):
    loaded = []
    with pytest.raises(slabcache.KeyTooLarge) as info:
        if op == "get_or_load":
            cache.get_or_load(key, loaded.append)
        else:
            KEY_OPS[op](cache, key)
    assert isinstance(info.value, ValueError)
    assert loaded == []  # the loader was not called
    assert len(cache) == 0
    assert_usable(cache)


@pytest.mark.parametrize("op", ["getitem", "get", "get_versioned", "delete_if_version", "delitem", "pop"])
def test_huge_key_reads_say_absent_or_key_too_large(cache, op):
    # A key that can never be stored is absent; reporting KeyTooLarge is also acceptable.
    key = "k" * 70_000
    try:
        result = KEY_OPS[op](cache, key)
    except (KeyError, slabcache.KeyTooLarge):
        pass
    else:
        assert result in (None, False)
    assert ("k" * 70_000 in cache) is False
    assert_usable(cache)


def test_longest_key_fits(cache):
    key = "k" * slabcache.MAX_KEY_LEN
    cache[key] = 1
    assert cache[key] == 1
    assert list(cache) == [key]
    two_byte = "é" * (slabcache.MAX_KEY_LEN // 2)  # UTF-8 length counts
    cache[two_byte] = 2
    assert cache[two_byte] == 2


# --- values ---------------------------------------------------------------------------------

TOO_BIG = [b"x" * (2 << 20), bytearray(2 << 20), "s" * (2 << 20), [b"x" * 1000] * 2000]

VALUE_OPS = {
    "setitem": lambda c, v: c.__setitem__("k", v),
    "set": lambda c, v: c.set("k", v),
    "replace": lambda c, v: c.replace("k", v),
    "set_tagged": lambda c, v: c.set_tagged("k", v, ["t"]),
    "compare_and_swap": lambda c, v: c.compare_and_swap("k", c.get_versioned("k")[1], v),
}


@pytest.mark.parametrize("op", sorted(VALUE_OPS))
@pytest.mark.parametrize("value", TOO_BIG, ids=["bytes", "bytearray", "str", "list"])
def test_value_over_the_limit_raises_value_too_large_and_keeps_the_old_value(cache, op, value):
    version = cache.set("k", "old")
    with pytest.raises(slabcache.ValueTooLarge) as info:
        VALUE_OPS[op](cache, value)
    assert isinstance(info.value, ValueError)
    assert cache.get_versioned("k") == ("old", version)
    assert_usable(cache)


def test_value_over_the_limit_on_a_new_key(cache):
    with pytest.raises(slabcache.ValueTooLarge):
        cache.add("new", b"x" * (2 << 20))
    assert "new" not in cache


def test_largest_value_fits(cache):
    cache["k"] = b"x" * ((1 << 20) - 1)  # one byte goes to the value's type tag
    assert len(cache["k"]) == (1 << 20) - 1


@pytest.mark.parametrize(
    "value",
    [threading.Lock(), (lambda: 1), (i for i in range(3))],
    ids=["lock", "lambda", "generator"],
)
def test_unpicklable_value_raises_pickles_own_error(cache, value):
    with pytest.raises(Exception) as expected:
        pickle.dumps(value, protocol=5)
    cache["k"] = "old"
    with pytest.raises(type(expected.value)):
        cache["k"] = value
    assert cache["k"] == "old"
    with pytest.raises(type(expected.value)):
        cache["inner"] = {"nested": [value]}
    assert "inner" not in cache
    assert_usable(cache)


def test_self_referencing_list_does_not_crash(cache):
    loop = [1]
    loop.append(loop)
    cache["loop"] = loop
    back = cache["loop"]
    assert back[0] == 1 and back[1] is back


def test_huge_int(cache):
    n = 7**5000
    cache["n"] = n
    cache["m"] = -n
    assert cache["n"] == n and cache["m"] == -n


def test_reduce_that_raises(cache):
    class Bad:
        def __reduce__(self):
            raise RuntimeError("no pickling today")

    with pytest.raises(RuntimeError, match="no pickling today"):
        cache["k"] = Bad()
    assert "k" not in cache
    assert_usable(cache)


class _Reentrant:
    """Pickling it writes to the cache being written to."""

    cache = None

    def __reduce__(self):
        _Reentrant.cache[f"side{id(self)}"] = b"side effect" * 100
        _Reentrant.cache.get("k")
        return (_Rebuilt, (5,))


class _Rebuilt:
    def __init__(self, n):
        self.n = n


def test_serializer_calling_back_into_the_cache(cache):
    _Reentrant.cache = cache
    try:
        obj = _Reentrant()
        cache["k"] = obj
        back = cache["k"]
        assert type(back) is _Rebuilt and back.n == 5
        assert cache[f"side{id(obj)}"] == b"side effect" * 100
    finally:
        _Reentrant.cache = None


# --- serializers ----------------------------------------------------------------------------


class _Failing:
    class DumpsError(Exception):
        pass

    class LoadsError(Exception):
        pass

    def __init__(self):
        self.fail_dumps = False
        self.fail_loads = False
        self.bad_type = False

    def dumps(self, obj):
        if self.fail_dumps:
            raise self.DumpsError("cannot dump")
        if self.bad_type:
            return "not bytes"
        return pickle.dumps(obj)

    def loads(self, data):
        if self.fail_loads:
            raise self.LoadsError("cannot load")
        return pickle.loads(data)


def test_serializer_whose_dumps_raises():
    ser = _Failing()
    c = slabcache.Cache(max_bytes=BIG, serializer=ser)
    c["k"] = {1, 2}
    ser.fail_dumps = True
    with pytest.raises(_Failing.DumpsError, match="cannot dump"):
        c["k"] = {3}
    with pytest.raises(_Failing.DumpsError):
        c.get_or_load("loaded", lambda k: {4})
    assert "loaded" not in c
    assert c.get_or_load("raw", lambda k: b"raw") == b"raw"  # raw values skip the serializer
    ser.fail_dumps = False
    assert c["k"] == {1, 2}
    assert_usable(c)


def test_serializer_whose_loads_raises():
    ser = _Failing()
    c = slabcache.Cache(max_bytes=BIG, serializer=ser)
    c["k"] = {1, 2}
    ser.fail_loads = True
    with pytest.raises(_Failing.LoadsError, match="cannot load"):
        c["k"]
    with pytest.raises(_Failing.LoadsError):
        c.get("k")
    assert "k" in c
    c["plain"] = "str values skip the serializer"
    assert c["plain"] == "str values skip the serializer"
    ser.fail_loads = False
    assert c["k"] == {1, 2}


def test_serializer_dumps_returning_non_bytes_is_a_type_error():
    ser = _Failing()
    ser.bad_type = True
    c = slabcache.Cache(max_bytes=BIG, serializer=ser)
    with pytest.raises(TypeError):
        c["k"] = {1}
    assert "k" not in c
    assert_usable(c)


# --- timers ---------------------------------------------------------------------------------


def test_timer_going_backwards_never_moves_the_clock_back():
    t = FakeTimer(start=100.0)
    c = slabcache.Cache(max_bytes=BIG, timer=t)
    t.now = 110.0
    c.set("k", 1, ttl=5)  # written at clock 10, expires at 15
    t.now = 50.0  # backwards: the clock stays at 10
    assert c["k"] == 1
    c.set("j", 2, ttl=5)  # written at clock 10 too
    t.now = 114.0
    assert c["k"] == 1 and c["j"] == 2
    t.now = 115.0
    assert "k" not in c and "j" not in c
    t.now = -1e9  # far before the start
    c["after"] = 3
    assert c["after"] == 3
    assert_usable(c)


def test_timer_that_raises():
    class TimerError(Exception):
        pass

    state = {"fail": False, "now": 0.0}

    def timer():
        if state["fail"]:
            raise TimerError("clock broke")
        return state["now"]

    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c["before"] = 1
    state["fail"] = True
    for op in (
        lambda: c.__setitem__("k", 1),
        lambda: c.set("k", 1),
        lambda: c["before"],
        lambda: c.get("before"),
        lambda: c.get_or_load("k", lambda key: 1),
        lambda: c.set_tagged("k", 1, ["t"]),
    ):
        with pytest.raises(TimerError, match="clock broke"):
            op()
    state["fail"] = False
    assert "k" not in c  # nothing was done
    assert c["before"] == 1
    assert_usable(c)


def test_timer_that_raises_during_construction():
    def timer():
        raise ZeroDivisionError("no time")

    with pytest.raises(ZeroDivisionError):
        slabcache.Cache(max_bytes=BIG, timer=timer)


@pytest.mark.parametrize("reading, error", [("soon", TypeError), (None, TypeError), (float("nan"), ValueError)])
def test_timer_returning_a_bad_reading(reading, error):
    state = {"reading": 0.0}
    c = slabcache.Cache(max_bytes=BIG, timer=lambda: state["reading"])
    state["reading"] = reading
    with pytest.raises(error):
        c["k"] = 1
    state["reading"] = 1.0
    assert "k" not in c
    assert_usable(c)


def test_timer_returning_an_int_is_fine():
    state = {"now": 0}
    c = slabcache.Cache(max_bytes=BIG, timer=lambda: state["now"])
    c.set("k", 1, ttl=2)
    state["now"] = 1
    assert c["k"] == 1
    state["now"] = 3
    assert "k" not in c


# --- loaders --------------------------------------------------------------------------------


def test_non_callable_loader(cache):
    with pytest.raises(TypeError):
        cache.get_or_load("k", 42)
    assert "k" not in cache
    assert_usable(cache)


def test_loader_raising_a_base_exception(cache):
    class Stop(BaseException):
        pass

    def loader(key):
        raise Stop("halt")

    with pytest.raises(Stop):
        cache.get_or_load("k", loader)
    assert "k" not in cache
    assert cache.get_or_load("k", lambda k: 1) == 1


def test_loader_that_clears_the_cache(cache):
    cache["other"] = 1

    def loader(key):
        cache.clear()
        return "v"

    assert cache.get_or_load("k", loader) == "v"
    assert "other" not in cache
    assert_usable(cache)


def test_async_loader_returning_an_awaitable_of_an_unencodable_value(cache):
    async def loader(key):
        await asyncio.sleep(0)
        return threading.Lock()

    with pytest.raises(TypeError):
        run_async(lambda: cache.get_or_load_async("k", loader))
    assert "k" not in cache

    async def good(key):
        return 1

    assert run_async(lambda: cache.get_or_load_async("k", good)) == 1
