/*
 * The test of include/slabcache.hpp, the C++17 wrapper. Built with -std=c++17 -Wall -Wextra
 * -Werror and run under AddressSanitizer + UndefinedBehaviorSanitizer by scripts/ffi-test.sh.
 */

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "slabcache.hpp"
#include "check.h"

using namespace std::chrono_literals;
using slabcache::Backed;
using slabcache::Cache;
using slabcache::errc;
using slabcache::Outcome;

namespace {

slabcache::Options small_options() {
    slabcache::Options options;
    options.max_bytes = 16u << 20;
    options.max_value_bytes = 64u << 10;
    return options;
}

/* The errc that `call` throws as slabcache::Error, or std::nullopt if it throws nothing. */
template <class Call>
std::optional<errc> thrown_by(Call call) {
    try {
        call();
    } catch (const slabcache::Error &error) {
        if (error.code().category() != slabcache::category()) {
            return std::nullopt;
        }
        return static_cast<errc>(error.status());
    }
    return std::nullopt;
}

void test_get_set_and_versions() {
    const Cache cache(small_options());
    CHECK(!cache.get("absent"));
    const std::uint64_t v1 = cache.set("user:42", "Ada");
    CHECK(cache.get("user:42") == std::optional<std::string>("Ada"));
    const std::uint64_t v2 = cache.set("user:42", "Ada Lovelace");
    CHECK(v2 > v1);

    std::string value = "reused";
    CHECK(cache.get_into("user:42", value) == v2);
    CHECK(value == "Ada Lovelace");
    CHECK(!cache.get_into("absent", value));
    CHECK(value.empty());

    /* Bytes, NULs included. */
    const std::string binary("\0key\0", 5);
    cache.set(binary, std::string("\0\xff\0", 3));
    CHECK(cache.get(binary) == std::optional<std::string>(std::string("\0\xff\0", 3)));

    /* An empty value is a value. */
    cache.set("empty", "");
    CHECK(cache.get("empty") == std::optional<std::string>(""));
}

void test_values_longer_than_the_first_buffer() {
    const Cache cache(small_options());
    std::string large(30000, '\0');
    for (std::size_t i = 0; i < large.size(); i++) {
        large[i] = static_cast<char>(i * 7);
    }
    cache.set("large", large);
    CHECK(cache.get("large") == std::optional<std::string>(large));

    /* A reused string that already has room, then one that must grow again. */
    std::string value;
    CHECK(cache.get_into("large", value).has_value());
    CHECK(value == large);
    cache.set("larger", large + large);
    CHECK(cache.get_into("larger", value).has_value());
    CHECK(value == large + large);
}

void test_add_replace_cas_and_erase() {
    const Cache cache(small_options());
    const std::optional<std::uint64_t> added = cache.add("k", "first");
    CHECK(added.has_value());
    CHECK(!cache.add("k", "second"));
    CHECK(cache.get("k") == std::optional<std::string>("first"));
    CHECK(!cache.replace("absent", "x"));
    CHECK(!cache.get("absent"));
    const std::optional<std::uint64_t> replaced = cache.replace("k", "third");
    CHECK(replaced.has_value() && added.has_value() && *replaced > *added);

    const slabcache::CasResult swapped = cache.cas("k", "fourth", replaced.value_or(0));
    CHECK(swapped && swapped.outcome == Outcome::done && swapped.version > *replaced);
    const slabcache::CasResult stale = cache.cas("k", "stale", replaced.value_or(0));
    CHECK(!stale && stale.outcome == Outcome::version_mismatch);
    CHECK(stale.version == swapped.version);
    CHECK(cache.get("k") == std::optional<std::string>("fourth"));
    const slabcache::CasResult gone = cache.cas("absent", "x", 1);
    CHECK(!gone && gone.outcome == Outcome::not_found && gone.version == 0);

    CHECK(cache.erase_if_version("k", *replaced) == Outcome::version_mismatch);
    CHECK(cache.erase_if_version("k", swapped.version) == Outcome::done);
    CHECK(cache.erase_if_version("k", swapped.version) == Outcome::not_found);
    cache.set("k", "v");
    CHECK(cache.erase("k"));
    CHECK(!cache.erase("k"));
}

void test_clear_and_stats() {
    const Cache cache(small_options());
    cache.set("a", "1");
    cache.set("b", "2");
    CHECK(cache.get("a").has_value());
    CHECK(!cache.get("c").has_value());
    slabcache_stats_t stats = cache.stats();
    CHECK(stats.size == sizeof stats);
    CHECK(stats.inserts == 2 && stats.hits == 1 && stats.misses == 1 && stats.entries == 2);
    CHECK(stats.max_bytes == small_options().max_bytes);
    cache.clear();
    CHECK(!cache.get("a") && !cache.get("b"));
    stats = cache.stats();
    CHECK(stats.entries == 0 && stats.removals == 2);
}

void test_errors_are_thrown_with_their_codes() {
    const Cache cache(small_options());
    CHECK(thrown_by([&] { cache.set("", "v"); }) == errc::invalid_argument);
    CHECK(thrown_by([&] { cache.get(""); }) == errc::invalid_argument);
    const std::string long_key(SLABCACHE_MAX_KEY_LEN + 1, 'k');
    CHECK(thrown_by([&] { cache.set(long_key, "v"); }) == errc::key_too_large);
    CHECK(thrown_by([&] { cache.get(long_key); }) == errc::key_too_large);
    CHECK(thrown_by([&] { cache.erase(long_key); }) == errc::key_too_large);
    const std::string long_value((64u << 10) + 1, 'v');
    CHECK(thrown_by([&] { cache.set("k", long_value); }) == errc::value_too_large);
    CHECK(thrown_by([&] { cache.add("k", long_value); }) == errc::value_too_large);
    CHECK(thrown_by([&] { cache.replace("k", long_value); }) == errc::value_too_large);
    CHECK(thrown_by([&] { cache.cas("k", long_value, 1); }) == errc::value_too_large);
    CHECK(thrown_by([&] { cache.cas("k", "v", 0); }) == errc::invalid_argument);
    CHECK(thrown_by([&] { cache.erase_if_version("k", 0); }) == errc::invalid_argument);

    slabcache::Options no_bytes;
    CHECK(thrown_by([&] { Cache refused(no_bytes); }) == errc::invalid_argument);
    slabcache::Options bad_jitter = small_options();
    bad_jitter.ttl_jitter = 2.0;
    CHECK(thrown_by([&] { Cache refused(bad_jitter); }) == errc::invalid_argument);
    slabcache::Options negative_ttl = small_options();
    negative_ttl.default_ttl = -1ms;
    CHECK(thrown_by([&] { Cache refused(negative_ttl); }) == errc::invalid_argument);

    /* The codes compare with the enum and carry the C library's messages. */
    try {
        cache.set(long_key, "v");
        CHECK(false);
    } catch (const std::system_error &error) {
        CHECK(error.code() == errc::key_too_large);
        CHECK(error.code() == slabcache::make_error_code(errc::key_too_large));
        CHECK(error.code().message() == slabcache_status_str(SLABCACHE_KEY_TOO_LARGE));
        CHECK(std::string(error.code().category().name()) == "slabcache");
    }
}

void test_ttls() {
    slabcache::Options options = small_options();
    options.default_ttl = 10ms;
    const Cache cache(options);
    cache.set("default", "v");
    cache.set("never", "v", slabcache::Ttl::never());
    cache.set("minute", "v", std::chrono::minutes(1));
    cache.set("short", "v", 10ms);
    /* Durations round up to whole milliseconds rather than down to "the default". */
    CHECK(slabcache::Ttl(std::chrono::microseconds(1)).milliseconds() == 1);
    CHECK(slabcache::Ttl(1500us).milliseconds() == 2);
    CHECK(slabcache::Ttl::cache_default().milliseconds() == 0);
    CHECK(slabcache::Ttl::never().milliseconds() == SLABCACHE_TTL_NONE);
    CHECK(thrown_by([&] { cache.set("k", "v", 0ms); }) == errc::invalid_argument);
    CHECK(thrown_by([&] { cache.set("k", "v", -5s); }) == errc::invalid_argument);
    std::this_thread::sleep_for(40ms);
    CHECK(!cache.get("default"));
    CHECK(!cache.get("short"));
    CHECK(cache.get("never").has_value());
    CHECK(cache.get("minute").has_value());
}

void test_moves_hand_over_ownership() {
    Cache first(small_options());
    first.set("k", "v");
    const slabcache_t *handle = first.handle();
    Cache second(std::move(first));
    CHECK(second.handle() == handle);
    CHECK(second.get("k") == std::optional<std::string>("v"));
    /* A moved-from Cache holds nothing: its calls are refused, its destructor a no-op. */
    CHECK(first.handle() == nullptr);
    CHECK(thrown_by([&] { first.get("k"); }) == errc::invalid_argument);
    first.clear();

    Cache third(small_options());
    third = std::move(second);
    CHECK(third.handle() == handle);
    CHECK(third.get("k") == std::optional<std::string>("v"));
}

void test_threads_share_a_const_cache() {
    const Cache cache(small_options());
    cache.set("counter", "0");
    std::vector<std::thread> threads;
    constexpr int per_thread = 2000;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&cache] {
            for (int done = 0; done < per_thread;) {
                std::string value;
                const std::optional<std::uint64_t> version = cache.get_into("counter", value);
                if (!version) {
                    continue;
                }
                const std::string next = std::to_string(std::stoll(value) + 1);
                if (cache.cas("counter", next, *version)) {
                    done++;
                }
            }
        });
    }
    for (std::thread &thread : threads) {
        thread.join();
    }
    CHECK(cache.get("counter") == std::optional<std::string>(std::to_string(4 * per_thread)));
}

/* ----- read-through, tags ----- */

/* What a failing loader or source throws, so that its own type can be told apart. */
struct SourceDown : std::runtime_error {
    SourceDown() : std::runtime_error("the source is down") {}
};

/* Polls until `done` holds, for at most a minute of 1 ms sleeps; whether it held. */
template <class Done>
bool eventually(Done done) {
    for (int polls = 0; polls < 60000; polls++) {
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(1ms);
    }
    return done();
}

void test_get_or_load() {
    const Cache cache(small_options());
    int loads = 0;
    const slabcache::Loader upper = [&](std::string_view key) {
        loads++;
        return std::optional<std::string>(std::string(key) + "!");
    };
    CHECK(cache.get_or_load("k", upper) == std::optional<std::string>("k!"));
    CHECK(cache.get_or_load("k", upper) == std::optional<std::string>("k!"));
    CHECK(loads == 1);
    CHECK(cache.get("k") == std::optional<std::string>("k!"));

    /* Longer than the first buffer: loaded once, returned whole. */
    const std::string long_key(100, 'x');
    CHECK(cache.get_or_load(long_key, upper) == std::optional<std::string>(long_key + "!"));
    CHECK(loads == 2);
    CHECK(cache.get_or_load(long_key, upper) == std::optional<std::string>(long_key + "!"));
    CHECK(loads == 2);

    /* Not found: nothing cached, so asked again. */
    const slabcache::Loader nothing = [&](std::string_view) {
        loads++;
        return std::optional<std::string>();
    };
    CHECK(!cache.get_or_load("absent", nothing));
    CHECK(!cache.get_or_load("absent", nothing));
    CHECK(loads == 4);

    /* A TTL for what is loaded. */
    cache.get_or_load("brief", upper, 10ms);
    std::this_thread::sleep_for(40ms);
    CHECK(!cache.get("brief"));
}

void test_a_loaders_exception_is_rethrown_to_its_caller() {
    const Cache cache(small_options());
    bool caught = false;
    try {
        cache.get_or_load("k", [](std::string_view) -> std::optional<std::string> {
            throw SourceDown();
        });
    } catch (const SourceDown &) {
        caught = true;
    }
    CHECK(caught);
    CHECK(!cache.get("k"));

    /* A loader that loads its own key: the inner call throws, and the loader with it. */
    const auto recursive = [&cache](std::string_view key) {
        return cache.get_or_load(key, [](std::string_view) {
            return std::optional<std::string>("x");
        });
    };
    CHECK(thrown_by([&] { cache.get_or_load("self", recursive); }) == errc::recursive_load);

    /* A loader that uses the cache otherwise works. */
    const auto reentrant = [&cache](std::string_view) {
        cache.set("side", "effect");
        return cache.get_or_load("inner", [](std::string_view) {
            return std::optional<std::string>("inner value");
        });
    };
    CHECK(cache.get_or_load("outer", reentrant) == std::optional<std::string>("inner value"));
    CHECK(cache.get("side") == std::optional<std::string>("effect"));
}

/* Four threads miss one key; the loader waits for the other three, then throws. Its thread
 * gets the exception; the others CallbackError, with the code of a thrown exception. */
void test_waiters_of_a_throwing_loader_get_a_callback_error() {
    const Cache cache(small_options());
    constexpr int threads = 4;
    std::atomic<int> loads{0}, rethrown{0}, callback_errors{0}, other{0};
    const slabcache::Loader slow_and_failing = [&](std::string_view) -> std::optional<std::string> {
        loads++;
        eventually([&] { return cache.stats().load_waits >= threads - 1; });
        throw SourceDown();
    };
    std::vector<std::thread> callers;
    for (int i = 0; i < threads; i++) {
        callers.emplace_back([&] {
            try {
                cache.get_or_load("hot", slow_and_failing);
                other++;
            } catch (const SourceDown &) {
                rethrown++;
            } catch (const slabcache::CallbackError &error) {
                const bool expected = error.code() == errc::load_failed &&
                                      error.callback_status() == slabcache::callback_exception;
                (expected ? callback_errors : other)++;
            } catch (...) {
                other++;
            }
        });
    }
    for (std::thread &caller : callers) {
        caller.join();
    }
    CHECK(loads == 1);
    CHECK(rethrown == 1);
    CHECK(callback_errors == threads - 1);
    CHECK(other == 0);
}

void test_tags() {
    const Cache cache(small_options());
    const std::uint64_t version = cache.set_tagged("page:1", "a", {"product:42", "page"});
    CHECK(version != 0);
    cache.set_tagged("page:2", "b", {"product:42"}, slabcache::Ttl::never());
    cache.set_tagged("page:3", "c", {});
    CHECK(cache.invalidate_tag("product:42") == 2);
    CHECK(!cache.get("page:1") && !cache.get("page:2"));
    CHECK(cache.get("page:3") == std::optional<std::string>("c"));
    CHECK(cache.invalidate_tag("product:42") == 0);
    const std::string long_key(SLABCACHE_MAX_KEY_LEN + 1, 'k');
    CHECK(thrown_by([&] { cache.set_tagged(long_key, "v", {"t"}); }) == errc::key_too_large);
}

/* ----- backed caches ----- */

/* An in-memory source whose writes fail on demand. */
struct Table {
    std::mutex lock;
    std::map<std::string, std::string> rows;
    int loads = 0, writes = 0, batches = 0;
    int fail_every = 0; /* every fail_every-th write throws SourceDown (0: none does) */

    void write_call() {
        writes++;
        if (fail_every != 0 && writes % fail_every == 0) {
            throw SourceDown();
        }
    }

    slabcache::Source source(bool with_batches) {
        slabcache::Source source;
        source.load = [this](std::string_view key) {
            std::lock_guard<std::mutex> held(lock);
            loads++;
            const auto row = rows.find(std::string(key));
            return row == rows.end() ? std::nullopt : std::optional<std::string>(row->second);
        };
        source.store = [this](std::string_view key, std::string_view value) {
            std::lock_guard<std::mutex> held(lock);
            write_call();
            rows[std::string(key)] = std::string(value);
        };
        source.remove = [this](std::string_view key) {
            std::lock_guard<std::mutex> held(lock);
            write_call();
            rows.erase(std::string(key));
        };
        if (with_batches) {
            source.store_batch = [this](const auto &entries) {
                std::lock_guard<std::mutex> held(lock);
                batches++;
                write_call();
                for (const auto &[key, value] : entries) {
                    rows[std::string(key)] = std::string(value);
                }
            };
            source.remove_batch = [this](const std::vector<std::string_view> &keys) {
                std::lock_guard<std::mutex> held(lock);
                batches++;
                write_call();
                for (std::string_view key : keys) {
                    rows.erase(std::string(key));
                }
            };
        }
        return source;
    }

    std::optional<std::string> row(const std::string &key) {
        std::lock_guard<std::mutex> held(lock);
        const auto found = rows.find(key);
        return found == rows.end() ? std::nullopt : std::optional<std::string>(found->second);
    }
};

void test_backed_write_through() {
    const Cache cache(small_options());
    Table table;
    const Backed users(cache, table.source(false));
    users.put("user:1", "Ada");
    CHECK(table.row("user:1") == std::optional<std::string>("Ada"));
    CHECK(users.get("user:1") == std::optional<std::string>("Ada"));
    CHECK(table.loads == 0);
    CHECK(!users.get("user:2"));
    CHECK(table.loads == 1);

    /* A failing store: its exception, rethrown here; the source keeps the old value. */
    table.fail_every = 1;
    bool caught = false;
    try {
        users.put("user:1", "Ada L.");
    } catch (const SourceDown &) {
        caught = true;
    }
    CHECK(caught);
    table.fail_every = 0;
    CHECK(users.get("user:1") == std::optional<std::string>("Ada"));

    users.erase("user:1");
    CHECK(!table.row("user:1") && !users.get("user:1"));

    /* Tags: dropped from the cache, loaded again from the source. */
    users.put_tagged("page:1", "a", {"product:42"});
    CHECK(users.invalidate_tag("product:42") == 1);
    const int loads = table.loads;
    CHECK(users.get("page:1") == std::optional<std::string>("a"));
    CHECK(table.loads == loads + 1);
    const slabcache_backed_stats_t stats = users.stats();
    CHECK(stats.size == sizeof stats && stats.loads == static_cast<std::uint64_t>(table.loads));
}

void test_backed_write_behind_loses_nothing() {
    const Cache cache(small_options());
    Table table;
    table.fail_every = 3;
    slabcache::BackedOptions options;
    options.write_mode = slabcache::WriteMode::behind;
    options.write_behind.batch_size = 8;
    options.write_behind.max_delay = 1ms;
    options.write_behind.initial_backoff = 1ms;
    options.write_behind.max_backoff = 4ms;
    const Backed backed(cache, table.source(true), options);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 30; i++) {
            backed.put("key-" + std::to_string(i), "v" + std::to_string(round));
        }
    }
    backed.erase("key-0");
    backed.flush();
    CHECK(!table.row("key-0"));
    for (int i = 1; i < 30; i++) {
        CHECK(table.row("key-" + std::to_string(i)) == std::optional<std::string>("v3"));
    }
    const slabcache_backed_stats_t stats = backed.stats();
    CHECK(stats.queue_depth == 0 && stats.failed == 0 && stats.retried > 0);
    CHECK(table.batches > 0);
}

void test_a_full_write_behind_queue_throws() {
    const Cache cache(small_options());
    std::promise<void> release;
    const std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> storing{false};
    slabcache::Source source;
    source.load = [](std::string_view) { return std::optional<std::string>(); };
    source.store = [&](std::string_view, std::string_view) {
        storing = true;
        released.wait();
    };
    source.remove = [](std::string_view) {};
    slabcache::BackedOptions options;
    options.write_mode = slabcache::WriteMode::behind;
    options.write_behind.batch_size = 1;
    options.write_behind.max_delay = 0ms;
    options.write_behind.queue_capacity = 1;
    options.write_behind.when_full = slabcache::WhenFull::error;
    const Backed backed(cache, std::move(source), options);
    backed.put("a", "1");
    CHECK(eventually([&] { return storing.load(); }));
    CHECK(thrown_by([&] { backed.put("b", "2"); }) == errc::queue_full);
    release.set_value();
    backed.flush();
}

void test_backed_settings_and_moves() {
    Table table;
    Backed backed = [&] {
        const Cache cache(small_options());
        /* The Backed keeps the cache alive past the Cache. */
        return Backed(cache, table.source(false));
    }();
    backed.put("k", "v");
    CHECK(backed.get("k") == std::optional<std::string>("v"));
    Backed moved(std::move(backed));
    CHECK(backed.handle() == nullptr);
    CHECK(thrown_by([&] { backed.get("k"); }) == errc::invalid_argument);
    CHECK(moved.get("k") == std::optional<std::string>("v"));

    const Cache cache(small_options());
    slabcache::Source no_load = table.source(false);
    no_load.load = nullptr;
    CHECK(thrown_by([&] { Backed refused(cache, no_load); }) == errc::invalid_argument);
    slabcache::BackedOptions out_of_range;
    out_of_range.ttl = 1s;
    out_of_range.refresh_ahead = 2.0;
    CHECK(thrown_by([&] { Backed refused(cache, table.source(false), out_of_range); }) ==
          errc::invalid_argument);
    slabcache::BackedOptions without_ttl;
    without_ttl.stale_while_revalidate = 1s;
    CHECK(thrown_by([&] { Backed refused(cache, table.source(false), without_ttl); }) ==
          errc::invalid_argument);
    slabcache::BackedOptions negative;
    negative.negative_ttl = -1ms;
    CHECK(thrown_by([&] { Backed refused(cache, table.source(false), negative); }) ==
          errc::invalid_argument);

    /* A source's failing load: rethrown to the reader that ran it. */
    slabcache::Source failing = table.source(false);
    failing.load = [](std::string_view) -> std::optional<std::string> { throw SourceDown(); };
    const Backed failing_reads(cache, std::move(failing));
    bool caught = false;
    try {
        failing_reads.get("k");
    } catch (const SourceDown &) {
        caught = true;
    }
    CHECK(caught);
    CHECK(failing_reads.stats().load_failures == 1);
}

/* Events heard by a listener, by cause; shared with it, so that it may outlive the test's
 * scope in a Backed. */
struct Heard {
    std::array<std::atomic<std::uint64_t>, 7> by_cause{};
    std::atomic<int> in_call{0};
    std::atomic<bool> overlapped{false};

    std::uint64_t of(slabcache::cause why) const {
        return by_cause[static_cast<std::size_t>(why)].load();
    }
    /* Counts an event, and whether a call began while another ran. */
    void count(slabcache::cause why) {
        if (in_call.exchange(1) != 0) {
            overlapped = true;
        }
        by_cause.at(static_cast<std::size_t>(why))++;
    }
    void done() { in_call = 0; }
};

/* Every event was heard as the stats count it. */
void check_heard_as_counted(const Heard &heard, const Cache &cache) {
    const slabcache_stats_t stats = cache.stats();
    CHECK(heard.of(slabcache::cause::evicted) == stats.evictions);
    CHECK(heard.of(slabcache::cause::expired) == stats.expirations);
    CHECK(heard.of(slabcache::cause::replaced) == stats.updates);
    CHECK(heard.of(slabcache::cause::removed) + heard.of(slabcache::cause::cleared) +
              heard.of(slabcache::cause::tag_invalidated) ==
          stats.removals);
    CHECK(!heard.overlapped);
}

static_assert(static_cast<int>(slabcache::cause::evicted) == SLABCACHE_CAUSE_EVICTED);
static_assert(static_cast<int>(slabcache::cause::tag_invalidated) ==
              SLABCACHE_CAUSE_TAG_INVALIDATED);

void test_a_listener_hears_every_cause_and_may_use_the_cache() {
    auto heard = std::make_shared<Heard>();
    const Cache *self = nullptr;
    std::vector<std::pair<std::string, std::string>> replaced;
    slabcache::Options options = small_options();
    options.max_entries = 8;
    /* Only this thread's calls deliver: the maintenance thread never wakes. */
    options.maintenance_interval = std::chrono::milliseconds::max();
    options.listener = [&, heard](std::string_view key, std::string_view value,
                                  slabcache::cause why) {
        heard->count(why);
        if (why == slabcache::cause::replaced) {
            replaced.emplace_back(key, value);
        }
        /* From inside: a read, writes (the second replaces), a tagged write and its
         * invalidation, a delete; their events come after this call. */
        if (why == slabcache::cause::removed && key == "trigger") {
            CHECK(self->get("kept") == std::optional<std::string>("k"));
            self->set("inside", "1");
            self->set("inside", "2");
            self->set_tagged("tagged", "t", {"inner"});
            CHECK(self->invalidate_tag("inner") == 1);
            CHECK(self->erase("kept"));
        }
        heard->done();
    };
    const Cache cache(options);
    self = &cache;
    cache.set("kept", "k");
    cache.set("a", "1");
    cache.set("a", "2");
    cache.set("trigger", "x");
    CHECK(cache.erase("trigger"));
    CHECK(cache.get("inside") == std::optional<std::string>("2"));
    CHECK(!cache.get("kept"));
    cache.set("brief", "v", 1ms);
    std::this_thread::sleep_for(20ms);
    cache.set("brief", "w");
    for (int i = 0; i < 32; i++) {
        cache.set("filler-" + std::to_string(i), "v");
    }
    cache.clear();
    CHECK(heard->of(slabcache::cause::removed) == 2); /* trigger, kept */
    CHECK(heard->of(slabcache::cause::tag_invalidated) == 1);
    CHECK(heard->of(slabcache::cause::expired) == 1);
    CHECK(heard->of(slabcache::cause::evicted) > 0);
    CHECK(heard->of(slabcache::cause::cleared) > 0);
    CHECK(replaced.size() >= 2 && replaced[0] == std::make_pair(std::string("a"),
                                                                 std::string("1")));
    check_heard_as_counted(*heard, cache);
    CHECK(cache.listener_exceptions() == 0);
}

void test_a_listeners_exceptions_are_caught_and_counted() {
    auto heard = std::make_shared<Heard>();
    slabcache::Options options = small_options();
    options.maintenance_interval = 1ms;
    options.listener = [heard](std::string_view, std::string_view, slabcache::cause why) {
        heard->count(why);
        heard->done();
        throw std::runtime_error("from the listener");
    };
    const Cache cache(options);
    cache.set("a", "1");
    cache.set("a", "2"); /* replaced: the listener throws, the write does not */
    CHECK(cache.erase("a"));
    /* Delivered by this thread, or by the maintenance thread if it was delivering then. */
    CHECK(eventually([&] { return cache.listener_exceptions() == 2; }));
    CHECK(cache.get("b") == std::nullopt);
    /* On the maintenance thread too, with no traffic. */
    for (int i = 0; i < 10; i++) {
        cache.set("expiring-" + std::to_string(i), "v", 1ms);
    }
    CHECK(eventually([&] { return heard->of(slabcache::cause::expired) == 10; }));
    CHECK(eventually([&] { return cache.listener_exceptions() == 12; }));
    CHECK(cache.stats().listener_panics == 0);
    const Cache plain(small_options());
    CHECK(plain.listener_exceptions() == 0);
}

void test_hottest_names_the_most_read_keys() {
    slabcache::Options options = small_options();
    options.track_hot_keys = true;
    const Cache cache(options);
    for (int i = 0; i < 50; i++) {
        cache.set("item:" + std::to_string(i), "v");
    }
    for (int round = 0; round < 20000; round++) {
        cache.get("item:7");
        cache.get("item:" + std::to_string(round % 50));
    }
    const auto top = cache.hottest(3);
    CHECK(top.size() == 3);
    CHECK(top[0].first == "item:7" && top[0].second > 10000);
    CHECK(cache.hottest(0).empty());
    const Cache untracked(small_options());
    untracked.set("k", "v");
    untracked.get("k");
    CHECK(untracked.hottest(3).empty());
}

void test_run_pending_tasks_and_listener_settings() {
    auto heard = std::make_shared<Heard>();
    slabcache::Options options = small_options();
    options.maintenance_interval = std::chrono::milliseconds::max();
    options.listener = [heard](std::string_view, std::string_view, slabcache::cause why) {
        heard->count(why);
        heard->done();
    };
    const Cache cache(options);
    for (int i = 0; i < 10; i++) {
        cache.set("expiring-" + std::to_string(i), "v", 1ms);
    }
    std::this_thread::sleep_for(20ms);
    for (int round = 0; round < 100000 && heard->of(slabcache::cause::expired) < 10; round++) {
        cache.run_pending_tasks();
    }
    CHECK(heard->of(slabcache::cause::expired) == 10);
    check_heard_as_counted(*heard, cache);

    slabcache::Options negative = small_options();
    negative.maintenance_interval = -1ms;
    CHECK(thrown_by([&] { Cache refused(negative); }) == errc::invalid_argument);
    Cache moved_from(small_options());
    Cache taker(std::move(moved_from));
    CHECK(thrown_by([&] { moved_from.run_pending_tasks(); }) == errc::invalid_argument);
}

/* A Backed over a Cache with a listener keeps the listener after the Cache is gone: the
 * writes it makes are still heard (ASan reports a call through a freed listener). */
void test_a_backed_keeps_the_listener_of_its_cache() {
    auto heard = std::make_shared<Heard>();
    Table table;
    Backed backed = [&] {
        slabcache::Options options = small_options();
        options.maintenance_interval = std::chrono::milliseconds::max();
        options.listener = [heard](std::string_view, std::string_view, slabcache::cause why) {
            heard->count(why);
            heard->done();
        };
        const Cache cache(options);
        return Backed(cache, table.source(false));
    }();
    backed.put("k", "1");
    backed.put("k", "2");
    backed.erase("k");
    CHECK(heard->of(slabcache::cause::replaced) == 1);
    CHECK(heard->of(slabcache::cause::removed) == 1);
}

}  // namespace

int main() {
    RUN(test_get_set_and_versions);
    RUN(test_values_longer_than_the_first_buffer);
    RUN(test_add_replace_cas_and_erase);
    RUN(test_clear_and_stats);
    RUN(test_errors_are_thrown_with_their_codes);
    RUN(test_ttls);
    RUN(test_moves_hand_over_ownership);
    RUN(test_threads_share_a_const_cache);
    RUN(test_get_or_load);
    RUN(test_a_loaders_exception_is_rethrown_to_its_caller);
    RUN(test_waiters_of_a_throwing_loader_get_a_callback_error);
    RUN(test_tags);
    RUN(test_backed_write_through);
    RUN(test_backed_write_behind_loses_nothing);
    RUN(test_a_full_write_behind_queue_throws);
    RUN(test_backed_settings_and_moves);
    RUN(test_a_listener_hears_every_cause_and_may_use_the_cache);
    RUN(test_a_listeners_exceptions_are_caught_and_counted);
    RUN(test_run_pending_tasks_and_listener_settings);
    RUN(test_a_backed_keeps_the_listener_of_its_cache);
    RUN(test_hottest_names_the_most_read_keys);
    return finish();
}
