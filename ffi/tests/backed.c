/*
 * The backed cache test: a cache in front of a source of C callbacks (an in-memory table
 * that counts its calls and fails on demand). Reads through it, writes through, around and
 * behind it, with a failing source; a full write-behind queue; negative caching and
 * background refreshes; tags; the cache freed before the backed cache; and the hostile
 * inputs the header promises to refuse.
 *
 * Built as C11 with -Wall -Wextra -Werror by scripts/ffi-test.sh, which runs it under
 * AddressSanitizer + UndefinedBehaviorSanitizer and again under valgrind.
 */

#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define ROWS 256
#define MAX_KEY 32
#define MAX_VALUE 64
#define UNTOUCHED_CODE 0x5EED
/* The source's error codes. */
#define SOURCE_DOWN 17
#define SOURCE_FULL 18
/* Bounded waits: a test that would hang fails after this many polls of 1 ms, and the whole
 * program after HANG_LIMIT_SECONDS (a flush that never ends, say). */
#define MAX_POLLS 60000
#define HANG_LIMIT_SECONDS 600

/* ----- the source: an in-memory table ----- */

struct row {
    int used;
    uint8_t key[MAX_KEY];
    size_t key_len;
    uint8_t value[MAX_VALUE];
    size_t value_len;
};

struct db {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct row rows[ROWS];
    unsigned loads, stores, removes, store_batches, remove_batches;
    /* Every `fail_every`th write call fails (0: none does); loads fail while `loads_fail`. */
    unsigned fail_every, write_calls;
    int loads_fail;
    /* While `stalled`, writes wait (and say so in `writes_waiting`). */
    int stalled, writes_waiting;
};

static void db_init(struct db *db) {
    memset(db, 0, sizeof *db);
    pthread_mutex_init(&db->lock, NULL);
    pthread_cond_init(&db->changed, NULL);
}

static void db_destroy(struct db *db) {
    pthread_cond_destroy(&db->changed);
    pthread_mutex_destroy(&db->lock);
}

static struct row *db_find(struct db *db, const uint8_t *key, size_t key_len) {
    for (int i = 0; i < ROWS; i++) {
        struct row *row = &db->rows[i];
        if (row->used && row->key_len == key_len && memcmp(row->key, key, key_len) == 0) {
            return row;
        }
    }
    return NULL;
}

/* Under the lock: whether this write call fails, after waiting while stalled. */
static int db_write_fails(struct db *db) {
    db->writes_waiting++;
    pthread_cond_broadcast(&db->changed);
    while (db->stalled) {
        pthread_cond_wait(&db->changed, &db->lock);
    }
    db->writes_waiting--;
    db->write_calls++;
    return db->fail_every != 0 && db->write_calls % db->fail_every == 0;
}

/* Under the lock. */
static int db_put(struct db *db, const uint8_t *key, size_t key_len, const uint8_t *value,
                  size_t value_len) {
    if (key_len > MAX_KEY || value_len > MAX_VALUE) {
        return SOURCE_FULL;
    }
    struct row *row = db_find(db, key, key_len);
    for (int i = 0; row == NULL && i < ROWS; i++) {
        if (!db->rows[i].used) {
            row = &db->rows[i];
            row->used = 1;
            memcpy(row->key, key, key_len);
            row->key_len = key_len;
        }
    }
    if (row == NULL) {
        return SOURCE_FULL;
    }
    memcpy(row->value, value, value_len);
    row->value_len = value_len;
    return SLABCACHE_OK;
}

static void db_drop(struct db *db, const uint8_t *key, size_t key_len) {
    struct row *row = db_find(db, key, key_len);
    if (row != NULL) {
        row->used = 0;
    }
}

static int db_load(void *ctx, const uint8_t *key, size_t key_len, slabcache_sink_t *sink) {
    struct db *db = ctx;
    pthread_mutex_lock(&db->lock);
    db->loads++;
    int status = SLABCACHE_NOT_FOUND;
    if (db->loads_fail) {
        status = SOURCE_DOWN;
    } else {
        struct row *row = db_find(db, key, key_len);
        if (row != NULL) {
            status = slabcache_sink_value(sink, row->value, row->value_len);
        }
    }
    pthread_mutex_unlock(&db->lock);
    return status;
}

static int db_store(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len) {
    struct db *db = ctx;
    pthread_mutex_lock(&db->lock);
    db->stores++;
    int status = db_write_fails(db) ? SOURCE_DOWN : db_put(db, key, key_len, value, value_len);
    pthread_mutex_unlock(&db->lock);
    return status;
}

static int db_remove(void *ctx, const uint8_t *key, size_t key_len) {
    struct db *db = ctx;
    pthread_mutex_lock(&db->lock);
    db->removes++;
    int status = SOURCE_DOWN;
    if (!db_write_fails(db)) {
        db_drop(db, key, key_len);
        status = SLABCACHE_OK;
    }
    pthread_mutex_unlock(&db->lock);
    return status;
}

/* Batches are all or nothing, as a transaction. */
static int db_store_batch(void *ctx, const uint8_t *const *keys, const size_t *key_lens,
                          const uint8_t *const *values, const size_t *value_lens,
                          size_t count) {
    struct db *db = ctx;
    pthread_mutex_lock(&db->lock);
    db->store_batches++;
    int status = SOURCE_DOWN;
    if (!db_write_fails(db)) {
        status = SLABCACHE_OK;
        for (size_t i = 0; i < count && status == SLABCACHE_OK; i++) {
            status = db_put(db, keys[i], key_lens[i], values[i], value_lens[i]);
        }
    }
    pthread_mutex_unlock(&db->lock);
    return status;
}

static int db_remove_batch(void *ctx, const uint8_t *const *keys, const size_t *key_lens,
                           size_t count) {
    struct db *db = ctx;
    pthread_mutex_lock(&db->lock);
    db->remove_batches++;
    int status = SOURCE_DOWN;
    if (!db_write_fails(db)) {
        for (size_t i = 0; i < count; i++) {
            db_drop(db, keys[i], key_lens[i]);
        }
        status = SLABCACHE_OK;
    }
    pthread_mutex_unlock(&db->lock);
    return status;
}

/* Whether the source holds exactly `value` for `key` (NULL: holds no such key). */
static int db_holds(struct db *db, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len) {
    pthread_mutex_lock(&db->lock);
    struct row *row = db_find(db, key, key_len);
    int holds = value == NULL ? row == NULL
                              : row != NULL && row->value_len == value_len &&
                                    memcmp(row->value, value, value_len) == 0;
    pthread_mutex_unlock(&db->lock);
    return holds;
}

static unsigned db_count(struct db *db, const unsigned *counter) {
    pthread_mutex_lock(&db->lock);
    unsigned count = *counter;
    pthread_mutex_unlock(&db->lock);
    return count;
}

/* ----- helpers ----- */

static slabcache_source_t source_of(struct db *db, int batches) {
    slabcache_source_t source = {
        .size = sizeof source,
        .ctx = db,
        .load = db_load,
        .store = db_store,
        .remove = db_remove,
        .store_batch = batches ? db_store_batch : NULL,
        .remove_batch = batches ? db_remove_batch : NULL,
    };
    return source;
}

static slabcache_t *new_cache(void) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    opts.max_bytes = 16u << 20;
    opts.max_value_bytes = 4096;
    slabcache_t *cache = NULL;
    CHECK_STATUS(slabcache_new(&opts, &cache), SLABCACHE_OK);
    return cache;
}

static slabcache_backed_options_t options(uint32_t write_mode) {
    slabcache_backed_options_t opts;
    slabcache_backed_options_init(&opts);
    opts.write_mode = write_mode;
    return opts;
}

static slabcache_backed_t *new_backed(slabcache_t *cache, struct db *db,
                                      const slabcache_backed_options_t *opts) {
    slabcache_source_t source = source_of(db, 1);
    slabcache_backed_t *backed = NULL;
    CHECK_STATUS(slabcache_backed_new(cache, &source, opts, &backed), SLABCACHE_OK);
    return backed;
}

static slabcache_backed_stats_t backed_stats(const slabcache_backed_t *backed) {
    slabcache_backed_stats_t stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_backed_stats(backed, &stats), SLABCACHE_OK);
    return stats;
}

/* Whether a read through `backed` gives exactly `value` (NULL: "not found"). */
static int reads(const slabcache_backed_t *backed, const uint8_t *key, size_t key_len,
                 const uint8_t *value, size_t value_len) {
    uint8_t buf[MAX_VALUE];
    size_t len = 0;
    int status = slabcache_backed_get(backed, key, key_len, buf, sizeof buf, &len, NULL);
    if (value == NULL) {
        return status == SLABCACHE_NOT_FOUND;
    }
    return status == SLABCACHE_OK && len == value_len &&
           (len == 0 || memcmp(buf, value, len) == 0);
}

/* ----- reads and writes ----- */

static void test_write_through_reads_and_deletes(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    int source_error = UNTOUCHED_CODE;

    CHECK_STATUS(slabcache_backed_put(backed, BYTES("user:1"), BYTES("Ada"), &source_error),
                 SLABCACHE_OK);
    CHECK(source_error == UNTOUCHED_CODE);
    CHECK(db_holds(&db, BYTES("user:1"), BYTES("Ada")));
    CHECK(reads(backed, BYTES("user:1"), BYTES("Ada")));
    CHECK(db_count(&db, &db.loads) == 0);

    /* A key only the source has is loaded, once. */
    pthread_mutex_lock(&db.lock);
    db_put(&db, BYTES("user:2"), BYTES("Grace"));
    pthread_mutex_unlock(&db.lock);
    CHECK(reads(backed, BYTES("user:2"), BYTES("Grace")));
    CHECK(reads(backed, BYTES("user:2"), BYTES("Grace")));
    CHECK(db_count(&db, &db.loads) == 1);

    /* Longer than the buffer: its length, then read whole. */
    uint8_t small[2];
    size_t len = 0;
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("user:2"), small, sizeof small, &len, NULL),
                 SLABCACHE_BUFFER_TOO_SMALL);
    CHECK(len == 5);

    CHECK_STATUS(slabcache_backed_delete(backed, BYTES("user:1"), NULL), SLABCACHE_OK);
    CHECK(db_holds(&db, BYTES("user:1"), NULL, 0));
    CHECK(reads(backed, BYTES("user:1"), NULL, 0));
    /* Deleting an absent key succeeds. */
    CHECK_STATUS(slabcache_backed_delete(backed, BYTES("never"), NULL), SLABCACHE_OK);

    slabcache_backed_stats_t stats = backed_stats(backed);
    CHECK(stats.loads == 2 && stats.load_failures == 0 && stats.queue_depth == 0);
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_a_failing_source_fails_the_write_through_and_its_code_comes_back(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("old"), NULL), SLABCACHE_OK);

    db.fail_every = 1;
    int source_error = UNTOUCHED_CODE;
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("new"), &source_error),
                 SLABCACHE_WRITE_FAILED);
    CHECK(source_error == SOURCE_DOWN);
    source_error = UNTOUCHED_CODE;
    CHECK_STATUS(slabcache_backed_delete(backed, BYTES("k"), &source_error),
                 SLABCACHE_WRITE_FAILED);
    CHECK(source_error == SOURCE_DOWN);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("new"), NULL),
                 SLABCACHE_WRITE_FAILED);
    /* The source kept the old value; the cache dropped the key and loads it again. */
    CHECK(db_holds(&db, BYTES("k"), BYTES("old")));
    CHECK(reads(backed, BYTES("k"), BYTES("old")));
    CHECK(db_count(&db, &db.loads) == 1);

    /* A failing load: its code, and nothing cached. */
    db.loads_fail = 1;
    int load_error = UNTOUCHED_CODE;
    uint8_t buf[8];
    size_t len = 0;
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("other"), buf, sizeof buf, &len, &load_error),
                 SLABCACHE_LOAD_FAILED);
    CHECK(load_error == SOURCE_DOWN);
    db.loads_fail = 0;
    CHECK(reads(backed, BYTES("other"), NULL, 0));
    slabcache_backed_stats_t stats = backed_stats(backed);
    CHECK(stats.load_failures == 1 && stats.loads == 3);
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_write_around_leaves_the_cache_to_the_next_read(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_AROUND);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v1"), NULL), SLABCACHE_OK);
    CHECK(db_holds(&db, BYTES("k"), BYTES("v1")));
    CHECK(reads(backed, BYTES("k"), BYTES("v1")));
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v2"), NULL), SLABCACHE_OK);
    CHECK(reads(backed, BYTES("k"), BYTES("v2")));
    CHECK(db_count(&db, &db.loads) == 2);
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

/* Write-behind over a source that fails every third write call: after a flush the source
 * holds the last value of every key, and the deleted keys not at all. (A batch attempt makes
 * at most two calls, a store and a remove, or two stores one by one, so each attempt after
 * a failure gets through.) */
static void check_write_behind_loses_nothing(int batches) {
    struct db db;
    db_init(&db);
    db.fail_every = 3;
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_BEHIND);
    opts.behind_batch_size = batches ? 8 : 2;
    opts.behind_max_delay_ms = 1;
    opts.behind_initial_backoff_ms = 1;
    opts.behind_max_backoff_ms = 4;
    slabcache_source_t source = source_of(&db, batches);
    slabcache_backed_t *backed = NULL;
    CHECK_STATUS(slabcache_backed_new(cache, &source, &opts, &backed), SLABCACHE_OK);

    enum { KEYS = 40, ROUNDS = 5 };
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < KEYS; i++) {
            char key[16], value[16];
            int key_len = snprintf(key, sizeof key, "key-%d", i);
            int value_len = snprintf(value, sizeof value, "v%d.%d", i, round);
            CHECK_STATUS(slabcache_backed_put(backed, (const uint8_t *)key, (size_t)key_len,
                                              (const uint8_t *)value, (size_t)value_len, NULL),
                         SLABCACHE_OK);
        }
    }
    for (int i = 0; i < KEYS; i += 4) {
        char key[16];
        int key_len = snprintf(key, sizeof key, "key-%d", i);
        CHECK_STATUS(slabcache_backed_delete(backed, (const uint8_t *)key, (size_t)key_len, NULL),
                     SLABCACHE_OK);
    }
    CHECK_STATUS(slabcache_backed_flush(backed), SLABCACHE_OK);

    for (int i = 0; i < KEYS; i++) {
        char key[16], value[16];
        int key_len = snprintf(key, sizeof key, "key-%d", i);
        int value_len = snprintf(value, sizeof value, "v%d.%d", i, ROUNDS - 1);
        const uint8_t *expected = i % 4 == 0 ? NULL : (const uint8_t *)value;
        CHECK(db_holds(&db, (const uint8_t *)key, (size_t)key_len, expected, (size_t)value_len));
        CHECK(reads(backed, (const uint8_t *)key, (size_t)key_len, expected, (size_t)value_len));
    }
    slabcache_backed_stats_t stats = backed_stats(backed);
    CHECK(stats.queue_depth == 0 && stats.failed == 0);
    CHECK(stats.retried > 0);
    CHECK(stats.flushed + stats.coalesced == KEYS * ROUNDS + KEYS / 4);
    /* The flusher, not this thread, called the source's writes, batched or one by one. */
    if (batches) {
        CHECK(db_count(&db, &db.store_batches) > 0 && db_count(&db, &db.stores) == 0);
    } else {
        CHECK(db_count(&db, &db.stores) > 0 && db_count(&db, &db.store_batches) == 0);
    }
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_write_behind_loses_nothing_over_a_failing_source(void) {
    check_write_behind_loses_nothing(1);
}

static void test_write_behind_without_batch_callbacks(void) {
    check_write_behind_loses_nothing(0);
}

/* Waits until the flusher is inside a write of the stalled source; whether it got there. */
static int wait_for_a_stalled_write(struct db *db) {
    pthread_mutex_lock(&db->lock);
    int polls = 0;
    while (db->writes_waiting == 0 && polls++ < MAX_POLLS) {
        pthread_mutex_unlock(&db->lock);
        sleep_ms(1);
        pthread_mutex_lock(&db->lock);
    }
    int stalled = db->writes_waiting > 0;
    pthread_mutex_unlock(&db->lock);
    return stalled;
}

static void test_a_full_write_behind_queue_refuses_the_write(void) {
    struct db db;
    db_init(&db);
    db.stalled = 1;
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_BEHIND);
    opts.behind_batch_size = 1;
    opts.behind_max_delay_ms = 0;
    opts.behind_queue_capacity = 1;
    opts.behind_when_full = SLABCACHE_WHEN_FULL_ERROR;
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);

    CHECK_STATUS(slabcache_backed_put(backed, BYTES("a"), BYTES("1"), NULL), SLABCACHE_OK);
    CHECK(wait_for_a_stalled_write(&db));
    int source_error = UNTOUCHED_CODE;
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("b"), BYTES("2"), &source_error),
                 SLABCACHE_QUEUE_FULL);
    CHECK(source_error == UNTOUCHED_CODE);
    CHECK(backed_stats(backed).queue_depth == 1);

    pthread_mutex_lock(&db.lock);
    db.stalled = 0;
    pthread_cond_broadcast(&db.changed);
    pthread_mutex_unlock(&db.lock);
    CHECK_STATUS(slabcache_backed_flush(backed), SLABCACHE_OK);
    CHECK(db_holds(&db, BYTES("a"), BYTES("1")));
    CHECK(db_holds(&db, BYTES("b"), NULL, 0));
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

/* Freeing a write-behind cache sends what is queued first. */
static void test_freeing_a_write_behind_cache_flushes_it(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_BEHIND);
    opts.behind_max_delay_ms = 60000;
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v"), NULL), SLABCACHE_OK);
    slabcache_backed_free(backed);
    CHECK(db_holds(&db, BYTES("k"), BYTES("v")));
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_negative_caching_and_background_refreshes(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    opts.negative_ttl_ms = 60000;
    opts.ttl_ms = 20;
    opts.stale_while_revalidate_ms = 60000;
    opts.refresh_threads = 1;
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);

    /* "Not found" is remembered: the source is asked once. */
    CHECK(reads(backed, BYTES("ghost"), NULL, 0));
    CHECK(reads(backed, BYTES("ghost"), NULL, 0));
    CHECK(db_count(&db, &db.loads) == 1);
    CHECK(backed_stats(backed).negative_hits == 1);

    /* Stale: served at once, and refreshed by a refresh thread, which calls the source. */
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v1"), NULL), SLABCACHE_OK);
    pthread_mutex_lock(&db.lock);
    db_put(&db, BYTES("k"), BYTES("v2"));
    pthread_mutex_unlock(&db.lock);
    sleep_ms(40);
    CHECK(reads(backed, BYTES("k"), BYTES("v1")));
    int polls = 0;
    while (backed_stats(backed).refreshes == 0 && polls++ < MAX_POLLS) {
        sleep_ms(1);
    }
    slabcache_backed_stats_t stats = backed_stats(backed);
    CHECK(stats.refreshes >= 1 && stats.stale_served >= 1);
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_tagged_puts_are_dropped_by_their_tag_and_reload(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    const uint8_t *tags[] = {(const uint8_t *)"product:42"};
    const size_t lens[] = {10};
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("page:1"), BYTES("a"), tags, lens, 1,
                                             NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("page:2"), BYTES("b"), tags, lens, 1,
                                             NULL),
                 SLABCACHE_OK);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("page:3"), BYTES("c"), NULL), SLABCACHE_OK);
    uint64_t removed = 0;
    CHECK_STATUS(slabcache_backed_invalidate_tag(backed, BYTES("product:42"), &removed),
                 SLABCACHE_OK);
    CHECK(removed == 2);
    /* The source keeps them: the next reads load them again. */
    CHECK(reads(backed, BYTES("page:1"), BYTES("a")));
    CHECK(reads(backed, BYTES("page:2"), BYTES("b")));
    CHECK(reads(backed, BYTES("page:3"), BYTES("c")));
    CHECK(db_count(&db, &db.loads) == 2);
    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

/* The backed cache keeps the cache alive: freeing the cache first is allowed. */
static void test_the_cache_may_be_freed_first(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    slabcache_free(cache);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v"), NULL), SLABCACHE_OK);
    CHECK(reads(backed, BYTES("k"), BYTES("v")));
    CHECK(db_count(&db, &db.loads) == 0);
    slabcache_backed_free(backed);
    db_destroy(&db);
}

/* ----- hostile inputs ----- */

static int never_called(void *ctx, const uint8_t *key, size_t key_len, slabcache_sink_t *sink) {
    (void)key;
    (void)key_len;
    (void)sink;
    (*(int *)ctx)++;
    return SLABCACHE_OK;
}

/* `source` and `opts` are refused, `*out` untouched and no callback called. */
static void check_refused(const slabcache_t *cache, const slabcache_source_t *source,
                          const slabcache_backed_options_t *opts, const char *why) {
    int marker = 0;
    slabcache_backed_t *const untouched = (slabcache_backed_t *)(void *)&marker;
    slabcache_backed_t *out = untouched;
    int status = slabcache_backed_new(cache, source, opts, &out);
    if (status != SLABCACHE_INVALID_ARGUMENT || out != untouched) {
        fprintf(stderr, "backed cache with %s: %s\n", why, slabcache_status_str(status));
        check_failures_in_test++;
    }
}

static void test_backed_new_refuses_hostile_inputs(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_source_t source = source_of(&db, 1);
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_BEHIND);

    CHECK_STATUS(slabcache_backed_new(cache, &source, &opts, NULL), SLABCACHE_INVALID_ARGUMENT);
    check_refused(NULL, &source, &opts, "a NULL cache");
    check_refused(cache, NULL, &opts, "a NULL source");
    check_refused(cache, &source, NULL, "NULL options");

    slabcache_source_t bad = source;
    bad.size = 0;
    check_refused(cache, &bad, &opts, "a source of size 0");
    bad.size = sizeof bad + 8;
    check_refused(cache, &bad, &opts, "a source larger than this library's");
    bad = source;
    bad.load = NULL;
    check_refused(cache, &bad, &opts, "no load");
    bad = source;
    bad.store = NULL;
    check_refused(cache, &bad, &opts, "no store");
    bad = source;
    bad.remove = NULL;
    check_refused(cache, &bad, &opts, "no remove");
    size_t size_only = sizeof(size_t);
    check_refused(cache, (const slabcache_source_t *)(const void *)&size_only, &opts,
                  "a source holding only a size");
    check_refused(cache, &source, (const slabcache_backed_options_t *)(const void *)&size_only,
                  "options holding only a size");

    /* With a TTL, so that only the setting named is wrong. */
    slabcache_backed_options_t timed = opts;
    timed.ttl_ms = 1000;
    slabcache_backed_t *accepted = NULL;
    CHECK_STATUS(slabcache_backed_new(cache, &source, &timed, &accepted), SLABCACHE_OK);
    slabcache_backed_free(accepted);
#define REFUSED_OPTION(base, field, value)                            \
    do {                                                              \
        slabcache_backed_options_t changed = base;                    \
        changed.field = value;                                        \
        check_refused(cache, &source, &changed, #field " = " #value); \
    } while (0)
    REFUSED_OPTION(timed, size, 0);
    REFUSED_OPTION(timed, size, sizeof opts - 1);
    REFUSED_OPTION(timed, write_mode, 3);
    REFUSED_OPTION(timed, write_mode, UINT32_MAX);
    REFUSED_OPTION(timed, behind_when_full, 2);
    REFUSED_OPTION(timed, refresh_ahead, 1.0);
    REFUSED_OPTION(timed, refresh_ahead, -0.5);
    REFUSED_OPTION(timed, refresh_ahead, NAN);
    REFUSED_OPTION(timed, early_expiry_beta, -1.0);
    REFUSED_OPTION(timed, early_expiry_beta, INFINITY);
    REFUSED_OPTION(timed, early_expiry_beta, NAN);
    REFUSED_OPTION(timed, refresh_threads, 0);
    REFUSED_OPTION(timed, refresh_threads, SLABCACHE_MAX_REFRESH_THREADS + 1);
    REFUSED_OPTION(timed, refresh_threads, SIZE_MAX);
    REFUSED_OPTION(timed, refresh_queue, 0);
    REFUSED_OPTION(timed, refresh_queue, SLABCACHE_MAX_REFRESH_QUEUE + 1);
    REFUSED_OPTION(timed, refresh_queue, SIZE_MAX);
    REFUSED_OPTION(timed, behind_batch_size, 0);
    REFUSED_OPTION(timed, behind_queue_capacity, 0);
    /* The refresh rules need a TTL, and the cache has no default one. */
    REFUSED_OPTION(opts, stale_while_revalidate_ms, 1000);
    REFUSED_OPTION(opts, refresh_ahead, 0.5);
    REFUSED_OPTION(opts, early_expiry_beta, 1.0);
#undef REFUSED_OPTION

    /* A source whose load would count its calls: none happened. */
    int loads = 0;
    slabcache_source_t counting = source;
    counting.ctx = &loads;
    counting.load = never_called;
    counting.store = NULL;
    check_refused(cache, &counting, &opts, "no store, with a counting load");
    CHECK(loads == 0);
    CHECK(db.loads == 0 && db.stores == 0 && db.removes == 0);

    slabcache_backed_options_init(NULL);
    slabcache_backed_free(NULL);
    slabcache_free(cache);
    db_destroy(&db);
}

static void test_backed_calls_refuse_hostile_inputs(void) {
    struct db db;
    db_init(&db);
    slabcache_t *cache = new_cache();
    slabcache_backed_options_t opts = options(SLABCACHE_WRITE_THROUGH);
    slabcache_backed_t *backed = new_backed(cache, &db, &opts);
    _Alignas(uint64_t) unsigned char raw[2 * sizeof(uint64_t)];
    size_t *misaligned_len = (size_t *)(void *)(raw + 1);
    int *misaligned_code = (int *)(void *)(raw + 1);
    uint64_t *misaligned_count = (uint64_t *)(void *)(raw + 1);
    static uint8_t long_key[SLABCACHE_MAX_KEY_LEN + 1];
    uint8_t buf[8] = {7};
    size_t len = 0xC0FFEE;
    int code = UNTOUCHED_CODE;
    const uint8_t *tags[] = {(const uint8_t *)"t"};
    const size_t lens[] = {1};
    const uint8_t *null_tag[] = {NULL};

    CHECK_STATUS(slabcache_backed_get(NULL, BYTES("k"), buf, sizeof buf, &len, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, NULL, 1, buf, sizeof buf, &len, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, (const uint8_t *)"k", 0, buf, sizeof buf, &len,
                                      &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, long_key, sizeof long_key, buf, sizeof buf, &len,
                                      &code),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_backed_get(backed, (const uint8_t *)"k", SIZE_MAX, buf, sizeof buf,
                                      &len, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("k"), NULL, 1, &len, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("k"), buf, (size_t)PTRDIFF_MAX + 1, &len,
                                      &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("k"), buf, sizeof buf, NULL, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("k"), buf, sizeof buf, misaligned_len, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_get(backed, BYTES("k"), buf, sizeof buf, &len, misaligned_code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(len == 0xC0FFEE && buf[0] == 7);

    CHECK_STATUS(slabcache_backed_put(NULL, BYTES("k"), BYTES("v"), &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put(backed, NULL, 1, BYTES("v"), &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put(backed, (const uint8_t *)"k", 0, BYTES("v"), &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put(backed, long_key, sizeof long_key, BYTES("v"), &code),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), NULL, 1, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), (const uint8_t *)"v",
                                      (size_t)PTRDIFF_MAX + 1, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put(backed, BYTES("k"), BYTES("v"), misaligned_code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put_tagged(NULL, BYTES("k"), BYTES("v"), tags, lens, 1, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("k"), BYTES("v"), NULL, lens, 1,
                                             &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("k"), BYTES("v"), tags, NULL, 1,
                                             &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("k"), BYTES("v"), null_tag, lens, 1,
                                             &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_put_tagged(backed, BYTES("k"), BYTES("v"), tags, lens,
                                             SIZE_MAX, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_delete(NULL, BYTES("k"), &code), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_delete(backed, NULL, 1, &code), SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_delete(backed, (const uint8_t *)"k", 0, &code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_delete(backed, long_key, sizeof long_key, &code),
                 SLABCACHE_KEY_TOO_LARGE);
    CHECK_STATUS(slabcache_backed_delete(backed, BYTES("k"), misaligned_code),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(code == UNTOUCHED_CODE);
    CHECK(db.stores == 0 && db.removes == 0 && db.loads == 0);

    CHECK_STATUS(slabcache_backed_flush(NULL), SLABCACHE_INVALID_ARGUMENT);
    uint64_t removed = 0xC0FFEE;
    CHECK_STATUS(slabcache_backed_invalidate_tag(NULL, BYTES("t"), &removed),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_invalidate_tag(backed, NULL, 1, &removed),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK_STATUS(slabcache_backed_invalidate_tag(backed, BYTES("t"), misaligned_count),
                 SLABCACHE_INVALID_ARGUMENT);
    CHECK(removed == 0xC0FFEE);

    struct {
        slabcache_backed_stats_t known;
        uint64_t later_fields[2];
    } longer;
    const size_t sizes[] = {0, sizeof(slabcache_backed_stats_t) - 8, sizeof longer};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memset(&longer, 0x5A, sizeof longer);
        longer.known.size = sizes[i];
        CHECK_STATUS(slabcache_backed_stats(backed, &longer.known), SLABCACHE_INVALID_ARGUMENT);
        CHECK(longer.known.loads == UINT64_C(0x5A5A5A5A5A5A5A5A));
    }
    CHECK_STATUS(slabcache_backed_stats(backed, NULL), SLABCACHE_INVALID_ARGUMENT);
    slabcache_backed_stats_t stats;
    stats.size = sizeof stats;
    CHECK_STATUS(slabcache_backed_stats(NULL, &stats), SLABCACHE_INVALID_ARGUMENT);

    slabcache_backed_free(backed);
    slabcache_free(cache);
    db_destroy(&db);
}

int main(void) {
    alarm(HANG_LIMIT_SECONDS);
    RUN(test_write_through_reads_and_deletes);
    RUN(test_a_failing_source_fails_the_write_through_and_its_code_comes_back);
    RUN(test_write_around_leaves_the_cache_to_the_next_read);
    RUN(test_write_behind_loses_nothing_over_a_failing_source);
    RUN(test_write_behind_without_batch_callbacks);
    RUN(test_a_full_write_behind_queue_refuses_the_write);
    RUN(test_freeing_a_write_behind_cache_flushes_it);
    RUN(test_negative_caching_and_background_refreshes);
    RUN(test_tagged_puts_are_dropped_by_their_tag_and_reload);
    RUN(test_the_cache_may_be_freed_first);
    RUN(test_backed_new_refuses_hostile_inputs);
    RUN(test_backed_calls_refuse_hostile_inputs);
    return finish();
}
