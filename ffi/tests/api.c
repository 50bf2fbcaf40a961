/*
 * The C API test: every function, every status code, and the hostile inputs the header
 * promises to refuse. Built as C11 with -Wall -Wextra -Werror by scripts/ffi-test.sh, which
 * runs it under AddressSanitizer + UndefinedBehaviorSanitizer and again under valgrind.
 *
 * It links a library built with the `test-hooks` feature, for slabcache_test_panic, and
 * needs SLABCACHE_EXPECTED_VERSION defined to the version string the library must report.
 */

#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

#ifndef SLABCACHE_EXPECTED_VERSION
#error "define SLABCACHE_EXPECTED_VERSION to the version of the library under test"
#endif

/* Exported only by the `test-hooks` build: panics inside the library's panic guard. */
int slabcache_test_panic(void);

#define CACHE_BYTES (16u << 20)
#define SMALL_VALUE_LIMIT 4096u
#define UNTOUCHED_VERSION UINT64_C(0xDEADBEEFDEADBEEF)
#define UNTOUCHED_LEN ((size_t)0xC0FFEE)

static slabcache_options_t default_options(void) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = CACHE_BYTES;
    return opts;
}

static slabcache_t *new_cache_with(slabcache_options_t opts) {
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new(&opts, &cache), SLABCACHE_OK);
    CHECK(cache != NULL);
    return cache;
}

static slabcache_t *new_cache(void) { return new_cache_with(default_options()); }

static int is_absent(const slabcache_t *cache, const uint8_t *key, size_t key_len) {
    size_t len = 0;
    return slabcache_get(cache, key, key_len, NULL, 0, &len, NULL) == SLABCACHE_NOT_FOUND;
}

/* ----- version and status names ----- */

#define CHECK_NAMED(code) \
    CHECK(strncmp(slabcache_status_str(code), #code ":", strlen(#code ":")) == 0)

static void test_version_and_status_names(void) {
    CHECK(strcmp(slabcache_version(), SLABCACHE_EXPECTED_VERSION) == 0);

    CHECK(SLABCACHE_OK == 0);
    CHECK_NAMED(SLABCACHE_OK);
    CHECK_NAMED(SLABCACHE_NOT_FOUND);
    CHECK_NAMED(SLABCACHE_EXISTS);
    CHECK_NAMED(SLABCACHE_VERSION_MISMATCH);
    CHECK_NAMED(SLABCACHE_BUFFER_TOO_SMALL);
    CHECK_NAMED(SLABCACHE_KEY_TOO_LARGE);
    CHECK_NAMED(SLABCACHE_VALUE_TOO_LARGE);
    CHECK_NAMED(SLABCACHE_INVALID_ARGUMENT);
    CHECK_NAMED(SLABCACHE_PANIC);
    CHECK_NAMED(SLABCACHE_LOAD_FAILED);
    CHECK_NAMED(SLABCACHE_RECURSIVE_LOAD);
    CHECK_NAMED(SLABCACHE_WRITE_FAILED);
    CHECK_NAMED(SLABCACHE_QUEUE_FULL);

    const int codes[] = {SLABCACHE_OK,           SLABCACHE_NOT_FOUND,
                         SLABCACHE_EXISTS,       SLABCACHE_VERSION_MISMATCH,
                         SLABCACHE_BUFFER_TOO_SMALL, SLABCACHE_KEY_TOO_LARGE,
                         SLABCACHE_VALUE_TOO_LARGE,  SLABCACHE_INVALID_ARGUMENT,
                         SLABCACHE_PANIC,        SLABCACHE_LOAD_FAILED,
                         SLABCACHE_RECURSIVE_LOAD,   SLABCACHE_WRITE_FAILED,
                         SLABCACHE_QUEUE_FULL};
    const size_t count = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < count; i++) {
        for (size_t j = i + 1; j < count; j++) {
            CHECK(codes[i] != codes[j]);
        }
    }

    const int unknown[] = {-1, SLABCACHE_QUEUE_FULL + 1, 1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK(strcmp(slabcache_status_str(unknown[i]), "SLABCACHE_UNKNOWN_STATUS") == 0);
    }
}

/* ----- options, new, free ----- */

static void test_options_init_fills_size_and_defaults(void) {
    slabcache_options_t opts;
    memset(&opts, 0xAB, sizeof opts);
    slabcache_options_init(&opts);
    CHECK(opts.size == sizeof(slabcache_options_t));
    CHECK(opts.max_bytes == 0);
    CHECK(opts.max_entries == 0);
    CHECK(opts.default_ttl_ms == 0);
    CHECK(opts.ttl_jitter == 0.0);
    CHECK(opts.max_value_bytes == 0);
    CHECK(opts.listener == NULL);
    CHECK(opts.listener_ctx == NULL);
    CHECK(opts.maintenance_interval_ms == 0);
    slabcache_options_init(NULL);
}

static void test_new_accepts_the_edges_of_every_range(void) {
    slabcache_options_t opts = default_options();
    opts.max_entries = 100;
    opts.default_ttl_ms = 1000;
    opts.ttl_jitter = 1.0;
    slabcache_free(new_cache_with(opts));

    opts = default_options();
    opts.default_ttl_ms = SLABCACHE_TTL_NONE;
    slabcache_free(new_cache_with(opts));

    /* The largest values: the page (and so the smallest arena) is 128 MiB. */
    opts = default_options();
    opts.max_value_bytes = 64u << 20;
    opts.max_bytes = 128u << 20;
    slabcache_free(new_cache_with(opts));
}

/* `opts` is refused and `*out` left as it was. */
static void check_refused(const slabcache_options_t *opts, const char *why) {
    int marker = 0;
    slabcache_t *const untouched = (slabcache_t *)(void *)&marker;
    slabcache_t *out = untouched;
    int status = slabcache_new(opts, &out);
    if (status != SLABCACHE_INVALID_ARGUMENT || out != untouched) {
        fprintf(stderr, "options with %s: %s\n", why, slabcache_status_str(status));
        check_failures_in_test++;
    }
}

static void test_new_refuses_invalid_options(void) {
    check_refused(NULL, "a NULL pointer");

    slabcache_options_t opts = default_options();
    CHECK_STATUS(slabcache_new(&opts, NULL), SLABCACHE_INVALID_ARGUMENT);

    opts.size = 0;
    check_refused(&opts, "size 0");
    opts.size = sizeof opts - 1;
    check_refused(&opts, "a size one byte short");

    /* A caller built against a later header with more fields: refused, not guessed at. */
    struct {
        slabcache_options_t known;
        uint64_t later_fields[4];
    } longer;
    memset(&longer, 0, sizeof longer);
    longer.known = default_options();
    longer.known.size = sizeof longer;
    check_refused(&longer.known, "a size larger than this library's");

    /* A struct holding nothing but its size: only that may be read. */
    size_t size_only = sizeof(size_t);
    check_refused((const slabcache_options_t *)(const void *)&size_only, "only a size field");

    opts = default_options();
    opts.max_bytes = 0;
    check_refused(&opts, "max_bytes 0");
    opts.max_bytes = 1u << 20;
    check_refused(&opts, "max_bytes below one page");
    opts.max_bytes = UINT64_MAX;
    check_refused(&opts, "max_bytes UINT64_MAX");

    const double bad_jitter[] = {NAN, -0.01, 1.01, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_jitter / sizeof bad_jitter[0]; i++) {
        opts = default_options();
        opts.ttl_jitter = bad_jitter[i];
        check_refused(&opts, "out-of-range ttl_jitter");
    }

    opts = default_options();
    opts.max_value_bytes = (64u << 20) + 1;
    check_refused(&opts, "max_value_bytes above 64 MiB");
}

/* slabcache_options_t as a program built against the header before the listener lays it
 * out. */
struct options_before_listener {
    size_t size;
    uint64_t max_bytes;
    uint64_t max_entries;
    uint64_t default_ttl_ms;
    double ttl_jitter;
    uint32_t max_value_bytes;
};

static void test_the_previous_headers_options_are_taken(void) {
    /* Exactly that size, allocated to it, so that ASan and valgrind see a read past it. */
    struct options_before_listener *old = malloc(sizeof *old);
    CHECK(old != NULL);
    if (old == NULL) {
        return;
    }
    memset(old, 0, sizeof *old);
    old->size = sizeof *old;
    CHECK(old->size < sizeof(slabcache_options_t));
    old->max_bytes = CACHE_BYTES;
    old->max_entries = 4;
    old->max_value_bytes = SMALL_VALUE_LIMIT;
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new((const slabcache_options_t *)(const void *)old, &cache),
                 SLABCACHE_OK);
    if (cache != NULL) {
        char name[16];
        for (int i = 0; i < 10; i++) {
            int len = snprintf(name, sizeof name, "k%d", i);
            CHECK_STATUS(
                slabcache_set(cache, (const uint8_t *)name, (size_t)len, BYTES("v"), 0, NULL),
                SLABCACHE_OK);
        }
        slabcache_stats_t stats = stats_of(cache);
        CHECK(stats.entries <= 4); /* max_entries was read */
        CHECK(stats.max_bytes == CACHE_BYTES);
        /* and max_value_bytes, the old struct's last field */
        static const uint8_t too_long[SMALL_VALUE_LIMIT + 1];
        CHECK_STATUS(slabcache_set(cache, BYTES("long"), too_long, sizeof too_long, 0, NULL),
                     SLABCACHE_VALUE_TOO_LARGE);
        slabcache_free(cache);
    }

    /* Sizes between the versions, or the old fields' end without its padding: refused. */
    const size_t refused[] = {sizeof *old - 4, sizeof *old + 8, sizeof(slabcache_options_t) - 8};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        slabcache_options_t opts = default_options();
        opts.size = refused[i];
        check_refused(&opts, "a size between the versions");
    }
    free(old);
}

static void test_free_accepts_null(void) { slabcache_free(NULL); }

/* ----- reads and writes ----- */

static void test_set_then_get(void) {
    slabcache_t *cache = new_cache();
    uint64_t v1 = 0, v2 = 0, read_version = 0;
    CHECK_STATUS(slabcache_set(cache, BYTES("user:42"), BYTES("Ada"), 0, &v1), SLABCACHE_OK);
    CHECK(v1 != 0);

    uint8_t buf[16];
    size_t len = 0;
    CHECK_STATUS(slabcache_get(cache, BYTES("user:42"), buf, sizeof buf, &len, &read_version),
                 SLABCACHE_OK);
    CHECK(len == 3 && memcmp(buf, "Ada", 3) == 0);
    CHECK(read_version == v1);

    /* Versions of a key only go up; the optional out-parameters may be NULL. */
    CHECK_STATUS(slabcache_set(cache, BYTES("user:42"), BYTES("Ada L."), 0, &v2), SLABCACHE_OK);
    CHECK(v2 > v1);
    CHECK_STATUS(slabcache_get(cache, BYTES("user:42"), buf, sizeof buf, &len, &read_version),
                 SLABCACHE_OK);
    CHECK(read_version == v2 && len == 6 && memcmp(buf, "Ada L.", 6) == 0);
    CHECK_STATUS(slabcache_set(cache, BYTES("user:42"), BYTES("x"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_get(cache, BYTES("user:42"), buf, sizeof buf, &len, NULL),
                 SLABCACHE_OK);

    /* Keys and values are bytes: NULs included. */
    const uint8_t binary[] = {0, 1, 0, 255};
    CHECK_STATUS(slabcache_set(cache, binary, sizeof binary, binary, sizeof binary, 0, NULL),
                 SLABCACHE_OK);
    CHECK(holds(cache, binary, sizeof binary, binary, sizeof binary));

    /* An empty value, given as NULL or not, read into no buffer at all. */
    CHECK_STATUS(slabcache_set(cache, BYTES("empty"), NULL, 0, 0, NULL), SLABCACHE_OK);
    len = UNTOUCHED_LEN;
    CHECK_STATUS(slabcache_get(cache, BYTES("empty"), NULL, 0, &len, NULL), SLABCACHE_OK);
    CHECK(len == 0);
    CHECK_STATUS(slabcache_set(cache, BYTES("empty too"), buf, 0, 0, NULL), SLABCACHE_OK);
    CHECK(holds(cache, BYTES("empty too"), buf, 0));
    slabcache_free(cache);
}

static void test_get_reports_a_buffer_too_small(void) {
    slabcache_t *cache = new_cache();
    uint8_t value[100];
    for (size_t i = 0; i < sizeof value; i++) {
        value[i] = (uint8_t)i;
    }
    uint64_t written = 0;
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), value, sizeof value, 0, &written),
                 SLABCACHE_OK);

    uint8_t buf[sizeof value];
    memset(buf, 0x5A, sizeof buf);
    size_t len = UNTOUCHED_LEN;
    uint64_t version = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof value - 1, &len, &version),
                 SLABCACHE_BUFFER_TOO_SMALL);
    CHECK(len == sizeof value);
    CHECK(version == UNTOUCHED_VERSION);
    int untouched = 1;
    for (size_t i = 0; i < sizeof buf; i++) {
        untouched &= buf[i] == 0x5A;
    }
    CHECK(untouched);

    /* No buffer at all asks for the length only. */
    len = UNTOUCHED_LEN;
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), NULL, 0, &len, NULL),
                 SLABCACHE_BUFFER_TOO_SMALL);
    CHECK(len == sizeof value);

    /* A buffer of exactly the value's length. */
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof value, &len, &version),
                 SLABCACHE_OK);
    CHECK(len == sizeof value && memcmp(buf, value, sizeof value) == 0);
    CHECK(version == written);
    slabcache_free(cache);
}

static void test_a_miss_writes_nothing(void) {
    slabcache_t *cache = new_cache();
    uint8_t buf[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    size_t len = UNTOUCHED_LEN;
    uint64_t version = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_get(cache, BYTES("absent"), buf, sizeof buf, &len, &version),
                 SLABCACHE_NOT_FOUND);
    CHECK(len == UNTOUCHED_LEN && version == UNTOUCHED_VERSION && buf[0] == 7 && buf[7] == 7);
    slabcache_free(cache);
}

static void test_add_writes_only_an_absent_key(void) {
    slabcache_t *cache = new_cache();
    uint64_t first = 0, version = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_add(cache, BYTES("k"), BYTES("first"), 0, &first), SLABCACHE_OK);
    CHECK_STATUS(slabcache_add(cache, BYTES("k"), BYTES("second"), 0, &version),
                 SLABCACHE_EXISTS);
    CHECK(version == UNTOUCHED_VERSION);
    CHECK(holds(cache, BYTES("k"), BYTES("first")));

    CHECK_STATUS(slabcache_delete(cache, BYTES("k")), SLABCACHE_OK);
    CHECK_STATUS(slabcache_add(cache, BYTES("k"), BYTES("third"), 0, &version), SLABCACHE_OK);
    CHECK(version > first);
    CHECK(holds(cache, BYTES("k"), BYTES("third")));
    slabcache_free(cache);
}

static void test_replace_writes_only_a_present_key(void) {
    slabcache_t *cache = new_cache();
    uint64_t version = UNTOUCHED_VERSION, first = 0;
    CHECK_STATUS(slabcache_replace(cache, BYTES("k"), BYTES("v"), 0, &version),
                 SLABCACHE_NOT_FOUND);
    CHECK(version == UNTOUCHED_VERSION);
    CHECK(is_absent(cache, BYTES("k")));

    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("v"), 0, &first), SLABCACHE_OK);
    CHECK_STATUS(slabcache_replace(cache, BYTES("k"), BYTES("w"), 0, &version), SLABCACHE_OK);
    CHECK(version > first);
    CHECK(holds(cache, BYTES("k"), BYTES("w")));
    slabcache_free(cache);
}

static void test_cas_writes_only_the_expected_version(void) {
    slabcache_t *cache = new_cache();
    uint64_t v1 = 0, v2 = 0, out = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("one"), 0, &v1), SLABCACHE_OK);
    CHECK_STATUS(slabcache_cas(cache, BYTES("k"), BYTES("two"), v1, 0, &v2), SLABCACHE_OK);
    CHECK(v2 > v1);
    CHECK(holds(cache, BYTES("k"), BYTES("two")));

    /* A stale expectation: refused, and told the current version. */
    CHECK_STATUS(slabcache_cas(cache, BYTES("k"), BYTES("stale"), v1, 0, &out),
                 SLABCACHE_VERSION_MISMATCH);
    CHECK(out == v2);
    CHECK(holds(cache, BYTES("k"), BYTES("two")));
    CHECK_STATUS(slabcache_cas(cache, BYTES("k"), BYTES("stale"), v1, 0, NULL),
                 SLABCACHE_VERSION_MISMATCH);

    out = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_cas(cache, BYTES("absent"), BYTES("x"), v1, 0, &out),
                 SLABCACHE_NOT_FOUND);
    CHECK(out == UNTOUCHED_VERSION);
    CHECK(is_absent(cache, BYTES("absent")));

    /* 0 is never a version. */
    CHECK_STATUS(slabcache_cas(cache, BYTES("k"), BYTES("x"), 0, 0, &out),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(out == UNTOUCHED_VERSION);

    CHECK_STATUS(slabcache_cas(cache, BYTES("k"), BYTES("three"), v2, 0, NULL), SLABCACHE_OK);
    CHECK(holds(cache, BYTES("k"), BYTES("three")));
    slabcache_free(cache);
}

static void test_delete(void) {
    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_delete(cache, BYTES("k")), SLABCACHE_OK);
    CHECK(is_absent(cache, BYTES("k")));
    CHECK_STATUS(slabcache_delete(cache, BYTES("k")), SLABCACHE_NOT_FOUND);
    slabcache_free(cache);
}

static void test_delete_if_version(void) {
    slabcache_t *cache = new_cache();
    uint64_t v1 = 0, v2 = 0;
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("one"), 0, &v1), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("two"), 0, &v2), SLABCACHE_OK);
    CHECK_STATUS(slabcache_delete_if_version(cache, BYTES("k"), v1),
                 SLABCACHE_VERSION_MISMATCH);
    CHECK(holds(cache, BYTES("k"), BYTES("two")));
    CHECK_STATUS(slabcache_delete_if_version(cache, BYTES("k"), 0), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete_if_version(cache, BYTES("k"), v2), SLABCACHE_OK);
    CHECK(is_absent(cache, BYTES("k")));
    CHECK_STATUS(slabcache_delete_if_version(cache, BYTES("k"), v2), SLABCACHE_NOT_FOUND);
    slabcache_free(cache);
}

static void test_clear_removes_everything(void) {
    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("1"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("b"), BYTES("2"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("c"), BYTES("3"), 0, NULL), SLABCACHE_OK);
    slabcache_clear(cache);
    CHECK(is_absent(cache, BYTES("a")) && is_absent(cache, BYTES("b")) &&
          is_absent(cache, BYTES("c")));
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.entries == 0 && stats.removals == 3 && stats.payload_bytes == 0);
    slabcache_clear(NULL);
    slabcache_free(cache);
}

/* ----- stats ----- */

static void test_stats_count_every_operation(void) {
    slabcache_t *cache = new_cache();
    uint64_t version = 0;
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("xyz"), 0, &version), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("wxyz"), 0, &version), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("bb"), BYTES("12"), 0, NULL), SLABCACHE_OK);
    CHECK(holds(cache, BYTES("a"), BYTES("wxyz")));
    CHECK(is_absent(cache, BYTES("zz")));
    CHECK_STATUS(slabcache_cas(cache, BYTES("a"), BYTES("-"), version + 1, 0, NULL),
                 SLABCACHE_VERSION_MISMATCH);
    CHECK_STATUS(slabcache_delete(cache, BYTES("bb")), SLABCACHE_OK);

    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.size == sizeof stats);
    CHECK(stats.hits == 1);
    CHECK(stats.misses == 1);
    CHECK(stats.inserts == 2);
    CHECK(stats.updates == 1);
    CHECK(stats.removals == 1);
    CHECK(stats.evictions == 0);
    CHECK(stats.expirations == 0);
    CHECK(stats.cas_failures == 1);
    CHECK(stats.entries == 1);
    CHECK(stats.payload_bytes == 1 + 4);
    CHECK(stats.max_bytes == CACHE_BYTES);
    CHECK(stats.arena_bytes_used > 0 && stats.arena_bytes_used <= stats.max_bytes);
    CHECK(stats.fixed_overhead_bytes > 0);
    slabcache_free(cache);
}

static void test_stats_count_evictions_and_expirations(void) {
    slabcache_options_t opts = default_options();
    opts.max_entries = 8;
    slabcache_t *bounded = new_cache_with(opts);
    char key[16];
    for (int i = 0; i < 100; i++) {
        int len = snprintf(key, sizeof key, "key-%d", i);
        CHECK_STATUS(slabcache_set(bounded, (const uint8_t *)key, (size_t)len, BYTES("v"), 0,
                                   NULL),
                     SLABCACHE_OK);
    }
    slabcache_stats_t stats = stats_of(bounded);
    CHECK(stats.inserts == 100);
    CHECK(stats.entries <= 8);
    CHECK(stats.evictions == stats.inserts - stats.entries);
    slabcache_free(bounded);

    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("brief"), BYTES("v"), 1, NULL), SLABCACHE_OK);
    sleep_ms(20);
    CHECK(is_absent(cache, BYTES("brief")));
    /* Removing the expired entry reclaims it, which counts as an expiration. */
    CHECK_STATUS(slabcache_delete(cache, BYTES("brief")), SLABCACHE_NOT_FOUND);
    stats = stats_of(cache);
    CHECK(stats.expirations == 1);
    CHECK(stats.entries == 0);
    slabcache_free(cache);
}

/* slabcache_stats_t as a program built against the header before `loads` lays it out. */
struct stats_before_loads {
    size_t size;
    uint64_t hits, misses, inserts, updates, removals, evictions, expirations, cas_failures,
        entries, payload_bytes, arena_bytes_used, max_bytes, fixed_overhead_bytes;
};

static void test_stats_refuse_unknown_sizes(void) {
    slabcache_t *cache = new_cache();
    struct {
        slabcache_stats_t known;
        uint64_t later_fields[4];
    } longer;
    const size_t sizes[] = {0, sizeof(slabcache_stats_t) - 8, sizeof longer,
                            sizeof(struct stats_before_loads) - 8,
                            sizeof(struct stats_before_loads) + 8};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memset(&longer, 0x5A, sizeof longer);
        longer.known.size = sizes[i];
        CHECK_STATUS(slabcache_stats(cache, &longer.known), SLABCACHE_INVALID_ARGUMENT);
        CHECK(longer.known.size == sizes[i]);
        CHECK(longer.known.hits == UINT64_C(0x5A5A5A5A5A5A5A5A));
    }
    CHECK_STATUS(slabcache_stats(cache, NULL), SLABCACHE_INVALID_ARGUMENT);
    slabcache_stats_t stats;
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_stats(NULL, &stats), SLABCACHE_INVALID_ARGUMENT);
    slabcache_free(cache);
}

static void test_stats_take_the_previous_headers_size(void) {
    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("a"), BYTES("xyz"), 0, NULL), SLABCACHE_OK);
    CHECK(holds(cache, BYTES("a"), BYTES("xyz")));
    /* What follows the old struct must stay as it was. */
    struct {
        struct stats_before_loads old;
        uint64_t after[3];
    } padded;
    memset(&padded, 0x5A, sizeof padded);
    padded.old.size = sizeof padded.old;
    CHECK(sizeof padded.old < sizeof(slabcache_stats_t));
    CHECK_STATUS(slabcache_stats(cache, (slabcache_stats_t *)(void *)&padded.old), SLABCACHE_OK);
    CHECK(padded.old.size == sizeof padded.old);
    CHECK(padded.old.hits == 1);
    CHECK(padded.old.misses == 0);
    CHECK(padded.old.inserts == 1);
    CHECK(padded.old.entries == 1);
    CHECK(padded.old.max_bytes == CACHE_BYTES);
    CHECK(padded.old.fixed_overhead_bytes > 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(padded.after[i] == UINT64_C(0x5A5A5A5A5A5A5A5A));
    }
    /* Exactly that size: allocated to it, so that ASan and valgrind see a write past it. */
    struct stats_before_loads *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    if (heap != NULL) {
        heap->size = sizeof *heap;
        CHECK_STATUS(slabcache_stats(cache, (slabcache_stats_t *)(void *)heap), SLABCACHE_OK);
        CHECK(heap->inserts == 1);
        free(heap);
    }
    slabcache_free(cache);
}

/* ----- TTL ----- */

static void test_ttl_rules(void) {
    /* Without a default TTL, ttl_ms 0 never expires. */
    slabcache_t *plain = new_cache();
    /* With a default TTL of 10 ms, ttl_ms 0 means 10 ms; SLABCACHE_TTL_NONE means never. */
    slabcache_options_t opts = default_options();
    opts.default_ttl_ms = 10;
    slabcache_t *expiring = new_cache_with(opts);
    uint64_t version = 0;

    CHECK_STATUS(slabcache_set(plain, BYTES("default"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(plain, BYTES("short"), BYTES("v"), 10, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_add(plain, BYTES("add"), BYTES("v"), 10, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(plain, BYTES("replace"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_replace(plain, BYTES("replace"), BYTES("w"), 10, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(plain, BYTES("cas"), BYTES("v"), 0, &version), SLABCACHE_OK);
    CHECK_STATUS(slabcache_cas(plain, BYTES("cas"), BYTES("w"), version, 10, NULL),
                 SLABCACHE_OK);

    CHECK_STATUS(slabcache_set(expiring, BYTES("default"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(expiring, BYTES("never"), BYTES("v"), SLABCACHE_TTL_NONE, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(expiring, BYTES("minute"), BYTES("v"), 60000, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_add(expiring, BYTES("add"), BYTES("v"), SLABCACHE_TTL_NONE, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(expiring, BYTES("replace"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(
        slabcache_replace(expiring, BYTES("replace"), BYTES("w"), SLABCACHE_TTL_NONE, NULL),
        SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(expiring, BYTES("cas"), BYTES("v"), 0, &version), SLABCACHE_OK);
    CHECK_STATUS(
        slabcache_cas(expiring, BYTES("cas"), BYTES("w"), version, SLABCACHE_TTL_NONE, NULL),
        SLABCACHE_OK);
    CHECK(holds(expiring, BYTES("minute"), BYTES("v")));

    sleep_ms(40);

    CHECK(holds(plain, BYTES("default"), BYTES("v")));
    CHECK(is_absent(plain, BYTES("short")));
    CHECK(is_absent(plain, BYTES("add")));
    CHECK(is_absent(plain, BYTES("replace")));
    CHECK(is_absent(plain, BYTES("cas")));

    CHECK(is_absent(expiring, BYTES("default")));
    CHECK(holds(expiring, BYTES("never"), BYTES("v")));
    CHECK(holds(expiring, BYTES("minute"), BYTES("v")));
    CHECK(holds(expiring, BYTES("add"), BYTES("v")));
    CHECK(holds(expiring, BYTES("replace"), BYTES("w")));
    CHECK(holds(expiring, BYTES("cas"), BYTES("w")));
    slabcache_free(plain);
    slabcache_free(expiring);
}

/* ----- limits and hostile inputs ----- */

static uint8_t largest_key[SLABCACHE_MAX_KEY_LEN + 1];
static uint8_t largest_value[SMALL_VALUE_LIMIT + 1];

static void test_keys_and_values_up_to_their_limits(void) {
    slabcache_options_t opts = default_options();
    opts.max_value_bytes = SMALL_VALUE_LIMIT;
    slabcache_t *cache = new_cache_with(opts);
    memset(largest_key, 'k', sizeof largest_key);
    memset(largest_value, 'v', sizeof largest_value);

    CHECK_STATUS(slabcache_set(cache, largest_key, SLABCACHE_MAX_KEY_LEN, largest_value,
                               SMALL_VALUE_LIMIT, 0, NULL),
                 SLABCACHE_OK);
    static uint8_t buf[SMALL_VALUE_LIMIT];
    size_t len = 0;
    CHECK_STATUS(
        slabcache_get(cache, largest_key, SLABCACHE_MAX_KEY_LEN, buf, sizeof buf, &len, NULL),
        SLABCACHE_OK);
    CHECK(len == SMALL_VALUE_LIMIT && memcmp(buf, largest_value, len) == 0);

    CHECK_STATUS(slabcache_set(cache, largest_key, SLABCACHE_MAX_KEY_LEN + 1, BYTES("v"), 0,
                               NULL),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), largest_value, SMALL_VALUE_LIMIT + 1, 0, NULL),
                 SLABCACHE_VALUE_TOO_LARGE);
    slabcache_free(cache);
}

enum write_kind { WRITE_SET, WRITE_ADD, WRITE_REPLACE, WRITE_CAS };

static int write_entry(enum write_kind kind, const slabcache_t *cache, const uint8_t *key,
                       size_t key_len, const uint8_t *val, size_t val_len,
                       uint64_t *out_version) {
    switch (kind) {
        case WRITE_SET:
            return slabcache_set(cache, key, key_len, val, val_len, 0, out_version);
        case WRITE_ADD:
            return slabcache_add(cache, key, key_len, val, val_len, 0, out_version);
        case WRITE_REPLACE:
            return slabcache_replace(cache, key, key_len, val, val_len, 0, out_version);
        case WRITE_CAS:
            return slabcache_cas(cache, key, key_len, val, val_len, 1, 0, out_version);
    }
    return -1;
}

static void test_writes_refuse_hostile_inputs(void) {
    slabcache_options_t opts = default_options();
    opts.max_value_bytes = SMALL_VALUE_LIMIT;
    slabcache_t *cache = new_cache_with(opts);
    _Alignas(uint64_t) unsigned char raw[2 * sizeof(uint64_t)];
    uint64_t *misaligned = (uint64_t *)(void *)(raw + 1);

    const enum write_kind kinds[] = {WRITE_SET, WRITE_ADD, WRITE_REPLACE, WRITE_CAS};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const enum write_kind kind = kinds[i];
        uint64_t version = UNTOUCHED_VERSION;
        CHECK_STATUS(write_entry(kind, NULL, BYTES("k"), BYTES("v"), &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, NULL, 1, BYTES("v"), &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, NULL, 0, BYTES("v"), &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, (const uint8_t *)"k", 0, BYTES("v"), &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, largest_key, SLABCACHE_MAX_KEY_LEN + 1,
                                 BYTES("v"), &version),
                     SLABCACHE_KEY_TOO_LARGE);
        /* Lengths no object can have are refused as invalid, before a byte is read; one
         * that could be real, if too long, as too large. */
        CHECK_STATUS(write_entry(kind, cache, (const uint8_t *)"k", SIZE_MAX, BYTES("v"),
                                 &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX + 1,
                                 BYTES("v"), &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX,
                                 BYTES("v"), &version),
                     SLABCACHE_KEY_TOO_LARGE);
        CHECK_STATUS(write_entry(kind, cache, BYTES("k"), NULL, 1, &version),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, BYTES("k"), largest_value, SMALL_VALUE_LIMIT + 1,
                                 &version),
                     SLABCACHE_VALUE_TOO_LARGE);
        CHECK_STATUS(
            write_entry(kind, cache, BYTES("k"), (const uint8_t *)"v", SIZE_MAX, &version),
            SLABCACHE_INVALID_ARGUMENT);
        CHECK_STATUS(write_entry(kind, cache, BYTES("k"), (const uint8_t *)"v",
                                 (size_t)PTRDIFF_MAX, &version),
                     SLABCACHE_VALUE_TOO_LARGE);
        CHECK_STATUS(write_entry(kind, cache, BYTES("k"), BYTES("v"), misaligned),
                     SLABCACHE_INVALID_ARGUMENT);
        CHECK(version == UNTOUCHED_VERSION);
    }
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.inserts == 0 && stats.updates == 0 && stats.entries == 0);
    slabcache_free(cache);
}

static void test_reads_and_deletes_refuse_hostile_inputs(void) {
    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("value"), 0, NULL), SLABCACHE_OK);
    _Alignas(uint64_t) unsigned char raw[2 * sizeof(uint64_t)];
    uint64_t *misaligned = (uint64_t *)(void *)(raw + 1);
    size_t *misaligned_len = (size_t *)(void *)(raw + 1);
    uint8_t buf[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    size_t len = UNTOUCHED_LEN;
    uint64_t version = UNTOUCHED_VERSION;

    CHECK_STATUS(slabcache_get(NULL, BYTES("k"), buf, sizeof buf, &len, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, NULL, 1, buf, sizeof buf, &len, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, (const uint8_t *)"k", 0, buf, sizeof buf, &len, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, largest_key, SLABCACHE_MAX_KEY_LEN + 1, buf, sizeof buf,
                               &len, &version),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(
        slabcache_get(cache, (const uint8_t *)"k", SIZE_MAX, buf, sizeof buf, &len, &version),
        SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX, buf,
                               sizeof buf, &len, &version),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), NULL, 8, &len, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(
        slabcache_get(cache, BYTES("k"), buf, (size_t)PTRDIFF_MAX + 1, &len, &version),
        SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof buf, NULL, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof buf, misaligned_len, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof buf, &len, misaligned),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(len == UNTOUCHED_LEN && version == UNTOUCHED_VERSION && buf[0] == 7);

    CHECK_STATUS(slabcache_delete(NULL, BYTES("k")), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete(cache, NULL, 1), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete(cache, (const uint8_t *)"k", 0), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete(cache, (const uint8_t *)"k", SIZE_MAX),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete(cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_delete_if_version(NULL, BYTES("k"), 1), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete_if_version(cache, NULL, 1, 1), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete_if_version(cache, (const uint8_t *)"k", 0, 1),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_delete_if_version(cache, (const uint8_t *)"k", SIZE_MAX, 1),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(
        slabcache_delete_if_version(cache, (const uint8_t *)"k", (size_t)PTRDIFF_MAX, 1),
        SLABCACHE_KEY_TOO_LARGE);

    CHECK(holds(cache, BYTES("k"), BYTES("value")));
    slabcache_free(cache);
}

/* ----- tags ----- */

static void test_invalidate_tag_removes_its_entries(void) {
    slabcache_t *cache = new_cache();
    const uint8_t *product_tags[] = {(const uint8_t *)"product:42", (const uint8_t *)"page"};
    const size_t product_lens[] = {10, 4};
    const uint8_t *other_tags[] = {(const uint8_t *)"product:7"};
    const size_t other_lens[] = {9};
    uint64_t version = 0;
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("page:1"), BYTES("a"), 0, product_tags,
                                      product_lens, 2, &version),
                 SLABCACHE_OK);
    CHECK(version != 0);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("page:2"), BYTES("b"), 0, product_tags,
                                      product_lens, 1, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("page:3"), BYTES("c"), 0, other_tags,
                                      other_lens, 1, NULL),
                 SLABCACHE_OK);
    /* No tags at all: a plain set, with NULL arrays. */
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("plain"), BYTES("d"), 0, NULL, NULL, 0, NULL),
                 SLABCACHE_OK);
    /* Written again without the tag: no longer a member. */
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("page:4"), BYTES("e"), 0, product_tags,
                                      product_lens, 1, NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_set(cache, BYTES("page:4"), BYTES("f"), 0, NULL), SLABCACHE_OK);

    uint64_t removed = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("product:42"), &removed), SLABCACHE_OK);
    CHECK(removed == 2);
    CHECK(is_absent(cache, BYTES("page:1")) && is_absent(cache, BYTES("page:2")));
    CHECK(holds(cache, BYTES("page:3"), BYTES("c")));
    CHECK(holds(cache, BYTES("plain"), BYTES("d")));
    CHECK(holds(cache, BYTES("page:4"), BYTES("f")));
    /* page:1's other tag has nothing left to remove; an unknown tag neither. */
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("page"), &removed), SLABCACHE_OK);
    CHECK(removed == 0);
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("never used"), NULL), SLABCACHE_OK);
    /* The empty tag is a tag. */
    const uint8_t *empty_tag[] = {NULL};
    const size_t empty_len[] = {0};
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("e"), BYTES("v"), 0, empty_tag, empty_len, 1,
                                      NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_invalidate_tag(cache, NULL, 0, &removed), SLABCACHE_OK);
    CHECK(removed == 1 && is_absent(cache, BYTES("e")));
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("product:7"), &removed), SLABCACHE_OK);
    CHECK(removed == 1);
    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.removals == 4 && stats.entries == 2);
    slabcache_free(cache);
}

static void test_tags_refuse_hostile_inputs(void) {
    slabcache_options_t opts = default_options();
    opts.max_value_bytes = SMALL_VALUE_LIMIT;
    slabcache_t *cache = new_cache_with(opts);
    _Alignas(uint64_t) unsigned char raw[4 * sizeof(uint64_t)];
    uint64_t *misaligned = (uint64_t *)(void *)(raw + 1);
    const uint8_t *const *misaligned_tags = (const uint8_t *const *)(const void *)(raw + 1);
    const size_t *misaligned_lens = (const size_t *)(const void *)(raw + 1);
    const uint8_t *tags[] = {(const uint8_t *)"t"};
    const size_t lens[] = {1};
    const uint8_t *null_tag[] = {NULL};
    const size_t huge_lens[] = {(size_t)PTRDIFF_MAX + 1};
    uint64_t version = UNTOUCHED_VERSION;

    CHECK_STATUS(slabcache_set_tagged(NULL, BYTES("k"), BYTES("v"), 0, tags, lens, 1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, NULL, 1, BYTES("v"), 0, tags, lens, 1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, (const uint8_t *)"k", 0, BYTES("v"), 0, tags, lens,
                                      1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, largest_key, SLABCACHE_MAX_KEY_LEN + 1, BYTES("v"),
                                      0, tags, lens, 1, &version),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), NULL, 1, 0, tags, lens, 1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), largest_value, SMALL_VALUE_LIMIT + 1, 0,
                                      tags, lens, 1, &version),
                 SLABCACHE_VALUE_TOO_LARGE);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, NULL, lens, 1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, tags, NULL, 1, &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, misaligned_tags, lens, 1,
                                      &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, tags, misaligned_lens, 1,
                                      &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, tags, lens, SIZE_MAX,
                                      &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, null_tag, lens, 1,
                                      &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, tags, huge_lens, 1,
                                      &version),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_set_tagged(cache, BYTES("k"), BYTES("v"), 0, tags, lens, 1,
                                      misaligned),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(version == UNTOUCHED_VERSION);

    uint64_t removed = UNTOUCHED_VERSION;
    CHECK_STATUS(slabcache_invalidate_tag(NULL, BYTES("t"), &removed),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_invalidate_tag(cache, NULL, 1, &removed), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_invalidate_tag(cache, (const uint8_t *)"t", (size_t)PTRDIFF_MAX + 1,
                                          &removed),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_invalidate_tag(cache, BYTES("t"), misaligned),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(removed == UNTOUCHED_VERSION);

    slabcache_stats_t stats = stats_of(cache);
    CHECK(stats.inserts == 0 && stats.entries == 0);
    slabcache_free(cache);
}

/* ----- panics ----- */

/* Counts the keys slabcache_hottest reports and remembers the first. */
struct hottest_seen {
    size_t calls;
    char first[32];
    uint64_t first_reads;
};

static void see_hot_key(void *ctx, const uint8_t *key, size_t key_len, uint64_t reads) {
    struct hottest_seen *seen = ctx;
    if (seen->calls++ == 0 && key_len < sizeof seen->first) {
        memcpy(seen->first, key, key_len);
        seen->first[key_len] = 0;
        seen->first_reads = reads;
    }
}

static void test_hottest_names_the_most_read_key(void) {
    slabcache_options_t opts = default_options();
    opts.track_hot_keys = 1;
    slabcache_t *cache = new_cache_with(opts);
    char key[16];
    uint8_t buf[8];
    size_t len;
    for (int i = 0; i < 50; i++) {
        int n = snprintf(key, sizeof key, "item:%d", i);
        CHECK_STATUS(slabcache_set(cache, (const uint8_t *)key, (size_t)n, BYTES("v"), 0, NULL),
                     SLABCACHE_OK);
    }
    for (int round = 0; round < 20000; round++) {
        CHECK_STATUS(slabcache_get(cache, BYTES("item:7"), buf, sizeof buf, &len, NULL),
                     SLABCACHE_OK);
        int n = snprintf(key, sizeof key, "item:%d", round % 50);
        CHECK_STATUS(slabcache_get(cache, (const uint8_t *)key, (size_t)n, buf, sizeof buf, &len,
                                   NULL),
                     SLABCACHE_OK);
    }
    struct hottest_seen seen = {0};
    size_t count = UNTOUCHED_LEN;
    CHECK_STATUS(slabcache_hottest(cache, 3, see_hot_key, &seen, &count), SLABCACHE_OK);
    CHECK(count == 3 && seen.calls == 3);
    CHECK(strcmp(seen.first, "item:7") == 0);
    CHECK(seen.first_reads > 10000);
    /* Counting only, and n = 0. */
    CHECK_STATUS(slabcache_hottest(cache, 5, NULL, NULL, &count), SLABCACHE_OK);
    CHECK(count == 5);
    CHECK_STATUS(slabcache_hottest(cache, 0, see_hot_key, &seen, &count), SLABCACHE_OK);
    CHECK(count == 0 && seen.calls == 3);
    /* Hostile inputs change nothing. */
    CHECK_STATUS(slabcache_hottest(NULL, 3, see_hot_key, &seen, &count), SLABCACHE_INVALID_ARGUMENT);
    size_t words[2];
    CHECK_STATUS(slabcache_hottest(cache, 3, see_hot_key, &seen,
                                   (size_t *)((char *)words + 1)),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(seen.calls == 3);
    slabcache_free(cache);

    /* A cache that does not track reports nothing. */
    cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("k"), BYTES("v"), 0, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_get(cache, BYTES("k"), buf, sizeof buf, &len, NULL), SLABCACHE_OK);
    CHECK_STATUS(slabcache_hottest(cache, 3, see_hot_key, &seen, &count), SLABCACHE_OK);
    CHECK(count == 0 && seen.calls == 3);
    slabcache_free(cache);
}

static void test_a_panic_comes_back_as_a_status(void) {
    fprintf(stderr, "(the panic message below is expected)\n");
    CHECK_STATUS(slabcache_test_panic(), SLABCACHE_PANIC);
    /* The process goes on, and the library with it. */
    slabcache_t *cache = new_cache();
    CHECK_STATUS(slabcache_set(cache, BYTES("after"), BYTES("panic"), 0, NULL), SLABCACHE_OK);
    CHECK(holds(cache, BYTES("after"), BYTES("panic")));
    slabcache_free(cache);
}

int main(void) {
    RUN(test_version_and_status_names);
    RUN(test_options_init_fills_size_and_defaults);
    RUN(test_new_accepts_the_edges_of_every_range);
    RUN(test_new_refuses_invalid_options);
    RUN(test_the_previous_headers_options_are_taken);
    RUN(test_free_accepts_null);
    RUN(test_set_then_get);
    RUN(test_get_reports_a_buffer_too_small);
    RUN(test_a_miss_writes_nothing);
    RUN(test_add_writes_only_an_absent_key);
    RUN(test_replace_writes_only_a_present_key);
    RUN(test_cas_writes_only_the_expected_version);
    RUN(test_delete);
    RUN(test_delete_if_version);
    RUN(test_clear_removes_everything);
    RUN(test_stats_count_every_operation);
    RUN(test_stats_count_evictions_and_expirations);
    RUN(test_stats_refuse_unknown_sizes);
    RUN(test_stats_take_the_previous_headers_size);
    RUN(test_ttl_rules);
    RUN(test_keys_and_values_up_to_their_limits);
    RUN(test_writes_refuse_hostile_inputs);
    RUN(test_reads_and_deletes_refuse_hostile_inputs);
    RUN(test_invalidate_tag_removes_its_entries);
    RUN(test_tags_refuse_hostile_inputs);
    RUN(test_hottest_names_the_most_read_key);
    RUN(test_a_panic_comes_back_as_a_status);
    return finish();
}
