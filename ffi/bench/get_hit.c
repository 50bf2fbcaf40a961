/*
 * The cost of a get hit through the C API: slabcache_get of a 16-byte key and a 64-byte value
 * into a caller's buffer, from C. ffi/examples/get_hit.rs measures Cache::get_into on the same
 * cache, keys and lookup order from Rust; the difference is the C API's overhead.
 * scripts/ffi-test.sh --bench builds (-O2, linking libslabcache.a) and runs both.
 *
 * Prints one line: the median, min and max ns per get over RUNS runs, or over the number of
 * runs given as its argument (1 to RUNS; under callgrind, `get_hit 1` makes 2 * LOOKUPS gets
 * of slabcache_get, the warm-up run included).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "slabcache.h"

/* Keep these as in ffi/examples/get_hit.rs. */
#define KEYS 10000
#define KEY_LEN 16
#define VALUE_LEN 64
#define LOOKUPS (1u << 20)
#define RUNS 11

static uint8_t keys[KEYS][KEY_LEN + 1];
static uint32_t order[LOOKUPS];

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : RUNS;
    if (runs < 1 || runs > RUNS) {
        fprintf(stderr, "usage: get_hit [RUNS: 1 to %d]\n", RUNS);
        return 2;
    }
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = 64u << 20;
    slabcache_t *cache = NULL;
    if (slabcache_new(&opts, &cache) != SLABCACHE_OK) {
        return 1;
    }
    uint8_t value[VALUE_LEN];
    for (uint32_t i = 0; i < KEYS; i++) {
        snprintf((char *)keys[i], sizeof keys[i], "key-%012u", (unsigned)i);
        for (uint32_t j = 0; j < VALUE_LEN; j++) {
            value[j] = (uint8_t)(i + j);
        }
        if (slabcache_set(cache, keys[i], KEY_LEN, value, VALUE_LEN, 0, NULL) != SLABCACHE_OK) {
            return 1;
        }
    }
    uint64_t state = 0x2545F4914F6CDD1Du;
    for (uint32_t i = 0; i < LOOKUPS; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order[i] = (uint32_t)(state % KEYS);
    }

    uint8_t buf[256];
    uint64_t checksum = 0;
    double per_get[RUNS + 1];
    for (int run = 0; run <= runs; run++) { /* run 0 warms up */
        double start = now_ns();
        for (uint32_t i = 0; i < LOOKUPS; i++) {
            size_t len = 0;
            uint64_t version = 0;
            if (slabcache_get(cache, keys[order[i]], KEY_LEN, buf, sizeof buf, &len,
                              &version) != SLABCACHE_OK) {
                return 1;
            }
            checksum += len + version + buf[0];
        }
        per_get[run] = (now_ns() - start) / LOOKUPS;
    }
    qsort(per_get + 1, (size_t)runs, sizeof per_get[0], by_value);
    printf("C slabcache_get: median %.1f ns/get (min %.1f, max %.1f; %d runs of %u; checksum %llu)\n",
           per_get[1 + runs / 2], per_get[1], per_get[runs], runs, LOOKUPS,
           (unsigned long long)checksum);
    slabcache_free(cache);
    return 0;
}
