/*
 * The listener test: slabcache_options_t's listener, listener_ctx and
 * maintenance_interval_ms, and slabcache_run_pending_tasks. Events counted by cause against
 * slabcache_stats; a listener that calls back into the library (reads, writes, deletes,
 * tags, and writes that evict), whose own events come after its call, never inside it; the
 * maintenance thread reporting expirations without traffic; slabcache_free waiting for the
 * listener call that thread is making, so that the context may be freed as soon as it
 * returns; tag invalidations; 4 pthreads writing through one listener; and hostile inputs.
 *
 * Built as C11 with -Wall -Wextra -Werror by scripts/ffi-test.sh, which runs it under
 * AddressSanitizer + UndefinedBehaviorSanitizer and again under valgrind.
 */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define CACHE_BYTES (16u << 20)
#define SMALL_VALUE_LIMIT 4096u
#define CAUSES 7 /* the SLABCACHE_CAUSE_* codes are 1 to 6 */
/* A wait for the maintenance thread polls this many times, 1 ms apart, before it gives up
 * (a thread that never reports fails the test instead of hanging it). */
#define MAX_POLLS 60000
/* The whole program fails (SIGALRM) rather than hang past this. */
#define HANG_LIMIT_SECONDS 600
#define NO_MAINTENANCE UINT64_MAX

/* What a listener heard, and what it does from inside its calls. */
struct heard {
    slabcache_t *cache; /* set once slabcache_new returns */
    atomic_uint_fast64_t by_cause[CAUSES];
    atomic_uint_fast64_t unknown_causes;
    atomic_int in_call;
    atomic_int overlapped;                /* a call began while another ran */
    atomic_uint_fast64_t off_main_thread; /* calls on another thread than the test's */
    pthread_t main_thread;
    atomic_int failed_calls; /* calls into the library from the listener that went wrong */
    int calling_back_done;   /* the calling-back listener acted once */
    long sleep_ms;           /* how long each call sleeps (0: none) */
};

static void heard_init(struct heard *heard) {
    memset(heard, 0, sizeof *heard);
    for (int i = 0; i < CAUSES; i++) {
        atomic_init(&heard->by_cause[i], 0);
    }
    atomic_init(&heard->unknown_causes, 0);
    atomic_init(&heard->in_call, 0);
    atomic_init(&heard->overlapped, 0);
    atomic_init(&heard->off_main_thread, 0);
    atomic_init(&heard->failed_calls, 0);
    heard->main_thread = pthread_self();
}

static uint64_t heard_of(struct heard *heard, int cause) {
    return atomic_load(&heard->by_cause[cause]);
}

static int is_key(const uint8_t *key, size_t key_len, const char *expected) {
    return key_len == strlen(expected) && memcmp(key, expected, key_len) == 0;
}

/* What every test listener does first: count the event, and see that no call overlaps. */
static void count(struct heard *heard, int cause) {
    if (atomic_exchange(&heard->in_call, 1) != 0) {
        atomic_store(&heard->overlapped, 1);
    }
    if (cause >= 1 && cause < CAUSES) {
        atomic_fetch_add(&heard->by_cause[cause], 1);
    } else {
        atomic_fetch_add(&heard->unknown_causes, 1);
    }
    if (!pthread_equal(pthread_self(), heard->main_thread)) {
        atomic_fetch_add(&heard->off_main_thread, 1);
    }
    if (heard->sleep_ms > 0) {
        sleep_ms(heard->sleep_ms);
    }
}

static void done(struct heard *heard) { atomic_store(&heard->in_call, 0); }

static void counting_listener(void *ctx, const uint8_t *key, size_t key_len,
                              const uint8_t *value, size_t value_len, int cause) {
    (void)key, (void)key_len, (void)value, (void)value_len;
    count(ctx, cause);
    done(ctx);
}

static slabcache_options_t listening_options(slabcache_listener_fn listener, void *ctx,
                                             uint64_t interval_ms) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = CACHE_BYTES;
    opts.max_value_bytes = SMALL_VALUE_LIMIT;
    opts.listener = listener;
    opts.listener_ctx = ctx;
    opts.maintenance_interval_ms = interval_ms;
    return opts;
}

static slabcache_t *new_listening_cache(slabcache_options_t opts, struct heard *heard) {
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new(&opts, &cache), SLABCACHE_OK);
    heard->cache = cache;
    return cache;
}

/* Every event was counted as the stats count it, each once, none inside another. */
static void check_heard_as_counted(struct heard *heard, const slabcache_t *cache) {
    slabcache_stats_t stats = stats_of(cache);
    CHECK(heard_of(heard, SLABCACHE_CAUSE_EVICTED) == stats.evictions);
    CHECK(heard_of(heard, SLABCACHE_CAUSE_EXPIRED) == stats.expirations);
    CHECK(heard_of(heard, SLABCACHE_CAUSE_REPLACED) == stats.updates);
    CHECK(heard_of(heard, SLABCACHE_CAUSE_REMOVED) + heard_of(heard, SLABCACHE_CAUSE_CLEARED) +
              heard_of(heard, SLABCACHE_CAUSE_TAG_INVALIDATED) ==
          stats.removals);
    CHECK(atomic_load(&heard->unknown_causes) == 0);
    CHECK(atomic_load(&heard->overlapped) == 0);
    CHECK(atomic_load(&heard->failed_calls) == 0);
    CHECK(stats.listener_panics == 0);
}

static void expect_ok(struct heard *heard, int status) {
    if (status != SLABCACHE_OK) {
        atomic_fetch_add(&heard->failed_calls, 1);
    }
}

/* ----- a listener that calls back into the library ----- */

/* Told that "trigger" was removed, it reads a key, writes one twice (the second write
 * replaces), deletes another, writes a tagged entry and invalidates its tag: each of those
 * events is delivered after this call returns. */
static void calling_back_listener(void *ctx, const uint8_t *key, size_t key_len,
                                  const uint8_t *value, size_t value_len, int cause) {
    struct heard *heard = ctx;
    (void)value, (void)value_len;
    count(heard, cause);
    if (cause == SLABCACHE_CAUSE_REMOVED && is_key(key, key_len, "trigger")) {
        const slabcache_t *cache = heard->cache;
        uint8_t buf[16];
        size_t len = 0;
        expect_ok(heard, slabcache_get(cache, BYTES("k1"), buf, sizeof buf, &len, NULL));
        expect_ok(heard, slabcache_set(cache, BYTES("k2"), BYTES("first"), 0, NULL));
        expect_ok(heard, slabcache_set(cache, BYTES("k2"), BYTES("second"), 0, NULL));
        expect_ok(heard, slabcache_delete(cache, BYTES("k3")));
        const uint8_t *tag = (const uint8_t *)"inside";
        const size_t tag_len = 6;
        expect_ok(heard, slabcache_set_tagged(cache, BYTES("tagged"), BYTES("t"), 0, &tag,
                                              &tag_len, 1, NULL));
        uint64_t removed = 0;
        expect_ok(heard, slabcache_invalidate_tag(cache, tag, tag_len, &removed));
        if (removed != 1) {
            atomic_fetch_add(&heard->failed_calls, 1);
        }
        heard->calling_back_done++;
    }
    done(heard);
}

static void test_a_listener_may_call_back_into_the_library(void) {
    struct heard heard;
    heard_init(&heard);
    slabcache_t *cache = new_listening_cache(
        listening_options(calling_back_listener, &heard, NO_MAINTENANCE), &heard);
    CHECK_STATUS(slabcache_set(cache, BYTES("k1"), BYTES("one"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("k2"), BYTES("two"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("k3"), BYTES("three"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("trigger"), BYTES("x"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_delete(cache, BYTES("trigger")), SLABCACHE_OK);

    CHECK(heard.calling_back_done == 1);
    CHECK(holds(cache, BYTES("k2"), BYTES("second")));
    CHECK(holds(cache, BYTES("k1"), BYTES("one")));
    CHECK(slabcache_get(cache, BYTES("k3"), NULL, 0, &(size_t){0}, NULL) == SLABCACHE_NOT_FOUND);
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_REMOVED) == 2);       /* trigger, then k3 */
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_REPLACED) == 2);      /* k2 twice */
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_TAG_INVALIDATED) == 1); /* tagged */

    /* An expired entry found by a write over its key. */
    CHECK_STATUS(slabcache_set(cache, BYTES("brief"), BYTES("v"), 1, NULL), SLABCACHE_OK);
    sleep_ms(20);
    CHECK_STATUS(slabcache_set(cache, BYTES("brief"), BYTES("w"), 0, NULL), SLABCACHE_OK);
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_EXPIRED) == 1);

    slabcache_clear(cache);
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_CLEARED) == 3); /* k1, k2, brief */
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_EVICTED) == 0);
    CHECK(atomic_load(&heard.off_main_thread) == 0);
    check_heard_as_counted(&heard, cache);
    slabcache_free(cache);
}

/* Told that "trigger" was removed, it writes 64 new keys into a cache that holds 16: every
 * one of those writes evicts. */
static void evicting_listener(void *ctx, const uint8_t *key, size_t key_len,
                              const uint8_t *value, size_t value_len, int cause) {
    struct heard *heard = ctx;
    (void)value, (void)value_len;
    count(heard, cause);
    if (cause == SLABCACHE_CAUSE_REMOVED && is_key(key, key_len, "trigger")) {
        char name[32];
        for (int i = 0; i < 64; i++) {
            int len = snprintf(name, sizeof name, "from-listener-%d", i);
            expect_ok(heard, slabcache_set(heard->cache, (const uint8_t *)name, (size_t)len,
                                           BYTES("v"), 0, NULL));
        }
        heard->calling_back_done++;
    }
    done(heard);
}

static void test_a_listener_may_write_what_evicts(void) {
    struct heard heard;
    heard_init(&heard);
    slabcache_options_t opts = listening_options(evicting_listener, &heard, NO_MAINTENANCE);
    opts.max_entries = 16;
    slabcache_t *cache = new_listening_cache(opts, &heard);
    char name[32];
    for (int i = 0; i < 16; i++) {
        int len = snprintf(name, sizeof name, "k%d", i);
        CHECK_STATUS(
            slabcache_set(cache, (const uint8_t *)name, (size_t)len, BYTES("v"), 0, NULL),
            SLABCACHE_OK);
    }
    CHECK_STATUS(slabcache_set(cache, BYTES("trigger"), BYTES("x"), 0, NULL), SLABCACHE_OK);
    uint64_t evicted_before = heard_of(&heard, SLABCACHE_CAUSE_EVICTED);
    CHECK_STATUS(slabcache_delete(cache, BYTES("trigger")), SLABCACHE_OK);
    CHECK(heard.calling_back_done == 1);
    /* 64 new keys into at most 16 places: at least 48 left, each heard as it was counted. */
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_EVICTED) - evicted_before >= 48);
    CHECK(stats_of(cache).entries <= 16);
    check_heard_as_counted(&heard, cache);
    slabcache_free(cache);
}

/* ----- tags ----- */

/* Records the keys and values it is told of, with their causes. */
struct recording {
    struct heard heard;
    int count;
    char keys[8][16];
    char values[8][16];
    int causes[8];
};

static void recording_listener(void *ctx, const uint8_t *key, size_t key_len,
                               const uint8_t *value, size_t value_len, int cause) {
    struct recording *recording = ctx;
    count(&recording->heard, cause);
    if (recording->count < 8 && key_len < 16 && value_len < 16) {
        memcpy(recording->keys[recording->count], key, key_len);
        recording->keys[recording->count][key_len] = '\0';
        memcpy(recording->values[recording->count], value, value_len);
        recording->values[recording->count][value_len] = '\0';
        recording->causes[recording->count] = cause;
    }
    recording->count++;
    done(&recording->heard);
}

static void test_tag_invalidations_are_heard_with_their_values(void) {
    struct recording recording;
    memset(&recording, 0, sizeof recording);
    heard_init(&recording.heard);
    slabcache_t *cache = new_listening_cache(
        listening_options(recording_listener, &recording, NO_MAINTENANCE), &recording.heard);
    const uint8_t *tags[] = {(const uint8_t *)"red", (const uint8_t *)"blue"};
    const size_t tag_lens[] = {3, 4};
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("a"), BYTES("va"), 0, tags, tag_lens, 2,
                                      NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("b"), BYTES("vb"), 0, tags, tag_lens, 1,
                                      NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("c"), BYTES("vc"), 0, NULL), SLABCACHE_OK);
    uint64_t removed = 0;
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("red"), &removed), SLABCACHE_OK);
    CHECK(removed == 2);
    CHECK(recording.count == 2);
    int seen_a = 0, seen_b = 0;
    for (int i = 0; i < 2 && i < recording.count; i++) {
        CHECK(recording.causes[i] == SLABCACHE_CAUSE_TAG_INVALIDATED);
        seen_a += strcmp(recording.keys[i], "a") == 0 && strcmp(recording.values[i], "va") == 0;
        seen_b += strcmp(recording.keys[i], "b") == 0 && strcmp(recording.values[i], "vb") == 0;
    }
    CHECK(seen_a == 1 && seen_b == 1);
    /* Invalidated already: the other tag of "a" has nothing left to remove. */
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("blue"), &removed), SLABCACHE_OK);
    CHECK(removed == 0);
    CHECK(recording.count == 2);
    check_heard_as_counted(&recording.heard, cache);
    slabcache_free(cache);
}

/* ----- the maintenance thread and slabcache_run_pending_tasks ----- */

/* Polls, 1 ms apart, until `heard` has heard `expected` expirations; 0 if it gave up. */
static int wait_for_expirations(struct heard *heard, uint64_t expected) {
    for (int poll = 0; poll < MAX_POLLS; poll++) {
        if (heard_of(heard, SLABCACHE_CAUSE_EXPIRED) >= expected) {
            return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

static void write_expiring_keys(const slabcache_t *cache, int count) {
    char name[32];
    for (int i = 0; i < count; i++) {
        int len = snprintf(name, sizeof name, "expiring-%d", i);
        CHECK_STATUS(
            slabcache_set(cache, (const uint8_t *)name, (size_t)len, BYTES("v"), 1, NULL),
            SLABCACHE_OK);
    }
}

/* Told of an expiration (on the maintenance thread), it reads the key and writes another:
 * a listener there may call back too. Only then: a listener that wrote for each event it is
 * told of, its own writes' included, would never be done. */
static void reading_listener(void *ctx, const uint8_t *key, size_t key_len,
                             const uint8_t *value, size_t value_len, int cause) {
    struct heard *heard = ctx;
    (void)value, (void)value_len;
    count(heard, cause);
    if (cause != SLABCACHE_CAUSE_EXPIRED) {
        done(heard);
        return;
    }
    size_t len = 0;
    if (slabcache_get(heard->cache, key, key_len, NULL, 0, &len, NULL) != SLABCACHE_NOT_FOUND) {
        atomic_fetch_add(&heard->failed_calls, 1); /* an expired entry reads as absent */
    }
    expect_ok(heard, slabcache_set(heard->cache, BYTES("seen-by-the-listener"), BYTES("y"),
                                   SLABCACHE_TTL_NONE, NULL));
    done(heard);
}

static void test_the_maintenance_thread_reports_expirations_without_traffic(void) {
    struct heard heard;
    heard_init(&heard);
    slabcache_t *cache =
        new_listening_cache(listening_options(reading_listener, &heard, 1), &heard);
    write_expiring_keys(cache, 20);
    /* No call from this thread until the thread has reported all 20. */
    CHECK(wait_for_expirations(&heard, 20));
    /* Nothing else expires; the thread's delivery may still be going on, so the other
     * counters are not compared here. */
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_EXPIRED) == 20);
    CHECK(stats_of(cache).expirations == 20);
    CHECK(atomic_load(&heard.off_main_thread) >= 20);
    CHECK(holds(cache, BYTES("seen-by-the-listener"), BYTES("y")));
    slabcache_free(cache);
    CHECK(atomic_load(&heard.overlapped) == 0);
    CHECK(atomic_load(&heard.failed_calls) == 0);
}

static void test_run_pending_tasks_reports_expirations_on_the_calling_thread(void) {
    struct heard heard;
    heard_init(&heard);
    slabcache_t *cache = new_listening_cache(
        listening_options(counting_listener, &heard, NO_MAINTENANCE), &heard);
    write_expiring_keys(cache, 20);
    sleep_ms(20);
    for (int round = 0; round < MAX_POLLS && heard_of(&heard, SLABCACHE_CAUSE_EXPIRED) < 20;
         round++) {
        CHECK_STATUS(slabcache_run_pending_tasks(cache), SLABCACHE_OK);
    }
    CHECK(heard_of(&heard, SLABCACHE_CAUSE_EXPIRED) == 20);
    CHECK(atomic_load(&heard.off_main_thread) == 0);
    check_heard_as_counted(&heard, cache);
    slabcache_free(cache);

    /* Without a listener it reclaims the expired entries all the same. */
    slabcache_t *plain = new_listening_cache(listening_options(NULL, NULL, 0), &heard);
    write_expiring_keys(plain, 20);
    sleep_ms(20);
    for (int round = 0; round < MAX_POLLS && stats_of(plain).expirations < 20; round++) {
        CHECK_STATUS(slabcache_run_pending_tasks(plain), SLABCACHE_OK);
    }
    CHECK(stats_of(plain).expirations == 20);
    CHECK(stats_of(plain).entries == 0);
    slabcache_free(plain);

    CHECK_STATUS(slabcache_run_pending_tasks(NULL), SLABCACHE_INVALID_ARGUMENT);
}

/* slabcache_free waits for the listener call the maintenance thread is making: the context
 * is freed as soon as it returns, and ASan or valgrind report any call after that. Each
 * call sleeps, so that a free often lands during one. */
static void test_no_listener_call_follows_free(void) {
    for (int attempt = 0; attempt < 10; attempt++) {
        struct heard *heard = malloc(sizeof *heard);
        CHECK(heard != NULL);
        if (heard == NULL) {
            return;
        }
        heard_init(heard);
        heard->sleep_ms = 2;
        slabcache_t *cache =
            new_listening_cache(listening_options(counting_listener, heard, 1), heard);
        write_expiring_keys(cache, 50);
        CHECK(wait_for_expirations(heard, 1 + (uint64_t)attempt % 3));
        slabcache_free(cache);
        memset(heard, 0xEE, sizeof *heard);
        free(heard);
    }
}

/* ----- threads ----- */

/* Reads the key it is told of, as another thread may be writing it. */
static void busy_listener(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *value,
                          size_t value_len, int cause) {
    struct heard *heard = ctx;
    (void)value, (void)value_len;
    count(heard, cause);
    size_t len = 0;
    int status = slabcache_get(heard->cache, key, key_len, NULL, 0, &len, NULL);
    if (status != SLABCACHE_NOT_FOUND && status != SLABCACHE_BUFFER_TOO_SMALL &&
        status != SLABCACHE_OK) {
        atomic_fetch_add(&heard->failed_calls, 1);
    }
    done(heard);
}

#define THREADS 4
#define WRITES_PER_THREAD 2000

struct writer {
    const slabcache_t *cache;
    int index;
};

/* Each thread writes, rewrites and deletes keys shared with the others, in a cache too
 * small for them all: every kind of event, made on every thread. A rewrite and a delete
 * follow their key's write at once, so that each kind happens however the threads are
 * scheduled (valgrind runs them one at a time, and a key met again 97 writes later has
 * long been evicted). */
static void *write_and_delete(void *arg) {
    const struct writer *writer = arg;
    char name[32];
    for (int i = 0; i < WRITES_PER_THREAD; i++) {
        int len = snprintf(name, sizeof name, "shared-%d", (i * 7 + writer->index) % 97);
        const uint8_t *key = (const uint8_t *)name;
        (void)slabcache_set(writer->cache, key, (size_t)len, BYTES("value"), i % 3 == 0 ? 1 : 0,
                            NULL);
        if (i % 5 == 4) {
            (void)slabcache_delete(writer->cache, key, (size_t)len);
        } else if (i % 5 == 3) {
            (void)slabcache_set(writer->cache, key, (size_t)len, BYTES("again"), 0, NULL);
        }
    }
    return NULL;
}

static void test_threads_share_one_listener(void) {
    struct heard heard;
    heard_init(&heard);
    slabcache_options_t opts = listening_options(busy_listener, &heard, NO_MAINTENANCE);
    opts.max_entries = 32;
    slabcache_t *cache = new_listening_cache(opts, &heard);
    pthread_t threads[THREADS];
    struct writer writers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        writers[t] = (struct writer){cache, t};
        CHECK(pthread_create(&threads[t], NULL, write_and_delete, &writers[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
    }
    /* Every call has returned, so every event has been delivered: by the thread that made
     * it, or by the one delivering at the time. */
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.evictions > 0 && stats.updates > 0 && stats.removals > 0);
    CHECK(atomic_load(&heard.off_main_thread) > 0);
    check_heard_as_counted(&heard, cache);
    slabcache_free(cache);
}

/* ----- hostile inputs ----- */

static void test_hostile_listener_settings(void) {
    /* A context without a listener: no listener, and nothing calls anything. */
    struct heard heard;
    heard_init(&heard);
    slabcache_options_t opts = listening_options(NULL, &heard, 1);
    slabcache_t *cache = new_listening_cache(opts, &heard);
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("1"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("2"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_delete(cache, BYTES("a")), SLABCACHE_OK);
    CHECK_STATUS(slabcache_run_pending_tasks(cache), SLABCACHE_OK);
    slabcache_free(cache);
    for (int cause = 0; cause < CAUSES; cause++) {
        CHECK(heard_of(&heard, cause) == 0);
    }

    /* Every interval is one: the longest never wakes by itself, and free still stops it at
     * once; 0 is the default; the shortest runs all the time. (Counted once free returns:
     * a round of the maintenance thread may be delivering the write's event meanwhile.) */
    const uint64_t intervals[] = {UINT64_MAX, UINT64_MAX / 1000, 0, 1};
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
        heard_init(&heard);
        cache = new_listening_cache(listening_options(counting_listener, &heard, intervals[i]),
                                    &heard);
        CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("1"), 0, NULL), SLABCACHE_OK);
        CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("2"), 0, NULL), SLABCACHE_OK);
        slabcache_free(cache);
        CHECK(heard_of(&heard, SLABCACHE_CAUSE_REPLACED) == 1);
    }
}

int main(void) {
    alarm(HANG_LIMIT_SECONDS);
    RUN(test_a_listener_may_call_back_into_the_library);
    RUN(test_a_listener_may_write_what_evicts);
    RUN(test_tag_invalidations_are_heard_with_their_values);
    RUN(test_the_maintenance_thread_reports_expirations_without_traffic);
    RUN(test_run_pending_tasks_reports_expirations_on_the_calling_thread);
    RUN(test_no_listener_call_follows_free);
    RUN(test_threads_share_one_listener);
    RUN(test_hostile_listener_settings);
    return finish();
}
