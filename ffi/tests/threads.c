/*
 * Four threads share one cache through a `const slabcache_t *`.
 *
 * - Counters: each thread adds 1 to shared counters by compare-and-swap (read the value
 *   and its version, write value + 1 expecting that version, retry on a mismatch), and
 *   counts its successes per counter and its mismatches. At the end every counter equals
 *   the increments made to it, exactly, and the cache counted exactly the mismatches the
 *   threads saw.
 * - Torn reads: every value is self-checking. A counter's value is its count repeated in
 *   every 8-byte word, and its length changes with the count (8 to 128 bytes, so values move
 *   between size classes); a blob, rewritten by every thread with lengths up to 1 KiB, repeats
 *   one byte. A read that mixed two writes would show two counts, two bytes or a length that
 *   does not match its content.
 * - Thread exit: a pthread key's destructor writes to a full cache (each write evicts), after
 *   the thread's Rust thread-locals are gone.
 *
 * Built as C11 with -Wall -Wextra -Werror and run under AddressSanitizer +
 * UndefinedBehaviorSanitizer by scripts/ffi-test.sh.
 */

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define THREADS 4
#define COUNTERS 4
#define INCREMENTS_PER_THREAD 50000
#define BLOBS 4
#define BLOB_MAX 1024

struct worker {
    const slabcache_t *cache;
    unsigned index;
    uint64_t increments[COUNTERS];
    uint64_t mismatches;
    uint64_t reads;
    uint64_t torn;
    uint64_t unexpected;
};

static size_t counter_key(unsigned counter, char key[16]) {
    return (size_t)snprintf(key, 16, "counter-%u", counter);
}

/* The value of a counter at `count`: `count` in each of 1 + count % 16 words. */
static size_t encode_counter(uint64_t count, uint64_t words[16]) {
    size_t word_count = 1 + (size_t)(count % 16);
    for (size_t i = 0; i < word_count; i++) {
        words[i] = count;
    }
    return word_count * sizeof(uint64_t);
}

/* The count a counter's value holds, or -1 if the value is torn. */
static int64_t decode_counter(const uint8_t *value, size_t len) {
    uint64_t words[16];
    if (len == 0 || len % sizeof(uint64_t) != 0 || len > sizeof words) {
        return -1;
    }
    memcpy(words, value, len);
    for (size_t i = 1; i < len / sizeof(uint64_t); i++) {
        if (words[i] != words[0]) {
            return -1;
        }
    }
    if (1 + words[0] % 16 != len / sizeof(uint64_t)) {
        return -1;
    }
    return (int64_t)words[0];
}

/* A blob of `len` bytes, all `fill`, where len is a function of fill. */
static size_t blob_length(uint8_t fill) { return 1 + (size_t)fill * (BLOB_MAX - 1) / 255; }

static int blob_is_whole(const uint8_t *value, size_t len) {
    if (len == 0 || len != blob_length(value[0])) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (value[i] != value[0]) {
            return 0;
        }
    }
    return 1;
}

/* xorshift64: a thread's own pseudo-random choices. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static void touch_blob(struct worker *self, uint64_t *random) {
    char key[16];
    int key_len = snprintf(key, sizeof key, "blob-%u", (unsigned)(next_random(random) % BLOBS));
    uint8_t value[BLOB_MAX];
    size_t len = 0;
    if (next_random(random) % 2 == 0) {
        uint8_t fill = (uint8_t)next_random(random);
        memset(value, fill, blob_length(fill));
        if (slabcache_set(self->cache, (const uint8_t *)key, (size_t)key_len, value,
                          blob_length(fill), 0, NULL) != SLABCACHE_OK) {
            self->unexpected++;
        }
        return;
    }
    int status = slabcache_get(self->cache, (const uint8_t *)key, (size_t)key_len, value,
                               sizeof value, &len, NULL);
    if (status == SLABCACHE_OK) {
        self->reads++;
        self->torn += !blob_is_whole(value, len);
    } else if (status != SLABCACHE_NOT_FOUND) {
        self->unexpected++;
    }
}

static void *work(void *argument) {
    struct worker *self = argument;
    uint64_t random = 0x9E3779B97F4A7C15u * (self->index + 1);
    uint64_t done = 0;
    while (done < INCREMENTS_PER_THREAD) {
        unsigned counter = (unsigned)(next_random(&random) % COUNTERS);
        char key[16];
        size_t key_len = counter_key(counter, key);
        uint8_t value[128];
        size_t len = 0;
        uint64_t version = 0;
        if (slabcache_get(self->cache, (const uint8_t *)key, key_len, value, sizeof value, &len,
                          &version) != SLABCACHE_OK) {
            self->unexpected++;
            continue;
        }
        self->reads++;
        int64_t count = decode_counter(value, len);
        if (count < 0) {
            self->torn++;
            continue;
        }
        uint64_t next[16];
        size_t next_len = encode_counter((uint64_t)count + 1, next);
        int status = slabcache_cas(self->cache, (const uint8_t *)key, key_len,
                                   (const uint8_t *)next, next_len, version, 0, NULL);
        if (status == SLABCACHE_OK) {
            self->increments[counter]++;
            done++;
        } else if (status == SLABCACHE_VERSION_MISMATCH) {
            self->mismatches++;
        } else {
            self->unexpected++;
        }
        touch_blob(self, &random);
    }
    return NULL;
}

/* A cache of `max_bytes` holding values of up to 4 KiB, so its pages are small (128 KiB), and
 * at most `max_entries` entries (0: no limit); NULL, with the failure recorded, if it cannot
 * be made. */
static slabcache_t *new_cache(uint64_t max_bytes, uint64_t max_entries) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = max_bytes;
    opts.max_value_bytes = 4096;
    opts.max_entries = max_entries;
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new(&opts, &cache), SLABCACHE_OK);
    return cache;
}

static void test_cas_increments_are_exact_and_no_read_is_torn(void) {
    /* Small pages: each of the size classes the counters and blobs use gets pages of its own,
     * and nothing is evicted. */
    slabcache_t *cache = new_cache(32u << 20, 0);
    if (cache == NULL) {
        return;
    }
    for (unsigned counter = 0; counter < COUNTERS; counter++) {
        char key[16];
        uint64_t zero[16];
        size_t key_len = counter_key(counter, key);
        size_t len = encode_counter(0, zero);
        CHECK_STATUS(slabcache_set(cache, (const uint8_t *)key, key_len, (const uint8_t *)zero,
                                   len, 0, NULL),
                     SLABCACHE_OK);
    }

    static struct worker workers[THREADS];
    pthread_t threads[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].cache = cache;
        workers[i].index = i;
        CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
    }
    uint64_t mismatches = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].torn == 0);
        CHECK(workers[i].unexpected == 0);
        CHECK(workers[i].reads >= INCREMENTS_PER_THREAD);
        mismatches += workers[i].mismatches;
    }

    uint64_t total = 0;
    for (unsigned counter = 0; counter < COUNTERS; counter++) {
        uint64_t expected = 0;
        for (unsigned i = 0; i < THREADS; i++) {
            expected += workers[i].increments[counter];
        }
        char key[16];
        size_t key_len = counter_key(counter, key);
        uint8_t value[128];
        size_t len = 0;
        CHECK_STATUS(slabcache_get(cache, (const uint8_t *)key, key_len, value, sizeof value,
                                   &len, NULL),
                     SLABCACHE_OK);
        int64_t count = decode_counter(value, len);
        CHECK(count >= 0 && (uint64_t)count == expected);
        total += expected;
    }
    CHECK(total == (uint64_t)THREADS * INCREMENTS_PER_THREAD);

    slabcache_stats_t stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_stats(cache, &stats), SLABCACHE_OK);
    CHECK(stats.cas_failures == mismatches);
    CHECK(stats.evictions == 0);
    printf("%u threads: %llu increments, %llu CAS mismatches retried\n", THREADS,
           (unsigned long long)total, (unsigned long long)mismatches);
    slabcache_free(cache);
}

/* A thread-exit handler (a pthread key's destructor) that writes to the cache. glibc runs
 * those after the thread's Rust thread-locals are destroyed. */
#define EXIT_ENTRIES 4
#define EXIT_KEYS 12

static pthread_key_t exit_key;
static unsigned in_thread_writes_ok;
static unsigned exit_writes_ok;

static size_t exit_entry(const char *prefix, unsigned i, char key[32], uint8_t value[64]) {
    size_t key_len = (size_t)snprintf(key, 32, "%s:%u", prefix, i);
    memset(value, (int)(i + 1), 64);
    return key_len;
}

/* Writes EXIT_KEYS keys named `prefix`:i; returns how many writes succeeded. */
static unsigned write_entries(void *cache, const char *prefix) {
    unsigned written = 0;
    for (unsigned i = 0; i < EXIT_KEYS; i++) {
        char key[32];
        uint8_t value[64];
        size_t key_len = exit_entry(prefix, i, key, value);
        if (slabcache_set(cache, (const uint8_t *)key, key_len, value, sizeof value, 0, NULL) ==
            SLABCACHE_OK) {
            written++;
        }
    }
    return written;
}

/* The thread-exit handler: new keys into a cache at its entry limit, so each write evicts. */
static void write_on_exit(void *cache) {
    exit_writes_ok = write_entries(cache, "on-exit");
}

static void *fill_then_exit(void *cache) {
    if (pthread_setspecific(exit_key, cache) == 0) {
        in_thread_writes_ok = write_entries(cache, "in-thread");
    }
    return NULL;
}

static void test_a_thread_exit_handler_can_write(void) {
    slabcache_t *cache = new_cache(4u << 20, EXIT_ENTRIES);
    if (cache == NULL) {
        return;
    }
    CHECK(pthread_key_create(&exit_key, write_on_exit) == 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, fill_then_exit, cache) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(in_thread_writes_ok == EXIT_KEYS);
    CHECK(exit_writes_ok == EXIT_KEYS);

    char key[32];
    uint8_t expected[64], value[64];
    size_t key_len = exit_entry("on-exit", EXIT_KEYS - 1, key, expected);
    size_t len = 0;
    CHECK_STATUS(slabcache_get(cache, (const uint8_t *)key, key_len, value, sizeof value, &len,
                               NULL),
                 SLABCACHE_OK);
    CHECK(len == sizeof value && memcmp(value, expected, len) == 0);
    slabcache_stats_t stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_stats(cache, &stats), SLABCACHE_OK);
    CHECK(stats.entries == EXIT_ENTRIES);
    CHECK(stats.evictions == 2 * EXIT_KEYS - EXIT_ENTRIES);
    pthread_key_delete(exit_key);
    slabcache_free(cache);
}

int main(void) {
    RUN(test_cas_increments_are_exact_and_no_read_is_torn);
    RUN(test_a_thread_exit_handler_can_write);
    return finish();
}
