"""`Cache` as a `collections.abc.MutableMapping`: the mixin methods, and CPython's own
mapping-protocol tests (`test.mapping_tests.BasicTestMappingProtocol`) where this Python ships
them."""

from __future__ import annotations

import pytest

import slabcache
from conftest import BIG

# --- mixin methods --------------------------------------------------------------------------


def test_pop(cache):
    cache["a"] = [1, 2]
    assert cache.pop("a") == [1, 2]
    assert "a" not in cache
    with pytest.raises(KeyError):
        cache.pop("a")
    assert cache.pop("a", "dflt") == "dflt"
    assert cache.pop(b"a", None) is None


def test_popitem_empties_the_cache(cache):
    data = {"a": 1, b"b": "2", "c": (3,)}
    cache.update(data)
    seen = {}
    while True:
        try:
            k, v = cache.popitem()
        except KeyError:
            break
        assert k not in cache
        seen[k] = v
    assert seen == data
    assert len(cache) == 0
    with pytest.raises(KeyError):
        cache.popitem()


def test_setdefault(cache):
    assert cache.setdefault("a", 1) == 1
    assert cache.setdefault("a", 2) == 1
    assert cache["a"] == 1
    assert cache.setdefault("n") is None
    assert "n" in cache and cache["n"] is None


def test_update_forms(cache):
    cache.update({"a": 1})
    cache.update([(b"b", 2)])
    cache.update(c=3, d=b"4")
    cache.update({"a": 10}, e=5)
    assert dict(cache) == {"a": 10, b"b": 2, "c": 3, "d": b"4", "e": 5}
    other = slabcache.Cache(max_bytes=BIG)
    other.update(cache)
    assert other == cache


def test_update_with_bad_key_type_raises_type_error(cache):
    with pytest.raises(TypeError) as info:
        cache.update({1: "x"})
    assert "int" in str(info.value)


def test_keys_items_values(cache):
    data = {"a": 1, b"a": b"bytes", "list": [1, 2], "none": None}
    cache.update(data)
    assert set(cache.keys()) == set(data.keys())
    assert sorted(map(repr, cache.values())) == sorted(map(repr, data.values()))
    assert sorted(map(repr, cache.items())) == sorted(map(repr, data.items()))
    assert len(cache.keys()) == len(cache.items()) == len(cache.values()) == 4
    assert "a" in cache.keys() and "zz" not in cache.keys()
    assert ("a", 1) in cache.items() and ("a", 2) not in cache.items()
    assert [1, 2] in cache.values()


def test_views_are_live(cache):
    keys, items, values = cache.keys(), cache.items(), cache.values()
    cache["x"] = 1
    assert list(keys) == ["x"] and list(items) == [("x", 1)] and list(values) == [1]
    del cache["x"]
    assert list(keys) == [] and list(items) == [] and list(values) == []


def test_keys_set_operations(cache):
    cache.update({"a": 1, "b": 2})
    assert cache.keys() & {"a", "z"} == {"a"}
    assert cache.keys() | {"z"} == {"a", "b", "z"}


def test_equality(cache):
    assert cache == {}
    cache.update({"a": 1, b"b": [2]})
    assert cache == {"a": 1, b"b": [2]}
    assert cache != {"a": 1}
    assert cache != {"a": 2, b"b": [2]}
    assert cache != {"a": 1, "b": [2]}  # str "b" is not bytes b"b"
    other = slabcache.Cache(max_bytes=BIG)
    other.update({b"b": [2], "a": 1})
    assert cache == other
    other["a"] = 1.5
    assert cache != other
    assert (cache == 5) is False
    assert cache != [("a", 1), (b"b", [2])]


def test_dict_of_cache(cache):
    cache.update({"a": (1, 2), b"b": {"x": None}})
    assert dict(cache) == {"a": (1, 2), b"b": {"x": None}}


def test_bool(cache):
    assert not cache
    cache["a"] = 0
    assert cache


def test_items_skip_a_key_removed_during_iteration(cache):
    for i in range(200):
        cache[f"k{i}"] = i
    seen = []
    for k, v in cache.items():
        seen.append((k, v))
        # Remove a later key: the iterator may or may not have read it yet, but must not
        # raise KeyError, and every pair it yields must be consistent.
        cache.pop(f"k{199 - int(k[1:])}", None)
    assert seen
    for k, v in seen:
        assert k == f"k{v}"


# --- CPython's mapping-protocol tests -------------------------------------------------------

mapping_tests = pytest.importorskip("test.mapping_tests")


class _CacheProtocolBase(mapping_tests.BasicTestMappingProtocol):
    # A fresh cache big enough that nothing is evicted. No test method of the base class
    # is overridden: every one applies to Cache as it is.
    type2test = staticmethod(lambda: slabcache.Cache(max_bytes=BIG))


class TestMappingProtocolStrKeys(_CacheProtocolBase):
    # The base class's test_update sorts the items of the mapping, and str and bytes do not
    # compare, so each class keeps to one key type (both are covered, by two classes).
    # The values are ones the cache gives back equal (str, bytes and compact-encoded ones)
    # and hashable: test_read puts values() into a set.
    # __init__ takes the last pair as "not in the mapping" and the one before as "in it".
    def _reference(self):
        return {
            "1": "2",
            "key1": b"value1",
            "key2": (1, 2, 3),
            "unicodé": ("nested", (1, 2.5, None, True)),
            "absent": "the pair the base class keeps out of the mapping",
        }


class TestMappingProtocolBytesKeys(_CacheProtocolBase):
    def _reference(self):
        return {
            b"1": b"2",
            b"key1": "value1",
            b"key2": (1, (2,), 3),
            b"\x00\xff": 2**70,
            b"absent": (None, False),
        }
