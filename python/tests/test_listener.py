"""Cache(listener=...): removal events reach Python, and a listener's exception reaches the
caller whose call delivered it, after the call took effect."""

import threading

import pytest

import slabcache

BIG = 64 << 20


def recording_cache(**kwargs):
    heard = []
    cache = slabcache.Cache(
        max_bytes=BIG, listener=lambda k, v, cause: heard.append((k, v, cause)), **kwargs
    )
    return cache, heard


def test_every_cause_is_heard_with_the_key_and_value_as_python_objects():
    cache, heard = recording_cache()
    cache["a"] = {"n": 1}
    cache["a"] = {"n": 2}
    del cache["a"]
    cache.set_tagged(b"t", [1, 2], ["tag"])
    cache.invalidate_tag("tag")
    v = cache.set("c", "x")
    assert cache.delete_if_version("c", v)
    cache["d"] = 4.5
    cache.clear()
    assert heard == [
        ("a", {"n": 1}, "replaced"),
        ("a", {"n": 2}, "removed"),
        (b"t", [1, 2], "tag_invalidated"),
        ("c", "x", "removed"),
        ("d", 4.5, "cleared"),
    ]


def test_expiry_and_eviction_are_heard():
    now = [0.0]
    cache, heard = recording_cache(timer=lambda: now[0], ttl=1.0, max_entries=8)
    cache["old"] = 1
    now[0] = 5.0
    cache["old"] = 2  # a write over an expired entry finds it expired
    assert ("old", 1, "expired") in heard
    for i in range(100):
        cache[f"k{i}"] = i
    assert any(cause == "evicted" for _, _, cause in heard)
    assert len(cache) <= 8


def test_a_listener_exception_reaches_the_caller_as_itself_after_the_write():
    class Boom(Exception):
        pass

    raised = Boom("listener failed")

    def listener(key, value, cause):
        raise raised

    cache = slabcache.Cache(max_bytes=BIG, listener=listener)
    cache["k"] = 1
    with pytest.raises(Boom) as info:
        cache["k"] = 2  # replaces: the listener runs and raises
    assert info.value is raised
    assert cache["k"] == 2  # the write took effect
    with pytest.raises(Boom):
        del cache["k"]
    assert "k" not in cache
    cache["z"] = 1  # nothing left over: the next call that delivers nothing succeeds
    assert cache["z"] == 1


def test_a_listener_may_use_the_cache():
    cache = None
    seen = []

    def listener(key, value, cause):
        seen.append((key, cache.get("other")))
        cache["log:" + key] = cause

    cache = slabcache.Cache(max_bytes=BIG, listener=listener)
    cache["other"] = "o"
    cache["k"] = 1
    cache["k"] = 2
    assert seen == [("k", "o")]
    assert cache["log:k"] == "replaced"


def test_a_listener_that_is_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match="listener"):
        slabcache.Cache(max_bytes=BIG, listener=42)


def test_threads_writing_with_a_listener_neither_deadlock_nor_lose_events():
    heard = []
    lock = threading.Lock()

    def listener(key, value, cause):
        with lock:
            heard.append(cause)

    cache = slabcache.Cache(max_bytes=BIG, listener=listener)
    writes_per_thread = 2000

    def work(t):
        for i in range(writes_per_thread):
            cache[f"k{i % 50}"] = (t, i)

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a writer deadlocked"
    # Every write but the first of each key replaced a value: one event each.
    assert heard.count("replaced") == 4 * writes_per_thread - 50
