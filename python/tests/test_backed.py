"""`slabcache.Backed`: a cache in front of a Python source (read-through, write-through,
write-around, write-behind, stale-while-revalidate, refresh-ahead, negative caching)."""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

import slabcache
from conftest import BIG, FakeTimer, call_with_timeout, run_threads, wait_until


class DictSource:
    """A source of truth over a dict, recording every call. `load` raises KeyError for a key
    it does not have; `fail_store(n)` (n counts store calls from 1) says which stores fail."""

    class StoreError(Exception):
        pass

    def __init__(self, data=None, load_delay=0.0):
        self.data = dict(data or {})
        self.lock = threading.Lock()
        self.loads = []
        self.stores = []
        self.deletes = []
        self.load_delay = load_delay
        self.fail_store = None
        self.fail_load = None
        self.gate = None  # a threading.Event that loads wait for (5 s at most)

    def load(self, key):
        with self.lock:
            self.loads.append(key)
        if self.load_delay:
            time.sleep(self.load_delay)
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail_load is not None:
            raise self.fail_load
        with self.lock:
            return self.data[key]

    def store(self, key, value):
        with self.lock:
            self.stores.append((key, value))
            n = len(self.stores)
        if self.fail_store is not None and self.fail_store(n):
            raise DictSource.StoreError(f"store {n} of {key!r} failed")
        with self.lock:
            self.data[key] = value

    def delete(self, key):
        with self.lock:
            self.deletes.append(key)
            self.data.pop(key, None)


def stat(backed, name):
    s = backed.stats()
    return s[name] if isinstance(s, dict) else getattr(s, name)


@pytest.fixture
def source():
    return DictSource({"a": 1, b"b": [2, "two"], "obj": {"x": (1, 2)}})


def make(source, timer=None, **kwargs):
    cache = slabcache.Cache(max_bytes=BIG, timer=timer)
    return slabcache.Backed(cache, source, **kwargs)


# --- construction ---------------------------------------------------------------------------


def test_attributes(source):
    cache = slabcache.Cache(max_bytes=BIG)
    b = slabcache.Backed(cache, source)
    assert b.cache is cache
    assert b.source is source
    b.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(write_mode="sideways"),
        dict(ttl=0),
        dict(ttl=-5),
        dict(negative_ttl=-1),
        dict(stale_while_revalidate=0),
        dict(write_mode="behind", when_full="drop"),
    ],
)
def test_invalid_settings_raise_value_error(source, kwargs):
    with pytest.raises(ValueError):
        make(source, **kwargs)


def test_source_without_the_methods_is_a_type_error():
    class NoStore:
        def load(self, key):
            return 1

        def delete(self, key):
            pass

    with pytest.raises(TypeError) as info:
        make(NoStore())
    assert "store" in str(info.value)


def test_bad_key_type(source):
    b = make(source)
    for call in (lambda: b.get(1), lambda: b.put(None, 1), lambda: b.delete(1.5)):
        with pytest.raises(TypeError):
            call()
    assert b.get("a") == 1
    b.close()


# --- read-through ---------------------------------------------------------------------------


def test_read_through_loads_once(source):
    b = make(source)
    assert b.get("a") == 1
    assert b.get("a") == 1
    assert b.get(b"b") == [2, "two"]
    assert b.get("obj") == {"x": (1, 2)}
    assert source.loads == ["a", b"b", "obj"]
    assert type(source.loads[1]) is bytes  # the source sees keys as given
    assert stat(b, "loads") == 3
    b.close()


def test_missing_key_raises_key_error_or_gives_the_default(source):
    b = make(source)
    with pytest.raises(KeyError):
        b.get("nope")
    assert b.get("nope", "dflt") == "dflt"
    b.close()


def test_explicit_none_default_is_returned(source):
    # As dict.get and Cache.get: a default given as None is a default, not "no default".
    b = make(source)
    assert b.get("nope", None) is None
    assert b.get("nope", default=None) is None
    b.close()


def test_sixteen_threads_one_slow_load(source):
    source.load_delay = 0.2
    b = make(source)
    results = run_threads(16, lambda i: b.get("a"))
    assert results == [("ok", 1)] * 16
    assert source.loads == ["a"]
    b.close()


def test_load_exception_reaches_every_waiter_and_nothing_is_cached(source):
    source.load_delay = 0.2
    source.fail_load = ConnectionError("database down")
    b = make(source)
    results = run_threads(16, lambda i: b.get("a"))
    assert len(source.loads) == 1
    for status, error in results:
        assert status == "err" and type(error) is ConnectionError
        assert str(error) == "database down"
    assert stat(b, "load_failures") >= 1
    source.fail_load = None
    source.load_delay = 0.0
    assert b.get("a") == 1
    assert len(source.loads) == 2
    b.close()


def test_ttl_reloads_after_expiry(source):
    t = FakeTimer()
    b = make(source, timer=t, ttl=10)
    assert b.get("a") == 1
    source.data["a"] = 100
    t.advance(9)
    assert b.get("a") == 1
    t.advance(2)
    assert b.get("a") == 100
    assert source.loads == ["a", "a"]
    b.close()


def test_negative_ttl_remembers_not_found(source):
    t = FakeTimer()
    b = make(source, timer=t, negative_ttl=5)
    with pytest.raises(KeyError):
        b.get("ghost")
    with pytest.raises(KeyError):
        b.get("ghost")
    assert b.get("ghost", "dflt") == "dflt"
    assert source.loads == ["ghost"]
    assert stat(b, "negative_hits") >= 2
    source.data["ghost"] = "appeared"
    t.advance(4)
    with pytest.raises(KeyError):
        b.get("ghost")
    t.advance(2)
    assert b.get("ghost") == "appeared"
    assert source.loads == ["ghost", "ghost"]
    b.close()


def test_without_negative_ttl_not_found_is_not_remembered(source):
    b = make(source)
    for _ in range(3):
        with pytest.raises(KeyError):
            b.get("ghost")
    assert source.loads == ["ghost"] * 3
    b.close()


def test_a_put_overrides_a_remembered_not_found(source):
    t = FakeTimer()
    b = make(source, timer=t, negative_ttl=60)
    with pytest.raises(KeyError):
        b.get("ghost")
    b.put("ghost", "now here")
    assert b.get("ghost") == "now here"
    b.close()


# --- stale-while-revalidate and refresh-ahead -----------------------------------------------


def test_stale_while_revalidate_serves_stale_and_refreshes_once(source):
    t = FakeTimer()
    b = make(source, timer=t, ttl=10, stale_while_revalidate=60)
    assert b.get("a") == 1
    source.data["a"] = 2
    source.gate = threading.Event()  # the refresh cannot finish until the gate opens
    t.advance(15)  # stale, within the window
    # 8 threads x 5 stale reads: all answered at once with the stale value (a read waiting
    # for the refresh would wait for the gate, and the threads would time out).
    results = run_threads(8, lambda i: [b.get("a") for _ in range(5)], timeout=3)
    assert [r for _, r in results] == [[1] * 5] * 8
    assert wait_until(lambda: len(source.loads) == 2)  # the refresh is running
    source.gate.set()
    call_with_timeout(b.settle, timeout=5)
    assert b.get("a") == 2
    assert source.loads == ["a", "a"]  # one refresh for all those stale reads
    assert stat(b, "refreshes") == 1
    assert stat(b, "stale_served") >= 40
    # Past the window the value is expired: the read waits for a load.
    source.gate = None
    source.data["a"] = 3
    t.advance(10 + 60 + 1)
    assert b.get("a") == 3
    assert source.loads == ["a", "a", "a"]
    b.close()


def test_refresh_ahead_refreshes_before_expiry(source):
    t = FakeTimer()
    b = make(source, timer=t, ttl=10, refresh_ahead=0.5)
    assert b.get("a") == 1
    source.data["a"] = 2
    t.advance(6)  # past half the TTL
    assert b.get("a") == 1  # the current value at once; a refresh starts in the background
    call_with_timeout(b.settle, timeout=5)
    assert source.loads == ["a", "a"]
    assert b.get("a") == 2
    assert source.loads == ["a", "a"]
    assert stat(b, "refreshes") == 1
    b.close()


def test_early_expiry_setting_reads_correctly(source):
    t = FakeTimer()
    b = make(source, timer=t, ttl=10, early_expiry=1.0)
    for _ in range(20):
        assert b.get("a") == 1
    call_with_timeout(b.settle, timeout=5)
    source.data["a"] = 2
    t.advance(11)
    assert b.get("a") == 2
    b.close()


# --- write-through and write-around ---------------------------------------------------------


def test_write_through(source):
    b = make(source, write_mode="through")
    b.put("new", {"v": 1})
    assert source.data["new"] == {"v": 1}
    assert b.get("new") == {"v": 1}
    assert "new" not in source.loads  # served from the cache
    b.delete("new")
    assert "new" not in source.data
    with pytest.raises(KeyError):
        b.get("new")
    b.close()


def test_write_around_invalidates(source):
    b = make(source, write_mode="around")
    assert b.get("a") == 1
    b.put("a", 5)
    assert source.data["a"] == 5
    assert b.get("a") == 5
    assert source.loads == ["a", "a"]  # the write removed the cached value
    b.close()


def test_write_through_failure_reaches_the_caller(source):
    b = make(source, write_mode="through")
    assert b.get("a") == 1
    source.fail_store = lambda n: True
    with pytest.raises(DictSource.StoreError) as info:
        b.put("a", 99)
    assert "failed" in str(info.value)
    assert source.data["a"] == 1
    assert b.get("a") == 1  # the cache does not claim the value that was refused
    b.close()


@pytest.mark.parametrize("mode", ["through", "around"])
def test_source_whose_store_raises_forever(source, mode):
    b = make(source, write_mode=mode)
    source.fail_store = lambda n: True
    for i in range(20):
        with pytest.raises(DictSource.StoreError):
            b.put(f"k{i}", i)
    for i in range(20):
        with pytest.raises(KeyError):
            b.get(f"k{i}")
    # Reads, deletes and the cache itself still work.
    assert b.get("a") == 1
    b.delete("a")
    assert "a" not in source.data
    b.cache.stats()
    b.close()


# --- write-behind ---------------------------------------------------------------------------


def test_write_behind_acknowledges_then_flushes(source):
    b = make(source, write_mode="behind", max_delay=10.0)
    b.put("k", "v")
    assert b.get("k") == "v"  # read back before the source has it
    call_with_timeout(b.flush, timeout=5)
    assert source.data["k"] == "v"
    assert stat(b, "flushed") >= 1
    assert stat(b, "queue_depth") == 0
    b.close()


def test_write_behind_coalesces_to_the_latest_value(source):
    b = make(source, write_mode="behind", max_delay=10.0)
    for i in range(100):
        b.put("k", i)
    call_with_timeout(b.flush, timeout=5)
    assert source.data["k"] == 99
    assert len(source.stores) < 100
    assert stat(b, "coalesced") >= 1
    b.close()


def test_write_behind_with_a_source_failing_half_its_calls_loses_nothing(source):
    source.fail_store = lambda n: n % 2 == 1
    b = make(source, write_mode="behind", max_delay=0.001, initial_backoff=0.001, max_backoff=0.005)
    expected = {}
    for round_ in range(3):
        for i in range(200):
            key = f"k{i}" if i % 2 else f"k{i}".encode()
            b.put(key, (round_, i))
            expected[key] = (round_, i)
    b.delete("a")
    call_with_timeout(b.flush, timeout=30)
    for key, value in expected.items():
        assert source.data.get(key) == value, key
    assert "a" not in source.data
    assert stat(b, "retried") > 0
    assert stat(b, "failed") == 0
    assert stat(b, "queue_depth") == 0
    b.close()


def test_write_behind_store_failing_forever_keeps_the_writes(source):
    reports = []

    def on_write_error(keys, error, attempt, gave_up):
        reports.append((list(keys), type(error), attempt, gave_up))

    source.fail_store = lambda n: True
    b = make(
        source,
        write_mode="behind",
        max_delay=0.001,
        initial_backoff=0.001,
        max_backoff=0.005,
        on_write_error=on_write_error,
    )
    for i in range(10):
        b.put(f"k{i}", i)  # acknowledged although the source refuses them
    assert wait_until(lambda: stat(b, "retried") >= 10)
    for i in range(10):
        assert b.get(f"k{i}") == i
    assert reports and all(t is DictSource.StoreError and not gave_up for _, t, _, gave_up in reports)
    assert b.cache.stats().entries >= 10
    source.fail_store = None  # the source recovers: nothing was lost meanwhile
    call_with_timeout(b.flush, timeout=10)
    assert all(source.data[f"k{i}"] == i for i in range(10))
    b.close()


def test_write_behind_gives_up_after_max_attempts_and_reports_it(source):
    reports = []
    source.fail_store = lambda n: True
    b = make(
        source,
        write_mode="behind",
        max_delay=0.001,
        initial_backoff=0.001,
        max_backoff=0.002,
        max_attempts=3,
        on_write_error=lambda keys, error, attempt, gave_up: reports.append(
            (list(keys), error, attempt, gave_up)
        ),
    )
    b.put("doomed", 1)
    call_with_timeout(b.flush, timeout=10)  # returns: the write was given up
    assert stat(b, "failed") == 1
    last = reports[-1]
    assert last[0] == ["doomed"] and isinstance(last[1], DictSource.StoreError)
    assert last[2] == 3 and last[3] is True
    assert "doomed" not in source.data
    b.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_on_write_error_that_raises_does_not_stop_the_flusher(source):
    def on_write_error(*args, **kwargs):
        raise RuntimeError("the reporter itself fails")

    source.fail_store = lambda n: n <= 3
    b = make(
        source,
        write_mode="behind",
        max_delay=0.001,
        initial_backoff=0.001,
        max_backoff=0.002,
        on_write_error=on_write_error,
    )
    b.put("k", 1)
    call_with_timeout(b.flush, timeout=10)
    assert source.data["k"] == 1
    b.close()


def test_close_flushes_and_refuses_later_writes(source):
    b = make(source, write_mode="behind", max_delay=10.0)
    b.put("k", "v")
    call_with_timeout(b.close, timeout=10)
    assert source.data["k"] == "v"
    with pytest.raises(slabcache.Error):
        b.put("k2", "v2")
    assert "k2" not in source.data


def test_context_manager_closes_on_exit(source):
    with make(source, write_mode="behind", max_delay=10.0) as b:
        assert isinstance(b, slabcache.Backed)
        b.put("ctx", [1, 2])
    assert source.data["ctx"] == [1, 2]
    with pytest.raises(slabcache.Error):
        b.put("after", 1)


def test_dropping_a_backed_flushes_its_writes(source):
    def scope():
        b = make(source, write_mode="behind", max_delay=10.0, stale_while_revalidate=5, ttl=1)
        b.put("dropped", 1)
        del b
        gc.collect()

    call_with_timeout(scope, timeout=10)
    assert source.data.get("dropped") == 1


# --- reference leaks ------------------------------------------------------------------------


def test_no_reference_leaks(source):
    value = ["shared", "value"]
    b = make(source)
    b.put("k", value)
    b.get("k")
    gc.collect()
    before_value, before_source = sys.getrefcount(value), sys.getrefcount(source)
    for _ in range(10_000):
        b.get("k")
        b.put("k", value)
    gc.collect()
    assert sys.getrefcount(value) == before_value
    assert sys.getrefcount(source) == before_source
    b.close()


# --- tags -----------------------------------------------------------------------------------


def test_tagged_puts_are_dropped_by_their_tag_and_reload_from_the_source(source):
    b = make(source)
    b.put_tagged("user:1", {"name": "Ada"}, ["users", b"team:7"])
    b.put_tagged("user:2", {"name": "Alan"}, ["users"])
    b.put("other", 1)
    assert source.data["user:1"] == {"name": "Ada"}  # written through
    loads_before = len(source.loads)
    assert b.get("user:1") == {"name": "Ada"}  # cached: no load
    assert len(source.loads) == loads_before
    assert b.invalidate_tag("users") == 2
    assert b.invalidate_tag(b"team:7") == 0  # already gone
    source.data["user:1"] = {"name": "Ada Lovelace"}
    assert b.get("user:1") == {"name": "Ada Lovelace"}  # reloaded from the source
    assert len(source.loads) == loads_before + 1
    assert b.get("other") == 1


def test_tag_arguments_are_checked(source):
    b = make(source)
    with pytest.raises(TypeError, match="wrap a single tag"):
        b.put_tagged("k", 1, "users")
    with pytest.raises(TypeError, match="tags are str or bytes"):
        b.put_tagged("k", 1, [42])
    with pytest.raises(TypeError, match="tags are str or bytes"):
        b.invalidate_tag(3.5)
    b.put("k", 1)  # still usable
    assert b.get("k") == 1
