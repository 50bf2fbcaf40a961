"""Every method and error of `slabcache.Cache` (issue 14, "API"), one behaviour per test."""

from __future__ import annotations

import collections.abc
import enum
import math
import pickle

import pytest

import slabcache
from conftest import BIG, FakeTimer


# --- module surface -------------------------------------------------------------------------


def test_exception_hierarchy():
    assert issubclass(slabcache.Error, Exception)
    for cls in (slabcache.KeyTooLarge, slabcache.ValueTooLarge):
        assert issubclass(cls, slabcache.Error)
        assert issubclass(cls, ValueError)
    assert issubclass(slabcache.VersionMismatch, slabcache.Error)
    assert issubclass(slabcache.Exists, slabcache.Error)
    assert issubclass(slabcache.RecursiveLoad, slabcache.Error)


def test_cache_is_a_mutable_mapping(cache):
    assert isinstance(cache, collections.abc.MutableMapping)
    assert issubclass(slabcache.Cache, collections.abc.MutableMapping)


def test_cache_is_not_hashable(cache):
    with pytest.raises(TypeError):
        hash(cache)


def test_max_key_len_is_exported():
    assert slabcache.MAX_KEY_LEN == 65534


# --- constructor ----------------------------------------------------------------------------


def test_defaults():
    c = slabcache.Cache()
    assert c.stats().max_bytes == 64 << 20
    c["a"] = 1
    assert c["a"] == 1


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(max_bytes=1 << 20), "max_bytes"),
        (dict(max_bytes=0), "max_bytes"),
        (dict(max_bytes=-1), "max_bytes"),
        (dict(max_entries=0), "max_entries"),
        (dict(max_entries=-5), "max_entries"),
        (dict(ttl=0), "ttl"),
        (dict(ttl=-1.5), "ttl"),
        (dict(ttl=float("nan")), "ttl"),
        (dict(ttl_jitter=1.0), "ttl_jitter"),
        (dict(ttl_jitter=-0.1), "ttl_jitter"),
        (dict(ttl_jitter=float("nan")), "ttl_jitter"),
        (dict(serializer=object()), "serializer"),
    ],
)
def test_invalid_settings_raise_value_error_naming_the_setting(kwargs, word):
    with pytest.raises(ValueError) as info:
        slabcache.Cache(**kwargs)
    assert word in str(info.value), str(info.value)


def test_timer_must_be_callable():
    with pytest.raises(TypeError):
        slabcache.Cache(timer=5)


def test_max_entries_bounds_the_number_of_entries():
    c = slabcache.Cache(max_bytes=BIG, max_entries=10)
    for i in range(200):
        c[f"k{i}"] = i
    assert 0 < len(c) <= 10
    assert c.stats().evictions >= 190
    assert c["k199"] == 199  # the newest write is in


def test_max_bytes_property(cache):
    assert cache.max_bytes == BIG


def test_repr_mentions_the_cache(cache):
    cache["a"] = 1
    assert "Cache" in repr(cache)


# --- basic mapping operations ---------------------------------------------------------------


def test_setitem_getitem_delitem_contains_len(cache):
    assert len(cache) == 0
    cache["a"] = b"1"
    cache[b"b"] = "2"
    assert cache["a"] == b"1"
    assert cache[b"b"] == "2"
    assert "a" in cache and b"b" in cache
    assert "zz" not in cache
    assert len(cache) == 2
    del cache["a"]
    assert "a" not in cache
    assert len(cache) == 1
    with pytest.raises(KeyError):
        cache["a"]
    with pytest.raises(KeyError):
        del cache["a"]


def test_keyerror_carries_the_key(cache):
    with pytest.raises(KeyError) as info:
        cache["missing"]
    assert info.value.args == ("missing",)


def test_str_and_bytes_keys_are_different(cache):
    cache["a"] = 1
    cache[b"a"] = 2
    assert cache["a"] == 1 and cache[b"a"] == 2
    assert len(cache) == 2
    del cache["a"]
    assert "a" not in cache and cache[b"a"] == 2


def test_iteration_gives_keys_back_with_their_type(cache):
    cache["x"] = 1
    cache[b"x"] = 2
    cache["é漢"] = 3
    keys = list(cache)
    assert len(keys) == 3
    assert set(keys) == {"x", b"x", "é漢"}
    assert sorted(type(k).__name__ for k in keys) == ["bytes", "str", "str"]


def test_str_subclass_key_comes_back_as_str(cache):
    class Name(str):
        pass

    cache[Name("n")] = 1
    assert cache["n"] == 1
    assert [type(k) for k in cache] == [str]


def test_empty_keys(cache):
    cache[""] = 1
    cache[b""] = 2
    assert cache[""] == 1 and cache[b""] == 2
    assert set(cache) == {"", b""}


def test_get_with_default(cache):
    assert cache.get("nope") is None
    sentinel = object()
    assert cache.get("nope", sentinel) is sentinel
    assert cache.get("nope", default=7) == 7
    cache["k"] = 0
    assert cache.get("k", 9) == 0


def test_clear(cache):
    for i in range(100):
        cache[f"k{i}"] = i
    assert len(cache) == 100
    cache.clear()
    assert len(cache) == 0
    assert list(cache) == []
    assert cache.get("k5") is None
    cache["after"] = 1  # still usable
    assert cache["after"] == 1


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64,
        -(2**200) + 17,
        1.5,
        -0.0,
        float("inf"),
        "",
        "héllo wörld ☃",
        b"",
        b"\x00\xff" * 10,
        (),
        (1, "a", b"b", None, 2.5),
        [],
        [1, [2, [3, [4]]]],
        {},
        {"a": 1, b"b": [1, 2], 3: (4, 5), None: {"x": None}, 1.5: True},
        {(1, 2): "tuple key"},
    ],
)
def test_compact_values_come_back_equal_with_the_same_types(cache, value):
    cache["v"] = value
    back = cache["v"]
    assert back == value
    assert type(back) is type(value)

    def types(v):
        if isinstance(v, (list, tuple)):
            return (type(v), [types(x) for x in v])
        if isinstance(v, dict):
            return (dict, [(types(k), types(x)) for k, x in v.items()])
        return type(v)

    assert types(back) == types(value)


def test_negative_zero_keeps_its_sign(cache):
    cache["z"] = -0.0
    assert math.copysign(1.0, cache["z"]) == -1.0


def test_nan_comes_back_nan(cache):
    cache["n"] = float("nan")
    assert math.isnan(cache["n"])


@pytest.mark.parametrize(
    "value", [b"raw", bytearray(b"raw"), memoryview(b"raw"), memoryview(b"xxrawxx")[2:5]]
)
def test_bytes_like_values_come_back_as_bytes(cache, value):
    cache["b"] = value
    back = cache["b"]
    assert type(back) is bytes
    assert back == b"raw"


def test_noncontiguous_memoryview(cache):
    cache["b"] = memoryview(b"abcdef")[::2]
    assert cache["b"] == b"ace"


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class Color(enum.IntEnum):
    RED = 1


class MyDict(dict):
    pass


@pytest.mark.parametrize(
    "value",
    [
        Point(1, 2),
        {1, 2, 3},
        frozenset({"a"}),
        complex(1, 2),
        MyDict(a=1),
        [Point(3, 4), 1],
        {"p": Point(5, 6)},
    ],
)
def test_other_values_go_through_pickle_and_come_back_equal_not_identical(cache, value):
    cache["o"] = value
    back = cache["o"]
    assert back == value
    assert type(back) is type(value)
    assert back is not value


def test_int_enum_is_not_compact_encoded(cache):
    # An exact-type rule: an IntEnum member is an int subclass, so it must come back as itself
    # (through pickle), not as a plain int.
    cache["e"] = Color.RED
    assert cache["e"] is Color.RED


def test_deep_nesting_falls_back_to_the_serializer(cache):
    value = 0
    for _ in range(100):
        value = [value]
    cache["deep"] = value
    assert cache["deep"] == value


def test_a_value_is_a_copy(cache):
    value = [1, {"a": [2]}]
    cache["l"] = value
    value.append(99)
    value[1]["a"].append(3)
    assert cache["l"] == [1, {"a": [2]}]
    first = cache["l"]
    first.append("changed")
    assert cache["l"] == [1, {"a": [2]}]
    assert cache["l"] is not cache["l"]


def test_custom_serializer_is_used_for_other_values():
    calls = []

    class Ser:
        def dumps(self, obj):
            calls.append("dumps")
            return pickle.dumps(obj)

        def loads(self, data):
            calls.append("loads")
            return pickle.loads(data)

    c = slabcache.Cache(max_bytes=BIG, serializer=Ser())
    c["p"] = Point(1, 2)
    assert c["p"] == Point(1, 2)
    assert calls == ["dumps", "loads"]
    # Values with their own encoding do not reach the serializer.
    c["b"] = b"x"
    c["i"] = [1, 2]
    assert c["b"] == b"x" and c["i"] == [1, 2]
    assert calls == ["dumps", "loads"]


def test_any_object_with_dumps_and_loads_is_a_serializer():
    import json
    import types

    ser = types.SimpleNamespace(
        dumps=lambda obj: json.dumps(sorted(obj)).encode(), loads=json.loads
    )
    c = slabcache.Cache(max_bytes=BIG, serializer=ser)
    c["s"] = {2, 1}
    assert c["s"] == [1, 2]  # what this serializer makes of a set


# --- set / add / replace --------------------------------------------------------------------


def test_set_returns_increasing_versions(cache):
    v1 = cache.set("k", 1)
    v2 = cache.set("k", 2)
    v3 = cache.set("other", 3)
    assert isinstance(v1, int) and v1 > 0
    assert v2 > v1
    assert cache.get_versioned("k") == (2, v2)
    assert cache.get_versioned("other") == (3, v3)


def test_setitem_bumps_the_version(cache):
    v1 = cache.set("k", 1)
    cache["k"] = 2
    value, v2 = cache.get_versioned("k")
    assert value == 2 and v2 > v1


def test_add(cache):
    v = cache.add("k", "first")
    assert isinstance(v, int) and v > 0
    with pytest.raises(slabcache.Exists):
        cache.add("k", "second")
    assert cache["k"] == "first"
    assert cache.get_versioned("k") == ("first", v)
    del cache["k"]
    assert cache.add("k", "third") > 0
    assert cache["k"] == "third"


def test_replace(cache):
    with pytest.raises(KeyError):
        cache.replace("k", 1)
    assert "k" not in cache
    v1 = cache.set("k", 1)
    v2 = cache.replace("k", 2)
    assert v2 > v1
    assert cache.get_versioned("k") == (2, v2)


def test_get_versioned_absent(cache):
    assert cache.get_versioned("nope") is None


# --- compare_and_swap / delete_if_version ---------------------------------------------------


def test_compare_and_swap_succeeds_on_the_current_version(cache):
    v1 = cache.set("k", 1)
    v2 = cache.compare_and_swap("k", v1, 2)
    assert v2 > v1
    assert cache.get_versioned("k") == (2, v2)


def test_compare_and_swap_mismatch_reports_the_current_version(cache):
    v1 = cache.set("k", 1)
    v2 = cache.set("k", 2)
    with pytest.raises(slabcache.VersionMismatch) as info:
        cache.compare_and_swap("k", v1, 3)
    assert info.value.current == v2
    assert cache.get_versioned("k") == (2, v2)
    assert cache.stats().cas_failures >= 1


def test_compare_and_swap_with_version_zero_is_a_mismatch(cache):
    v = cache.set("k", 1)
    with pytest.raises(slabcache.VersionMismatch) as info:
        cache.compare_and_swap("k", 0, 2)
    assert info.value.current == v


def test_compare_and_swap_absent_raises_key_error(cache):
    with pytest.raises(KeyError):
        cache.compare_and_swap("nope", 1, 2)
    with pytest.raises(KeyError):
        cache.compare_and_swap("nope", 0, 2)
    assert "nope" not in cache


def test_version_mismatch_pickles_with_current():
    e = slabcache.VersionMismatch(42)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is slabcache.VersionMismatch and back.current == 42


def test_compare_and_swap_with_ttl(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    v = c.set("k", 1)
    c.compare_and_swap("k", v, 2, ttl=5)
    timer.advance(4.9)
    assert c["k"] == 2
    timer.advance(0.2)
    assert "k" not in c


def test_delete_if_version(cache):
    v1 = cache.set("k", 1)
    v2 = cache.set("k", 2)
    assert cache.delete_if_version("k", v1) is False
    assert cache["k"] == 2
    assert cache.delete_if_version("k", v2) is True
    assert "k" not in cache
    assert cache.delete_if_version("k", v2) is False
    assert cache.delete_if_version("never", 1) is False
    assert cache.delete_if_version("never", 0) is False


def test_negative_version_is_refused(cache):
    cache.set("k", 1)
    with pytest.raises((OverflowError, ValueError, TypeError)):
        cache.compare_and_swap("k", -1, 2)
    with pytest.raises((OverflowError, ValueError, TypeError)):
        cache.delete_if_version("k", -1)
    assert cache["k"] == 1


# --- tags -----------------------------------------------------------------------------------


def test_set_tagged_and_invalidate_tag(cache):
    v = cache.set_tagged("a", 1, ["t1", "t2"])
    assert isinstance(v, int) and v > 0
    cache.set_tagged("b", 2, ["t1"])
    cache.set_tagged(b"c", 3, [b"t2"])
    cache["plain"] = 4
    assert cache["a"] == 1
    assert cache.invalidate_tag("t1") == 2
    assert "a" not in cache and "b" not in cache
    assert cache[b"c"] == 3 and cache["plain"] == 4
    assert cache.invalidate_tag("t1") == 0
    # "t2" (str) and b"t2" (bytes) are different tags, as keys are.
    assert cache.invalidate_tag(b"t2") == 1
    assert b"c" not in cache
    assert cache.invalidate_tag("never") == 0


def test_set_tagged_accepts_any_iterable_and_ttl(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c.set_tagged("a", 1, (t for t in ["g"]), ttl=10)
    c.set_tagged("b", 2, {"g"})
    timer.advance(11)
    assert "a" not in c
    assert c["b"] == 2
    assert c.invalidate_tag("g") <= 1
    assert "b" not in c


@pytest.mark.parametrize("tags", ["t", b"t"])
def test_bare_string_tags_are_refused(cache, tags):
    with pytest.raises(TypeError):
        cache.set_tagged("a", 1, tags)
    assert "a" not in cache


@pytest.mark.parametrize("tags", [[1], ["ok", None], 5])
def test_bad_tag_types_are_refused(cache, tags):
    with pytest.raises(TypeError):
        cache.set_tagged("a", 1, tags)
    assert "a" not in cache
    with pytest.raises(TypeError):
        cache.invalidate_tag(1)


# --- hottest --------------------------------------------------------------------------------


def test_hottest_without_tracking_is_empty(cache):
    cache["a"] = 1
    for _ in range(1000):
        cache["a"]
    assert cache.hottest(5) == []


def test_hottest_finds_the_hot_key():
    c = slabcache.Cache(max_bytes=BIG, track_hot_keys=True)
    for i in range(50):
        c[f"cold{i}"] = i
    c[b"hot"] = b"h"
    for i in range(20000):
        c[b"hot"]
        if i % 400 == 0:
            c[f"cold{i // 400}"]
    top = c.hottest(3)
    assert isinstance(top, list)
    assert 1 <= len(top) <= 3
    key, count = top[0]
    assert key == b"hot" and type(key) is bytes
    assert isinstance(count, int) and count > 0
    counts = [n for _, n in top]
    assert counts == sorted(counts, reverse=True)
    assert c.hottest(0) == []


# --- stats ----------------------------------------------------------------------------------


def test_stats_counts(cache):
    s0 = cache.stats()
    assert isinstance(s0, slabcache.Stats)
    assert s0.hits == s0.misses == s0.entries == 0
    assert s0.hit_ratio == 0.0
    cache["a"] = b"x" * 100
    cache["a"]
    cache["a"]
    cache.get("b")
    s = cache.stats()
    assert s.hits == 2 and s.misses == 1
    assert s.entries == 1
    assert s.inserts >= 1
    assert s.payload_bytes >= 100
    assert s.max_bytes == BIG
    assert s.hit_ratio == pytest.approx(2 / 3)
    del cache["a"]
    assert cache.stats().removals == 1
    assert cache.stats().entries == 0


def test_stats_has_every_attribute(cache):
    s = cache.stats()
    for name in (
        "hits", "misses", "inserts", "updates", "removals", "evictions", "expirations",
        "cas_failures", "entries", "payload_bytes", "arena_bytes_used", "max_bytes",
        "fixed_overhead_bytes", "loads", "load_waits", "listener_panics", "hit_ratio",
    ):
        assert hasattr(s, name), name
    with pytest.raises(AttributeError):
        s.hits = 5  # frozen


def test_stats_updates_counter(cache):
    cache["a"] = 1
    cache["a"] = 2
    assert cache.stats().updates == 1


# --- TTL ------------------------------------------------------------------------------------


def test_ttl_expiry_with_timer(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c.set("short", 1, ttl=10)
    c.set("long", 2, ttl=100)
    c["forever"] = 3
    timer.advance(9.99)
    assert c["short"] == 1
    timer.advance(0.02)
    assert "short" not in c
    assert c.get("short") is None
    with pytest.raises(KeyError):
        c["short"]
    assert c.get_versioned("short") is None
    assert c["long"] == 2
    timer.advance(1e6)
    assert "long" not in c
    assert c["forever"] == 3
    # An expired entry is counted once reclaimed, e.g. by a write over its key.
    c["short"] = 5
    assert c.stats().expirations >= 1
    assert c["short"] == 5


def test_expiry_boundary_is_exclusive(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c.set("k", 1, ttl=2)
    timer.advance(2)
    assert "k" not in c


def test_default_ttl_and_override(timer):
    c = slabcache.Cache(max_bytes=BIG, ttl=5, timer=timer)
    c["default"] = 1
    c.set("longer", 2, ttl=50)
    c.set("never", 3, ttl=math.inf)
    c.add("added", 4)
    timer.advance(6)
    assert "default" not in c and "added" not in c
    assert c["longer"] == 2 and c["never"] == 3
    timer.advance(1e9)
    assert "longer" not in c
    assert c["never"] == 3


def test_ttl_jitter_stays_within_bounds(timer):
    c = slabcache.Cache(max_bytes=BIG, ttl=100, ttl_jitter=0.5, timer=timer)
    for i in range(200):
        c[f"k{i}"] = i
    timer.advance(99.9)
    assert len([k for k in (f"k{i}" for i in range(200)) if k in c]) == 200
    timer.advance(50.2)  # past 100 * (1 + 0.5)
    assert not any(f"k{i}" in c for i in range(200))


def test_ttl_jitter_spreads_expiry(timer):
    c = slabcache.Cache(max_bytes=BIG, ttl=100, ttl_jitter=0.5, timer=timer)
    for i in range(200):
        c[f"k{i}"] = i
    timer.advance(125)
    alive = sum(f"k{i}" in c for i in range(200))
    assert 0 < alive < 200


def test_rewrite_resets_ttl(timer):
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c.set("k", 1, ttl=10)
    timer.advance(8)
    c.set("k", 2, ttl=10)
    timer.advance(8)
    assert c["k"] == 2


@pytest.mark.parametrize("bad", [0, -1, float("nan"), -math.inf])
def test_invalid_per_call_ttl(cache, bad):
    for call in (
        lambda: cache.set("k", 1, ttl=bad),
        lambda: cache.add("k", 1, ttl=bad),
        lambda: cache.set_tagged("k", 1, ["t"], ttl=bad),
        lambda: cache.get_or_load("k", lambda k: 1, ttl=bad),
    ):
        with pytest.raises(ValueError):
            call()
    assert "k" not in cache


def test_timer_is_read_and_relative(timer):
    start_calls = timer.calls
    c = slabcache.Cache(max_bytes=BIG, timer=timer)
    c.set("k", 1, ttl=1)
    assert timer.calls > start_calls
    # Only differences matter: a timer starting at a huge reading behaves the same.
    big = FakeTimer(start=1e9)
    c2 = slabcache.Cache(max_bytes=BIG, timer=big)
    c2.set("k", 1, ttl=1)
    big.advance(0.5)
    assert c2["k"] == 1
    big.advance(0.6)
    assert "k" not in c2
