/*
 * The test of include/slabcache.hpp, the C++17 wrapper. Built with -std=c++17 -Wall -Wextra
 * -Werror and run under AddressSanitizer + UndefinedBehaviorSanitizer by scripts/ffi-test.sh.
 */

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "slabcache.hpp"
#include "check.h"

using namespace std::chrono_literals;
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
    return finish();
}
