/*
 * What the C tests share beyond the harness (check.h): byte-string arguments from literals,
 * a sleep, reads that check a value, and the stats of a cache. Include after check.h, with
 * _POSIX_C_SOURCE defined (for nanosleep).
 */

#ifndef SLABCACHE_TEST_HELPERS_H
#define SLABCACHE_TEST_HELPERS_H

#include <string.h>
#include <time.h>

#include "check.h"

/* A string literal as the (pointer, length) pair of a key or value argument. */
#define BYTES(literal) (const uint8_t *)(literal), (sizeof(literal) - 1)

static inline void sleep_ms(long ms) {
    struct timespec duration = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&duration, &duration) != 0) {
    }
}

/* Whether `key` reads back as exactly `expected` (of `expected_len` bytes). */
static inline int holds(const slabcache_t *cache, const uint8_t *key, size_t key_len,
                        const uint8_t *expected, size_t expected_len) {
    uint8_t buf[256];
    size_t len = 0;
    int status = slabcache_get(cache, key, key_len, buf, sizeof buf, &len, NULL);
    return status == SLABCACHE_OK && len == expected_len &&
           (len == 0 || memcmp(buf, expected, len) == 0);
}

static inline slabcache_stats_t stats_of(const slabcache_t *cache) {
    slabcache_stats_t stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_stats(cache, &stats), SLABCACHE_OK);
    return stats;
}

#endif /* SLABCACHE_TEST_HELPERS_H */
