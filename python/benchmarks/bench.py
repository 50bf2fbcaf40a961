"""Benchmark slabcache's Python module against other Python caches.

Usage:  python bench.py [--json PATH] [--quick]

Peers come from requirements.txt next to this file (pip install -r requirements.txt).
Everything runs in one process, on one thread (except the 4-thread rows), over the same
precomputed data, and each number is the median of 5 timed rounds after one untimed
warm-up round.  A round is one loop of N operations timed with time.perf_counter_ns;
nothing is subtracted, so loop overhead (the same for every implementation) is included.

Workload (see issue 14, "Benchmark"):
  * capacity 100,000 entries; str keys "key:0000123"; 32-byte bytes values;
  * key streams drawn from a Zipf(0.99) distribution with a seeded random.Random, over a
    key space of 100,000 (get_hit, set_update, get_hit_4t) or 400,000 keys (set_evict,
    read_through); key strings are built before timing starts;
  * get_hit      all 100k keys preloaded, get(key) over the stream;
  * set_update   all 100k keys preloaded, cache[key] = value (or .set) over the stream;
  * set_evict    cache[key] = value over a 4x larger key space; the cache is first filled
                 with all 400k keys (coldest first), so it is full and evicting, and each
                 round reads a new segment of the stream (same segments for everyone);
  * read_through v = get(key); on a miss cache[key] = value; set up like set_evict;
  * get_hit_4t   get_hit with 4 threads, each doing N/4 gets; ns/op = wall time / N;
  * decorator_hit  f(x) over 1,000 warm int arguments, returning an int.

Checks printed beside the numbers (untimed): the hit ratio of get_hit (must be 100%) and of
one more read-through segment, the entry count after set_evict (must be 100,000), and that a
decorated function is not called again during decorator_hit.  A peer that is not installed,
or slabcache.cached while it does not exist yet, is skipped with a note.

Access style: every implementation reads with a bound ``get = cache.get``.  Writes use
``cache[key] = value`` for caches that are mappings and the bound ``set`` method for the
two that are not (moka_py.Moka, theine.Cache).  theine's get returns (value, found).
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import os
import platform
import random
import statistics
import sys
import threading
import time

CAPACITY = 100_000
EVICT_FACTOR = 4  # key space for set_evict and read_through = 4 x capacity
VALUE = bytes(range(32))  # 32 bytes
ZIPF_S = 0.99
SEED = 14
ROUNDS = 5
THREADS = 4
DECO_ARGS = 1_000
# slabcache is bounded in bytes; at ~100 B of slab per entry of this shape 100k entries
# need ~10.5 MiB, so 16 MiB plus max_entries=100_000 makes the entry count the bound.
SLAB_MAX_BYTES = 16 << 20

perf = time.perf_counter_ns


# ----------------------------------------------------------------------------- data

def zipf_ranks(rng: random.Random, n_keys: int) -> tuple[list[int], list[float]]:
    """(key id of each popularity rank, hottest first; cumulative Zipf(s) weights)."""
    cum = list(itertools.accumulate(1.0 / (r ** ZIPF_S) for r in range(1, n_keys + 1)))
    ids = list(range(n_keys))
    rng.shuffle(ids)  # rank -> key id, so the hottest keys are not the first ones
    return ids, cum


class Data:
    """Everything the loops read, built once before any timing.

    The 4x streams (set_evict, read_through) are cut into one segment per round (warm-up,
    timed rounds, one more for the untimed hit count) so that every round brings new keys
    and the cache keeps evicting; every implementation sees the same segments in the same
    order.  Those caches are first filled with the whole key space, coldest key first.
    """

    def __init__(self, n_ops: int, rounds: int):
        rng = random.Random(SEED)
        big = CAPACITY * EVICT_FACTOR
        self.keys = [f"key:{i:07d}" for i in range(big)]
        self.hot_keys = self.keys[:CAPACITY]  # the preloaded key space
        # Lists of references to the same str objects: no key is built while timing.
        ids, cum = zipf_ranks(rng, CAPACITY)
        self.stream_small = [self.keys[i] for i in rng.choices(ids, cum_weights=cum, k=n_ops)]
        ids, cum = zipf_ranks(rng, big)
        self.fill_big = [self.keys[i] for i in reversed(ids)]  # coldest first, hottest last
        self.segments_big = [
            [self.keys[i] for i in rng.choices(ids, cum_weights=cum, k=n_ops)]
            for _ in range(rounds + 2)
        ]
        self.deco_args = [rng.randrange(DECO_ARGS) for _ in range(n_ops)]
        q = n_ops // THREADS
        self.thread_slices = [self.stream_small[i * q:(i + 1) * q] for i in range(THREADS)]
        self.n_ops = n_ops
        self.rounds = rounds


# ------------------------------------------------------------------ implementations

class Impl:
    """How to build one cache and which access style it uses.

    style: "mapping" (cache[k] = v for writes), "method" (cache.set(k, v)),
    "theine" (cache.set(k, v); get returns (value, found)).
    """

    def __init__(self, name, factory, style="mapping", locked_threads=False, evicts=True,
                 size=len, close=None):
        self.name = name
        self.factory = factory
        self.style = style
        self.locked_threads = locked_threads  # needs a lock for use from several threads
        self.evicts = evicts
        self.size = size
        self.close = close


def build_impls(notes: list[str]) -> list[Impl]:
    impls = []
    import slabcache

    impls.append(Impl(
        "slabcache",
        lambda: slabcache.Cache(max_bytes=SLAB_MAX_BYTES, max_entries=CAPACITY)))

    try:
        import cachebox
        impls.append(Impl("cachebox.LRUCache", lambda: cachebox.LRUCache(CAPACITY)))
        # VTTLCache has no cache-wide TTL: entries written with c[k] = v never expire.
        impls.append(Impl("cachebox.VTTLCache", lambda: cachebox.VTTLCache(CAPACITY)))
    except ImportError as e:
        notes.append(f"cachebox skipped: {e}")

    try:
        import cachetools
        impls.append(Impl("cachetools.LRUCache", lambda: cachetools.LRUCache(CAPACITY),
                          locked_threads=True))
        impls.append(Impl("cachetools.TTLCache",
                          lambda: cachetools.TTLCache(CAPACITY, ttl=3600),
                          locked_threads=True))
    except ImportError as e:
        notes.append(f"cachetools skipped: {e}")

    try:
        import moka_py

        def moka_size(c):
            c.run_pending_tasks()
            return c.count()

        impls.append(Impl("moka_py.Moka", lambda: moka_py.Moka(CAPACITY), style="method",
                          size=moka_size))
    except ImportError as e:
        notes.append(f"moka-py skipped: {e}")

    try:
        import theine

        def theine_size(c):
            c._force_drain_write()  # apply buffered writes (evictions) before counting
            return len(c)

        impls.append(Impl("theine.Cache", lambda: theine.Cache(CAPACITY), style="theine",
                          size=theine_size, close=lambda c: c.close()))
    except ImportError as e:
        notes.append(f"theine skipped: {e}")

    try:
        import lru
        impls.append(Impl("lru.LRU", lambda: lru.LRU(CAPACITY)))
    except ImportError as e:
        notes.append(f"lru-dict skipped: {e}")

    impls.append(Impl("dict", dict, evicts=False))
    return impls


# -------------------------------------------------------------------- timed loops
# One function per access style, shared by every implementation of that style.

def loop_get(get, keys):
    t0 = perf()
    for k in keys:
        get(k)
    return perf() - t0


def loop_setitem(c, keys, v):
    t0 = perf()
    for k in keys:
        c[k] = v
    return perf() - t0


def loop_setmethod(set_, keys, v):
    t0 = perf()
    for k in keys:
        set_(k, v)
    return perf() - t0


def loop_rt_mapping(get, c, keys, v):
    t0 = perf()
    for k in keys:
        if get(k) is None:
            c[k] = v
    return perf() - t0


def loop_rt_method(get, set_, keys, v):
    t0 = perf()
    for k in keys:
        if get(k) is None:
            set_(k, v)
    return perf() - t0


def loop_rt_theine(get, set_, keys, v):
    t0 = perf()
    for k in keys:
        if not get(k)[1]:
            set_(k, v)
    return perf() - t0


def loop_call(f, args):
    t0 = perf()
    for x in args:
        f(x)
    return perf() - t0


def loop_threads(get, slices, lock=None):
    """Wall time for len(slices) threads each running get over its slice."""
    barrier = threading.Barrier(len(slices) + 1)

    def plain(keys):
        barrier.wait()
        for k in keys:
            get(k)

    def locked(keys):
        barrier.wait()
        for k in keys:
            with lock:
                get(k)

    body = plain if lock is None else locked
    threads = [threading.Thread(target=body, args=(s,)) for s in slices]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = perf()
    for t in threads:
        t.join()
    return perf() - t0


def measure(run, n_ops, rounds):
    """run(0) as the warm-up, then run(1) .. run(rounds) timed; ns/op of each timed round."""
    run(0)
    out = []
    for i in range(1, rounds + 1):
        gc.collect()
        out.append(run(i) / n_ops)
    return out


# ---------------------------------------------------------------------- helpers

def writer(impl, c):
    """(loop for set ops, its first argument) for this access style."""
    if impl.style == "mapping":
        return loop_setitem, c
    return loop_setmethod, c.set


def read_through_runner(impl, c, keys):
    get = c.get
    if impl.style == "mapping":
        return lambda: loop_rt_mapping(get, c, keys, VALUE)
    if impl.style == "method":
        return lambda: loop_rt_method(get, c.set, keys, VALUE)
    return lambda: loop_rt_theine(get, c.set, keys, VALUE)


def is_hit(impl, r):
    return r[1] if impl.style == "theine" else r is not None


def hit_ratio(impl, c, keys):
    """Untimed: the share of keys that hit now (reads only; may touch LRU order)."""
    get = c.get
    return sum(1 for k in keys if is_hit(impl, get(k))) / len(keys)


def read_through_hit_ratio(impl, c, keys):
    """Untimed extra read-through round that counts hits (state is steady by now)."""
    get = c.get
    set_ = c.__setitem__ if impl.style == "mapping" else c.set
    hits = 0
    for k in keys:
        if is_hit(impl, get(k)):
            hits += 1
        else:
            set_(k, VALUE)
    return hits / len(keys)


def preload(impl, c, keys):
    loop, target = writer(impl, c)
    loop(target, keys, VALUE)


class Results:
    def __init__(self):
        self.rows = []  # dicts: impl, op, ns (list of rounds), extra

    def add(self, impl, op, per_round, extra=""):
        self.rows.append({"impl": impl, "op": op, "rounds": per_round, "extra": extra})
        med = statistics.median(per_round)
        print(f"  {impl:<22} {op:<14} {med:9.1f} ns/op  {extra}", flush=True)


# --------------------------------------------------------------------- benchmarks

def bench_cache(impl: Impl, data: Data, res: Results, notes: list[str]):
    n, rounds = data.n_ops, data.rounds

    # get_hit, get_hit_4t, set_update share one cache preloaded with all 100k keys.
    c = impl.factory()
    preload(impl, c, data.hot_keys)
    size = impl.size(c)
    if size != CAPACITY:
        notes.append(f"{impl.name}: holds {size} of {CAPACITY} preloaded keys")
    get = c.get
    r = measure(lambda i: loop_get(get, data.stream_small), n, rounds)
    res.add(impl.name, "get_hit", r, f"hit {hit_ratio(impl, c, data.stream_small):.1%}")

    lock = threading.Lock() if impl.locked_threads else None
    r = measure(lambda i: loop_threads(get, data.thread_slices, lock), n, rounds)
    res.add(impl.name, "get_hit_4t", r, "with a Lock" if lock else "")

    loop, target = writer(impl, c)
    r = measure(lambda i: loop(target, data.stream_small, VALUE), n, rounds)
    res.add(impl.name, "set_update", r, f"size {impl.size(c)}")
    if impl.close:
        impl.close(c)
    del c, get, target

    # set_evict: keys from a 4x larger key space, a new segment each round; the cache is
    # full (filled with the whole key space, hottest keys last) before the warm-up round.
    segs = data.segments_big
    c = impl.factory()
    preload(impl, c, data.fill_big)
    loop, target = writer(impl, c)
    r = measure(lambda i: loop(target, segs[i], VALUE), n, rounds)
    size = impl.size(c)
    res.add(impl.name, "set_evict", r,
            f"size {size}" + ("" if impl.evicts else " (no eviction: grows)"))
    if impl.evicts and size > CAPACITY:
        notes.append(f"{impl.name}: {size} entries after set_evict (capacity {CAPACITY})")
    if impl.close:
        impl.close(c)
    del c, target

    # read_through: get, and set on a miss, over the 4x key space; filled like set_evict.
    c = impl.factory()
    preload(impl, c, data.fill_big)
    runners = [read_through_runner(impl, c, seg) for seg in segs]
    r = measure(lambda i: runners[i](), n, rounds)
    res.add(impl.name, "read_through", r,
            f"hit {read_through_hit_ratio(impl, c, segs[rounds + 1]):.1%}"
            + ("" if impl.evicts else " (no eviction)"))
    if impl.close:
        impl.close(c)
    del c, runners
    gc.collect()


def build_decorators(notes: list[str]):
    """(name, decorator) pairs; each decorator wraps a plain function f(x)."""
    out = []
    import slabcache
    try:
        deco = slabcache.cached(max_bytes=SLAB_MAX_BYTES)
    except AttributeError as e:
        notes.append(f"slabcache.cached not available yet ({e}): decorator row skipped")
    else:
        out.append(("slabcache.cached", deco))
    out.append(("functools.lru_cache", functools.lru_cache(maxsize=CAPACITY)))
    try:
        import cachebox
        out.append(("cachebox.cached", cachebox.cached(cachebox.LRUCache(CAPACITY))))
    except ImportError:
        pass
    try:
        import cachetools
        out.append(("cachetools.cached", cachetools.cached(cachetools.LRUCache(CAPACITY))))
    except ImportError:
        pass
    try:
        import moka_py
        out.append(("moka_py.cached", moka_py.cached(maxsize=CAPACITY)))
    except ImportError:
        pass
    return out


def bench_decorators(data: Data, res: Results, rounds: int, notes: list[str]):
    for name, deco in build_decorators(notes):
        calls = [0]

        def f(x):
            calls[0] += 1
            return 2 * x + 1

        try:
            g = deco(f)
            for x in range(DECO_ARGS):  # warm: every argument cached once
                if g(x) != 2 * x + 1:
                    raise AssertionError(f"wrong result for {x}")
        except Exception as e:  # a decorator under construction must not stop the run
            notes.append(f"{name}: skipped, warm-up failed: {type(e).__name__}: {e}")
            continue
        warm_calls = calls[0]
        r = measure(lambda i: loop_call(g, data.deco_args), data.n_ops, rounds)
        extra = "" if calls[0] == warm_calls else f"MISSES: f ran {calls[0] - warm_calls} more times"
        if extra:
            notes.append(f"{name}: {extra} during decorator_hit")
        res.add(name, "decorator_hit", r, extra)


# -------------------------------------------------------------------------- output

def machine_info() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"


def print_table(res: Results):
    base = {}
    for row in res.rows:
        if row["impl"] in ("slabcache", "slabcache.cached"):
            base[row["op"]] = statistics.median(row["rounds"])
    print()
    print(f"{'impl':<22} {'op':<14} {'ns/op':>9} {'min':>9} {'max':>9} {'x slabcache':>12}  notes")
    print("-" * 100)
    for row in res.rows:
        med = statistics.median(row["rounds"])
        b = base.get(row["op"])
        ratio = f"{med / b:.2f}" if b else "-"
        print(f"{row['impl']:<22} {row['op']:<14} {med:9.1f} {min(row['rounds']):9.1f} "
              f"{max(row['rounds']):9.1f} {ratio:>12}  {row['extra']}")
    print("(x slabcache: this ns/op divided by slabcache's for the same op; above 1 = slower"
          " than slabcache)")


def summary(n_ops: int) -> None:
    """The get_hit figure of every cache, one machine-readable line each."""
    data = Data(n_ops, ROUNDS)
    for impl in build_impls([]):
        c = impl.factory()
        preload(impl, c, data.hot_keys)
        get = c.get
        per_round = measure(lambda i: loop_get(get, data.stream_small), n_ops, ROUNDS)
        print(f"summary get_hit {impl.name} {statistics.median(per_round):.1f}", flush=True)
        if impl.close:
            impl.close(c)
        del c, get


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write results as JSON to PATH")
    ap.add_argument("--quick", action="store_true", help="fewer ops per round (smoke run)")
    ap.add_argument("--ops", type=int, default=None, help="ops per round (default 300000,"
                    " 40000 with --quick)")
    ap.add_argument("--summary", action="store_true",
                    help="only get_hit, one `summary get_hit IMPL NS` line per cache (for the"
                    " showdown's summary)")
    args = ap.parse_args(argv)
    if args.summary:
        return summary(args.ops or 100_000)
    n_ops = args.ops or (40_000 if args.quick else 300_000)
    rounds = ROUNDS

    t_start = time.monotonic()
    notes: list[str] = []
    print(f"python {sys.version.split()[0]} on {machine_info()}")
    print(f"{n_ops} ops per round, median of {rounds} rounds (after 1 warm-up round);"
          f" capacity {CAPACITY}, Zipf {ZIPF_S}, seed {SEED}", flush=True)
    data = Data(n_ops, rounds)
    res = Results()

    for impl in build_impls(notes):
        bench_cache(impl, data, res, notes)
    bench_decorators(data, res, rounds, notes)

    print_table(res)
    notes.append("dict never evicts: its set_evict and read_through rows grow to the whole"
                 " key space (a floor, not a cache)")
    notes.append("cachetools caches are not thread-safe: their get_hit_4t rows take a"
                 " threading.Lock per get, as cachetools documents")
    print("\nnotes:")
    for line in notes:
        print(f"  - {line}")
    elapsed = time.monotonic() - t_start
    print(f"\ntotal run time {elapsed:.1f} s")

    if args.json:
        doc = {
            "results": [
                {"impl": row["impl"], "op": row["op"],
                 "ns_per_op": round(statistics.median(row["rounds"]), 1)}
                for row in res.rows
            ],
            "machine": machine_info(),
            "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
