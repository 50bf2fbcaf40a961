/*
 * A tour of the slabcache C API: make a cache, store and read values (growing the buffer
 * when a value does not fit), take a lock-like key with add, count with compare-and-swap,
 * print the statistics, free the cache.
 *
 * Build and run it against an installed (or staged) libslabcache:
 *
 *   cc -std=c11 -Wall -Wextra -O2 examples/c/example.c \
 *       $(pkg-config --cflags --libs slabcache) -o example && ./example
 *
 * (before installing: make -C ffi, then PKG_CONFIG_PATH=target/libslabcache/lib/pkgconfig,
 * and LD_LIBRARY_PATH=target/libslabcache/lib to run it).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabcache.h>

/* Exits with a message when `status` is not `expected`. */
static void expect(int status, int expected, const char *what) {
    if (status != expected) {
        fprintf(stderr, "%s: %s (expected %s)\n", what, slabcache_status_str(status),
                slabcache_status_str(expected));
        exit(1);
    }
}

/* Reads `key` into a buffer that grows to fit; returns it (malloc'd, caller frees) with its
 * length in `*len`, or NULL if the key is absent. */
static uint8_t *read_value(const slabcache_t *cache, const char *key, size_t *len) {
    size_t capacity = 16;
    uint8_t *buf = malloc(capacity);
    for (;;) {
        if (buf == NULL) {
            perror("malloc");
            exit(1);
        }
        int status =
            slabcache_get(cache, (const uint8_t *)key, strlen(key), buf, capacity, len, NULL);
        if (status == SLABCACHE_OK) {
            return buf;
        }
        if (status == SLABCACHE_NOT_FOUND) {
            free(buf);
            return NULL;
        }
        /* *len is the value's length: make room and ask again. */
        expect(status, SLABCACHE_BUFFER_TOO_SMALL, "get");
        capacity = *len;
        uint8_t *bigger = realloc(buf, capacity);
        if (bigger == NULL) {
            free(buf);
        }
        buf = bigger;
    }
}

/* Adds 1 to the decimal counter under `key` with compare-and-swap; returns the new count. */
static long increment(const slabcache_t *cache, const char *key) {
    for (;;) {
        char digits[32];
        size_t len = 0;
        uint64_t version = 0;
        int status = slabcache_get(cache, (const uint8_t *)key, strlen(key), (uint8_t *)digits,
                                   sizeof digits - 1, &len, &version);
        if (status == SLABCACHE_NOT_FOUND) {
            /* First use: only one writer can create it; a loser reads the winner's value. */
            status = slabcache_add(cache, (const uint8_t *)key, strlen(key),
                                   (const uint8_t *)"1", 1, SLABCACHE_TTL_NONE, NULL);
            if (status == SLABCACHE_OK) {
                return 1;
            }
            expect(status, SLABCACHE_EXISTS, "add");
            continue;
        }
        expect(status, SLABCACHE_OK, "get");
        digits[len] = '\0';
        long next = strtol(digits, NULL, 10) + 1;
        int next_len = snprintf(digits, sizeof digits, "%ld", next);
        status = slabcache_cas(cache, (const uint8_t *)key, strlen(key), (const uint8_t *)digits,
                               (size_t)next_len, version, SLABCACHE_TTL_NONE, NULL);
        if (status == SLABCACHE_OK) {
            return next;
        }
        /* Someone else wrote since we read: read again. */
        expect(status, SLABCACHE_VERSION_MISMATCH, "cas");
    }
}

int main(void) {
    printf("libslabcache %s\n", slabcache_version());

    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = 64u << 20;       /* the arena: 64 MiB */
    opts.default_ttl_ms = 300 * 1000; /* entries expire after 5 minutes... */
    opts.ttl_jitter = 0.1;            /* ...plus up to 10%, so they do not all go at once */
    slabcache_t *cache = NULL;
    expect(slabcache_new(&opts, &cache), SLABCACHE_OK, "new");

    const char *page = "<html><body>a page long enough not to fit in 16 bytes</body></html>";
    uint64_t version = 0;
    expect(slabcache_set(cache, (const uint8_t *)"page:/home", 10, (const uint8_t *)page,
                         strlen(page), 0, &version),
           SLABCACHE_OK, "set");
    printf("stored page:/home, version %" PRIu64 "\n", version);

    size_t len = 0;
    uint8_t *value = read_value(cache, "page:/home", &len);
    if (value == NULL || len != strlen(page) || memcmp(value, page, len) != 0) {
        fprintf(stderr, "page:/home did not read back\n");
        return 1;
    }
    printf("read page:/home back: %zu bytes\n", len);
    free(value);

    /* A per-entry TTL: this session lasts 30 seconds whatever the default. */
    expect(slabcache_set(cache, (const uint8_t *)"session:9f2c", 12, (const uint8_t *)"user=42",
                         7, 30 * 1000, NULL),
           SLABCACHE_OK, "set session");

    /* add succeeds for one caller only. */
    expect(slabcache_add(cache, (const uint8_t *)"lock:report", 11, (const uint8_t *)"me", 2, 0,
                         NULL),
           SLABCACHE_OK, "add");
    expect(slabcache_add(cache, (const uint8_t *)"lock:report", 11, (const uint8_t *)"you", 3,
                         0, NULL),
           SLABCACHE_EXISTS, "second add");
    printf("lock:report taken once, refused once\n");

    long count = 0;
    for (int i = 0; i < 5; i++) {
        count = increment(cache, "visits");
    }
    printf("visits counted with compare-and-swap: %ld\n", count);
    if (count != 5) {
        return 1;
    }

    slabcache_stats_t stats;
    stats.size = sizeof stats;
    expect(slabcache_stats(cache, &stats), SLABCACHE_OK, "stats");
    printf("stats: %" PRIu64 " entries, %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
           " inserts, %" PRIu64 " updates, %" PRIu64 " payload bytes, %" PRIu64
           " of %" PRIu64 " arena bytes used\n",
           stats.entries, stats.hits, stats.misses, stats.inserts, stats.updates,
           stats.payload_bytes, stats.arena_bytes_used, stats.max_bytes);

    slabcache_free(cache);
    return 0;
}
