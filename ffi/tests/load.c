/*
 * The read-through test: slabcache_get_or_load and slabcache_sink_value. A loader's value,
 * "not found" and error codes; values longer than the buffer or the cache; a write landing
 * during a load; a loader that calls back into the library (and loads its own key); 32
 * pthreads that miss one key and share one load, its value or its error; and the hostile
 * inputs the header promises to refuse.
 *
 * Built as C11 with -Wall -Wextra -Werror by scripts/ffi-test.sh, which runs it under
 * AddressSanitizer + UndefinedBehaviorSanitizer and again under valgrind.
 */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define SMALL_VALUE_LIMIT 4096u
#define UNTOUCHED_LEN ((size_t)0xC0FFEE)
#define UNTOUCHED_CODE 0x5EED
/* A loader's own error code. */
#define DATABASE_DOWN 42
/* A waiting loader gives up after this many polls of 1 ms (a broken single flight fails
 * the test instead of hanging it). */
#define MAX_POLLS 60000
#define GAVE_UP 99
/* The whole program fails (SIGALRM) rather than hang past this. */
#define HANG_LIMIT_SECONDS 600

static slabcache_t *new_cache(void) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = 16u << 20;
    opts.max_value_bytes = SMALL_VALUE_LIMIT;
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new(&opts, &cache), SLABCACHE_OK);
    return cache;
}

/* ----- a loader that answers as told ----- */

struct answer {
    int code;            /* what the loader returns */
    const uint8_t *value; /* what it hands to the sink first, unless NULL */
    size_t value_len;
    atomic_uint calls;
};

static int answering_loader(void *ctx, const uint8_t *key, size_t key_len,
                            slabcache_sink_t *sink) {
    struct answer *answer = ctx;
    atomic_fetch_add(&answer->calls, 1);
    if (key == NULL || key_len == 0) {
        return -1;
    }
    if (answer->value != NULL &&
        slabcache_sink_value(sink, answer->value, answer->value_len) != SLABCACHE_OK) {
        return -2;
    }
    return answer->code;
}

static int read_through(const slabcache_t *cache, const uint8_t *key, size_t key_len,
                        uint64_t ttl_ms, struct answer *answer, uint8_t *buf, size_t buf_len,
                        size_t *len, int *load_error) {
    return slabcache_get_or_load(cache, key, key_len, ttl_ms, answering_loader, answer, buf,
                                 buf_len, len, load_error);
}

static void test_a_miss_loads_and_caches_and_a_hit_does_not_load(void) {
    slabcache_t *cache = new_cache();
    struct answer answer = {SLABCACHE_OK, (const uint8_t *)"Ada", 3, 0};
    uint8_t buf[16];
    size_t len = UNTOUCHED_LEN;
    int load_error = UNTOUCHED_CODE;
    CHECK_STATUS(read_through(cache, BYTES("user:1"), 0, &answer, buf, sizeof buf, &len,
                              &load_error),
                 SLABCACHE_OK);
    CHECK(len == 3 && memcmp(buf, "Ada", 3) == 0);
    CHECK(load_error == UNTOUCHED_CODE);
    CHECK(holds(cache, BYTES("user:1"), BYTES("Ada")));
    CHECK_STATUS(read_through(cache, BYTES("user:1"), 0, &answer, buf, sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK(atomic_load(&answer.calls) == 1);

    /* An empty value, read into no buffer at all. */
    struct answer empty = {SLABCACHE_OK, (const uint8_t *)"", 0, 0};
    CHECK_STATUS(read_through(cache, BYTES("empty"), 0, &empty, NULL, 0, &len, NULL),
                 SLABCACHE_OK);
    CHECK(len == 0);
    CHECK(holds(cache, BYTES("empty"), BYTES("")));

    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.loads == 2 && stats.load_waits == 0);
    slabcache_free(cache);
}

static void test_not_found_and_errors_cache_nothing(void) {
    slabcache_t *cache = new_cache();
    uint8_t buf[16] = {7};
    size_t len = UNTOUCHED_LEN;
    int load_error = UNTOUCHED_CODE;

    /* "Not found" wins over a value handed to the sink before it. */
    struct answer absent = {SLABCACHE_NOT_FOUND, (const uint8_t *)"ignored", 7, 0};
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &absent, buf, sizeof buf, &len, &load_error),
                 SLABCACHE_NOT_FOUND);
    CHECK(len == UNTOUCHED_LEN && load_error == UNTOUCHED_CODE && buf[0] == 7);

    struct answer failing = {DATABASE_DOWN, (const uint8_t *)"ignored", 7, 0};
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &failing, buf, sizeof buf, &len,
                              &load_error),
                 SLABCACHE_LOAD_FAILED);
    CHECK(load_error == DATABASE_DOWN);
    CHECK(len == UNTOUCHED_LEN && buf[0] == 7);
    /* The code may be any int, a SLABCACHE_* status or a negative one; NULL asks for none. */
    failing.code = -7;
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &failing, buf, sizeof buf, &len,
                              &load_error),
                 SLABCACHE_LOAD_FAILED);
    CHECK(load_error == -7);
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &failing, buf, sizeof buf, &len, NULL),
                 SLABCACHE_LOAD_FAILED);

    /* SLABCACHE_OK without a value is a failed load whose code is SLABCACHE_OK. */
    struct answer no_value = {SLABCACHE_OK, NULL, 0, 0};
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &no_value, buf, sizeof buf, &len,
                              &load_error),
                 SLABCACHE_LOAD_FAILED);
    CHECK(load_error == SLABCACHE_OK);

    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.entries == 0 && stats.inserts == 0);
    CHECK(stats.loads == 5);
    slabcache_free(cache);
}

static void test_a_value_longer_than_the_buffer_or_the_cache(void) {
    slabcache_t *cache = new_cache();
    static uint8_t value[SMALL_VALUE_LIMIT + 1];
    memset(value, 'v', sizeof value);
    uint8_t small[10];
    memset(small, 7, sizeof small);
    size_t len = UNTOUCHED_LEN;

    /* Longer than the buffer: its length, the buffer untouched, and the value cached. */
    struct answer long_value = {SLABCACHE_OK, value, 100, 0};
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &long_value, small, sizeof small, &len, NULL),
                 SLABCACHE_BUFFER_TOO_SMALL);
    CHECK(len == 100 && small[0] == 7 && small[9] == 7);
    static uint8_t buf[SMALL_VALUE_LIMIT + 1];
    CHECK_STATUS(read_through(cache, BYTES("k"), 0, &long_value, buf, sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK(len == 100 && atomic_load(&long_value.calls) == 1);

    /* Longer than the cache takes: returned, not cached, so loaded again. */
    struct answer too_long = {SLABCACHE_OK, value, sizeof value, 0};
    for (int round = 0; round < 2; round++) {
        CHECK_STATUS(read_through(cache, BYTES("big"), 0, &too_long, buf, sizeof buf, &len,
                                  NULL),
                     SLABCACHE_OK);
        CHECK(len == sizeof value && memcmp(buf, value, len) == 0);
    }
    CHECK(atomic_load(&too_long.calls) == 2);
    slabcache_free(cache);
}

static void test_a_loaded_value_takes_the_given_ttl(void) {
    slabcache_t *cache = new_cache();
    struct answer answer = {SLABCACHE_OK, (const uint8_t *)"v", 1, 0};
    uint8_t buf[4];
    size_t len = 0;
    CHECK_STATUS(read_through(cache, BYTES("brief"), 10, &answer, buf, sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(read_through(cache, BYTES("lasting"), SLABCACHE_TTL_NONE, &answer, buf,
                              sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    sleep_ms(40);
    CHECK(!holds(cache, BYTES("brief"), BYTES("v")));
    CHECK(holds(cache, BYTES("lasting"), BYTES("v")));
    slabcache_free(cache);
}

/* ----- loaders that use the library ----- */

/* The key's inner loader: "inner" for any key. */
static int inner_loader(void *ctx, const uint8_t *key, size_t key_len, slabcache_sink_t *sink) {
    (void)ctx;
    (void)key;
    (void)key_len;
    return slabcache_sink_value(sink, BYTES("inner"));
}

struct reentrant {
    const slabcache_t *cache;
    int set_status, get_status, nested_status, recursive_status, sink_statuses[4];
    uint8_t nested[16];
    size_t nested_len;
};

/* Writes and reads other keys, loads another key through a loader of its own, tries to
 * load its own key, and hands the sink bad arguments, before it answers. */
static int reentrant_loader(void *ctx, const uint8_t *key, size_t key_len,
                            slabcache_sink_t *sink) {
    struct reentrant *self = ctx;
    self->set_status = slabcache_set(self->cache, BYTES("side"), BYTES("effect"), 0, NULL);
    uint8_t buf[16];
    size_t len = 0;
    self->get_status = slabcache_get(self->cache, BYTES("side"), buf, sizeof buf, &len, NULL);
    self->nested_status =
        slabcache_get_or_load(self->cache, BYTES("nested"), 0, inner_loader, NULL, self->nested,
                              sizeof self->nested, &self->nested_len, NULL);
    self->recursive_status = slabcache_get_or_load(self->cache, key, key_len, 0, inner_loader,
                                                   NULL, buf, sizeof buf, &len, NULL);
    _Alignas(slabcache_sink_t *) unsigned char raw[2 * sizeof(void *)];
    self->sink_statuses[0] = slabcache_sink_value(NULL, BYTES("v"));
    self->sink_statuses[1] = slabcache_sink_value(sink, NULL, 1);
    self->sink_statuses[2] =
        slabcache_sink_value(sink, (const uint8_t *)"v", (size_t)PTRDIFF_MAX + 1);
    self->sink_statuses[3] =
        slabcache_sink_value((slabcache_sink_t *)(void *)(raw + 1), BYTES("v"));
    /* A second value replaces the first. */
    slabcache_sink_value(sink, BYTES("first"));
    return slabcache_sink_value(sink, BYTES("outer"));
}

static void test_a_loader_may_call_the_library(void) {
    slabcache_t *cache = new_cache();
    struct reentrant self = {cache, -1, -1, -1, -1, {-1, -1, -1, -1}, {0}, 0};
    uint8_t buf[16];
    size_t len = 0;
    CHECK_STATUS(slabcache_get_or_load(cache, BYTES("outer"), 0, reentrant_loader, &self, buf,
                                       sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK(len == 5 && memcmp(buf, "outer", 5) == 0);
    CHECK_STATUS(self.set_status, SLABCACHE_OK);
    CHECK_STATUS(self.get_status, SLABCACHE_OK);
    CHECK_STATUS(self.nested_status, SLABCACHE_OK);
    CHECK(self.nested_len == 5 && memcmp(self.nested, "inner", 5) == 0);
    CHECK_STATUS(self.recursive_status, SLABCACHE_RECURSIVE_LOAD);
    for (int i = 0; i < 4; i++) {
        CHECK_STATUS(self.sink_statuses[i], SLABCACHE_INVALID_ARGUMENT);
    }
    CHECK(holds(cache, BYTES("outer"), BYTES("outer")));
    CHECK(holds(cache, BYTES("nested"), BYTES("inner")));
    CHECK(holds(cache, BYTES("side"), BYTES("effect")));
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.loads == 2);
    slabcache_free(cache);
}

/* A loader whose key is written while it loads: the write wins in the cache, and the caller
 * still gets the loaded value. */
static int overtaken_loader(void *ctx, const uint8_t *key, size_t key_len,
                            slabcache_sink_t *sink) {
    if (slabcache_set(ctx, key, key_len, BYTES("newer"), 0, NULL) != SLABCACHE_OK) {
        return -1;
    }
    return slabcache_sink_value(sink, BYTES("older"));
}

static void test_a_write_during_the_load_wins(void) {
    slabcache_t *cache = new_cache();
    uint8_t buf[16];
    size_t len = 0;
    CHECK_STATUS(slabcache_get_or_load(cache, BYTES("k"), 0, overtaken_loader, cache, buf,
                                       sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK(len == 5 && memcmp(buf, "older", 5) == 0);
    CHECK(holds(cache, BYTES("k"), BYTES("newer")));
    slabcache_free(cache);
}

/* The buffer may be the key's own memory. */
static void test_the_buffer_may_hold_the_key(void) {
    slabcache_t *cache = new_cache();
    struct answer answer = {SLABCACHE_OK, (const uint8_t *)"value", 5, 0};
    uint8_t buf[8] = {'k', 'e', 'y', '.', '.', '.', '.', '.'};
    size_t len = 0;
    CHECK_STATUS(read_through(cache, buf, 3, 0, &answer, buf, sizeof buf, &len, NULL),
                 SLABCACHE_OK);
    CHECK(len == 5 && memcmp(buf, "value", 5) == 0);
    CHECK(holds(cache, BYTES("key"), BYTES("value")));
    slabcache_free(cache);
}

/* ----- one load for many threads ----- */

#define THREADS 32

struct flight {
    const slabcache_t *cache;
    int code; /* the loader's answer: SLABCACHE_OK (a value) or an error code */
    atomic_uint loads;
};

/* Waits until the other THREADS - 1 callers wait for this load, then answers. */
static int waiting_loader(void *ctx, const uint8_t *key, size_t key_len,
                          slabcache_sink_t *sink) {
    struct flight *flight = ctx;
    (void)key;
    (void)key_len;
    atomic_fetch_add(&flight->loads, 1);
    for (int polls = 0;; polls++) {
        slabcache_stats_t stats;
        memset(&stats, 0, sizeof stats);
        stats.size = sizeof stats;
        if (slabcache_stats(flight->cache, &stats) != SLABCACHE_OK) {
            return GAVE_UP;
        }
        if (stats.load_waits >= THREADS - 1) {
            break;
        }
        if (polls == MAX_POLLS) {
            return GAVE_UP;
        }
        sleep_ms(1);
    }
    if (flight->code != SLABCACHE_OK) {
        return flight->code;
    }
    return slabcache_sink_value(sink, BYTES("shared"));
}

struct caller {
    struct flight *flight;
    int status;
    int load_error;
    uint8_t buf[16];
    size_t len;
};

static void *call_get_or_load(void *argument) {
    struct caller *self = argument;
    self->status = slabcache_get_or_load(self->flight->cache, BYTES("hot"), 0, waiting_loader,
                                         self->flight, self->buf, sizeof self->buf, &self->len,
                                         &self->load_error);
    return NULL;
}

/* THREADS threads miss one key at once; returns the callers, each with its result. */
static void run_flight(struct flight *flight, struct caller callers[THREADS]) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&callers[i], 0, sizeof callers[i]);
        callers[i].flight = flight;
        callers[i].load_error = UNTOUCHED_CODE;
        CHECK(pthread_create(&threads[i], NULL, call_get_or_load, &callers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
}

static void test_concurrent_misses_share_one_load(void) {
    slabcache_t *cache = new_cache();
    struct flight flight = {cache, SLABCACHE_OK, 0};
    static struct caller callers[THREADS];
    run_flight(&flight, callers);
    CHECK(atomic_load(&flight.loads) == 1);
    for (int i = 0; i < THREADS; i++) {
        CHECK_STATUS(callers[i].status, SLABCACHE_OK);
        CHECK(callers[i].len == 6 && memcmp(callers[i].buf, "shared", 6) == 0);
        CHECK(callers[i].load_error == UNTOUCHED_CODE);
    }
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.loads == 1 && stats.load_waits == THREADS - 1);
    CHECK(holds(cache, BYTES("hot"), BYTES("shared")));
    slabcache_free(cache);
}

static void test_a_load_error_reaches_every_waiter(void) {
    slabcache_t *cache = new_cache();
    struct flight flight = {cache, DATABASE_DOWN, 0};
    static struct caller callers[THREADS];
    run_flight(&flight, callers);
    CHECK(atomic_load(&flight.loads) == 1);
    for (int i = 0; i < THREADS; i++) {
        CHECK_STATUS(callers[i].status, SLABCACHE_LOAD_FAILED);
        CHECK(callers[i].load_error == DATABASE_DOWN);
        CHECK(callers[i].len == 0);
    }
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.loads == 1 && stats.load_waits == THREADS - 1 && stats.entries == 0);
    slabcache_free(cache);
}

/* ----- hostile inputs ----- */

static uint8_t largest_key[SLABCACHE_MAX_KEY_LEN + 1];

static void test_get_or_load_refuses_hostile_inputs(void) {
    slabcache_t *cache = new_cache();
    struct answer answer = {SLABCACHE_OK, (const uint8_t *)"v", 1, 0};
    _Alignas(uint64_t) unsigned char raw[2 * sizeof(uint64_t)];
    size_t *misaligned_len = (size_t *)(void *)(raw + 1);
    int *misaligned_error = (int *)(void *)(raw + 1);
    uint8_t buf[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    size_t len = UNTOUCHED_LEN;
    int load_error = UNTOUCHED_CODE;
    memset(largest_key, 'k', sizeof largest_key);

#define REFUSED(call, status)                                               \
    do {                                                                    \
        CHECK_STATUS(call, status);                                         \
        CHECK(len == UNTOUCHED_LEN && load_error == UNTOUCHED_CODE && buf[0] == 7); \
    } while (0)
    REFUSED(read_through(NULL, BYTES("k"), 0, &answer, buf, sizeof buf, &len, &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, NULL, 1, 0, &answer, buf, sizeof buf, &len, &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, (const uint8_t *)"k", 0, 0, &answer, buf, sizeof buf, &len,
                         &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, largest_key, SLABCACHE_MAX_KEY_LEN + 1, 0, &answer, buf,
                         sizeof buf, &len, &load_error),
            SLABCACHE_KEY_TOO_LARGE);
    REFUSED(read_through(cache, (const uint8_t *)"k", SIZE_MAX, 0, &answer, buf, sizeof buf,
                         &len, &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX, 0, &answer, buf,
                         sizeof buf, &len, &load_error),
            SLABCACHE_KEY_TOO_LARGE);
    REFUSED(slabcache_get_or_load(cache, BYTES("k"), 0, NULL, &answer, buf, sizeof buf, &len,
                                  &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, BYTES("k"), 0, &answer, NULL, 8, &len, &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, BYTES("k"), 0, &answer, buf, (size_t)PTRDIFF_MAX + 1, &len,
                         &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, BYTES("k"), 0, &answer, buf, sizeof buf, NULL, &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, BYTES("k"), 0, &answer, buf, sizeof buf, misaligned_len,
                         &load_error),
            SLABCACHE_INVALID_ARGUMENT);
    REFUSED(read_through(cache, BYTES("k"), 0, &answer, buf, sizeof buf, &len, misaligned_error),
            SLABCACHE_INVALID_ARGUMENT);
#undef REFUSED
    CHECK(atomic_load(&answer.calls) == 0);
    /* A sink outside any loader. */
    CHECK_STATUS(slabcache_sink_value(NULL, NULL, 0), SLABCACHE_INVALID_ARGUMENT);
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.loads == 0 && stats.entries == 0);
    slabcache_free(cache);
}

int main(void) {
    alarm(HANG_LIMIT_SECONDS);
    RUN(test_a_miss_loads_and_caches_and_a_hit_does_not_load);
    RUN(test_not_found_and_errors_cache_nothing);
    RUN(test_a_value_longer_than_the_buffer_or_the_cache);
    RUN(test_a_loaded_value_takes_the_given_ttl);
    RUN(test_a_loader_may_call_the_library);
    RUN(test_a_write_during_the_load_wins);
    RUN(test_the_buffer_may_hold_the_key);
    RUN(test_concurrent_misses_share_one_load);
    RUN(test_a_load_error_reaches_every_waiter);
    RUN(test_get_or_load_refuses_hostile_inputs);
    return finish();
}
