/*
 * slabcache.hpp: a header-only C++17 wrapper of the slabcache C API (slabcache.h).
 *
 *   slabcache::Options options;
 *   options.max_bytes = 64 << 20;
 *   slabcache::Cache cache(options);
 *   std::uint64_t v1 = cache.set("user:42", "Ada");
 *   std::optional<std::string> name = cache.get("user:42");           // "Ada"
 *   auto swapped = cache.cas("user:42", "Ada Lovelace", v1);           // swapped.version > v1
 *   cache.set("session:9f2c", "user=42", std::chrono::seconds(30));   // a TTL
 *
 * Errors. The answers "no" of the API are return values, never exceptions: a miss is an
 * empty std::optional from get(); add() on a present key and replace() on an absent one
 * return an empty std::optional; cas() and erase_if_version() return an Outcome. Everything
 * else a call can fail with (a key longer than SLABCACHE_MAX_KEY_LEN, an empty key, a value
 * longer than the cache's max_value_bytes, invalid options, a moved-from Cache, a panic in
 * the library) throws slabcache::Error, a std::system_error whose code() belongs to
 * slabcache::category() and compares equal to a slabcache::errc:
 *
 *   try { cache.set(key, huge); }
 *   catch (const slabcache::Error &e) { if (e.code() == slabcache::errc::value_too_large) ... }
 *
 * std::string may also throw std::bad_alloc.
 *
 * Threads. A Cache may be used from any number of threads at once, through const
 * references: every operation is a const member function. Moving, assigning and destroying
 * it must not overlap another call on it.
 */

#ifndef SLABCACHE_HPP
#define SLABCACHE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "slabcache.h"

namespace slabcache {

/** The statuses of the C API other than SLABCACHE_OK, as a std::error_code enum. */
enum class errc : int {
    not_found = SLABCACHE_NOT_FOUND,
    exists = SLABCACHE_EXISTS,
    version_mismatch = SLABCACHE_VERSION_MISMATCH,
    buffer_too_small = SLABCACHE_BUFFER_TOO_SMALL,
    key_too_large = SLABCACHE_KEY_TOO_LARGE,
    value_too_large = SLABCACHE_VALUE_TOO_LARGE,
    invalid_argument = SLABCACHE_INVALID_ARGUMENT,
    panic = SLABCACHE_PANIC,
};

namespace detail {

class Category final : public std::error_category {
public:
    const char *name() const noexcept override { return "slabcache"; }
    std::string message(int status) const override { return slabcache_status_str(status); }
};

inline const std::uint8_t *bytes(std::string_view text) noexcept {
    return reinterpret_cast<const std::uint8_t *>(text.data());
}

}  // namespace detail

/** The error category of slabcache's statuses; its messages are slabcache_status_str's. */
inline const std::error_category &category() noexcept {
    static const detail::Category instance;
    return instance;
}

inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), category()};
}

/** What the wrapper throws: a status of the C API that is an error, not an answer. */
class Error : public std::system_error {
public:
    explicit Error(int status) : std::system_error(status, category()) {}
    /** The SLABCACHE_* status. */
    int status() const noexcept { return code().value(); }
};

}  // namespace slabcache

namespace std {
template <>
struct is_error_code_enum<slabcache::errc> : true_type {};
}  // namespace std

namespace slabcache {

/**
 * The time to live of a write: the cache's default, never, or a positive duration (rounded
 * up to whole milliseconds). Converts from any std::chrono::duration, so
 * `cache.set(k, v, std::chrono::seconds(30))` works; a zero or negative duration throws
 * Error(errc::invalid_argument), as it would otherwise silently mean the default.
 */
class Ttl {
public:
    static constexpr Ttl cache_default() noexcept { return Ttl(0); }
    static constexpr Ttl never() noexcept { return Ttl(SLABCACHE_TTL_NONE); }

    template <class Rep, class Period>
    /* Implicit, so that a duration can be passed where a Ttl is expected. */
    Ttl(std::chrono::duration<Rep, Period> ttl) : milliseconds_(positive_ms(ttl)) {}

    /** The `ttl_ms` argument of the C API. */
    constexpr std::uint64_t milliseconds() const noexcept { return milliseconds_; }

private:
    explicit constexpr Ttl(std::uint64_t milliseconds) noexcept : milliseconds_(milliseconds) {}

    template <class Rep, class Period>
    static std::uint64_t positive_ms(std::chrono::duration<Rep, Period> ttl) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(ttl).count();
        if (ms <= 0) {
            throw Error(SLABCACHE_INVALID_ARGUMENT);
        }
        return static_cast<std::uint64_t>(ms);
    }

    std::uint64_t milliseconds_;
};

/** The settings of a Cache; see slabcache_options_t for each. */
struct Options {
    std::uint64_t max_bytes = 0;  /* required */
    std::uint64_t max_entries = 0;
    std::chrono::milliseconds default_ttl{0};  /* 0: entries do not expire */
    double ttl_jitter = 0.0;
    std::uint32_t max_value_bytes = 0;  /* 0: SLABCACHE_DEFAULT_MAX_VALUE_BYTES */
};

/** How a conditional write or delete went. */
enum class Outcome {
    done,              /* written or removed */
    version_mismatch,  /* the key holds another version; nothing changed */
    not_found,         /* the key is absent; nothing changed */
};

/** The result of Cache::cas. */
struct CasResult {
    Outcome outcome;
    /** The new version when done, the current one on a mismatch, 0 when not found. */
    std::uint64_t version;
    explicit operator bool() const noexcept { return outcome == Outcome::done; }
};

/** A cache: owns a slabcache_t and frees it when destroyed. Movable, not copyable. */
class Cache {
public:
    /** Throws Error(errc::invalid_argument) for settings the library refuses. */
    explicit Cache(const Options &options) {
        if (options.default_ttl.count() < 0) {
            throw Error(SLABCACHE_INVALID_ARGUMENT);
        }
        slabcache_options_t raw;
        slabcache_options_init(&raw);
        raw.max_bytes = options.max_bytes;
        raw.max_entries = options.max_entries;
        raw.default_ttl_ms = static_cast<std::uint64_t>(options.default_ttl.count());
        raw.ttl_jitter = options.ttl_jitter;
        raw.max_value_bytes = options.max_value_bytes;
        check(slabcache_new(&raw, &cache_));
    }

    Cache(const Cache &) = delete;
    Cache &operator=(const Cache &) = delete;
    Cache(Cache &&other) noexcept : cache_(std::exchange(other.cache_, nullptr)) {}
    Cache &operator=(Cache &&other) noexcept {
        if (this != &other) {
            slabcache_free(cache_);
            cache_ = std::exchange(other.cache_, nullptr);
        }
        return *this;
    }
    ~Cache() { slabcache_free(cache_); }

    /** A copy of the value of `key`, or std::nullopt if absent or expired. */
    std::optional<std::string> get(std::string_view key) const {
        std::string value;
        if (!get_into(key, value)) {
            return std::nullopt;
        }
        return value;
    }

    /**
     * Copies the value of `key` into `value` (reusing its capacity) and returns its version,
     * or std::nullopt (with `value` emptied) if absent or expired.
     */
    std::optional<std::uint64_t> get_into(std::string_view key, std::string &value) const {
        value.resize(value.capacity());
        for (;;) {
            std::size_t length = 0;
            std::uint64_t version = 0;
            const int status = slabcache_get(cache_, detail::bytes(key), key.size(),
                                             reinterpret_cast<std::uint8_t *>(value.data()),
                                             value.size(), &length, &version);
            switch (status) {
                case SLABCACHE_OK:
                    value.resize(length);
                    return version;
                case SLABCACHE_NOT_FOUND:
                    value.clear();
                    return std::nullopt;
                case SLABCACHE_BUFFER_TOO_SMALL:
                    /* Another thread may make the value longer still before the next try. */
                    value.resize(length);
                    break;
                default:
                    throw Error(status);
            }
        }
    }

    /** Stores `value` under `key`; returns the new version. */
    std::uint64_t set(std::string_view key, std::string_view value,
                      Ttl ttl = Ttl::cache_default()) const {
        std::uint64_t version = 0;
        check(write(slabcache_set, key, value, ttl, version));
        return version;
    }

    /** Stores `value` only if `key` is absent: the new version, or std::nullopt if present. */
    std::optional<std::uint64_t> add(std::string_view key, std::string_view value,
                                     Ttl ttl = Ttl::cache_default()) const {
        std::uint64_t version = 0;
        const int status = write(slabcache_add, key, value, ttl, version);
        if (status == SLABCACHE_EXISTS) {
            return std::nullopt;
        }
        check(status);
        return version;
    }

    /** Stores `value` only if `key` is present: the new version, or std::nullopt if absent. */
    std::optional<std::uint64_t> replace(std::string_view key, std::string_view value,
                                         Ttl ttl = Ttl::cache_default()) const {
        std::uint64_t version = 0;
        const int status = write(slabcache_replace, key, value, ttl, version);
        if (status == SLABCACHE_NOT_FOUND) {
            return std::nullopt;
        }
        check(status);
        return version;
    }

    /** Stores `value` only if `key`'s current version is `expected`. */
    CasResult cas(std::string_view key, std::string_view value, std::uint64_t expected,
                  Ttl ttl = Ttl::cache_default()) const {
        std::uint64_t version = 0;
        const int status =
            slabcache_cas(cache_, detail::bytes(key), key.size(), detail::bytes(value),
                          value.size(), expected, ttl.milliseconds(), &version);
        switch (status) {
            case SLABCACHE_OK:
                return {Outcome::done, version};
            case SLABCACHE_VERSION_MISMATCH:
                return {Outcome::version_mismatch, version};
            case SLABCACHE_NOT_FOUND:
                return {Outcome::not_found, 0};
            default:
                throw Error(status);
        }
    }

    /** Removes `key`; false if it was absent. */
    bool erase(std::string_view key) const {
        const int status = slabcache_delete(cache_, detail::bytes(key), key.size());
        if (status == SLABCACHE_NOT_FOUND) {
            return false;
        }
        check(status);
        return true;
    }

    /** Removes `key` only if its current version is `version`. */
    Outcome erase_if_version(std::string_view key, std::uint64_t version) const {
        const int status =
            slabcache_delete_if_version(cache_, detail::bytes(key), key.size(), version);
        switch (status) {
            case SLABCACHE_OK:
                return Outcome::done;
            case SLABCACHE_VERSION_MISMATCH:
                return Outcome::version_mismatch;
            case SLABCACHE_NOT_FOUND:
                return Outcome::not_found;
            default:
                throw Error(status);
        }
    }

    /** Removes every entry (entries written meanwhile by other threads may survive). */
    void clear() const noexcept { slabcache_clear(cache_); }

    /** A snapshot of the cache's counters. */
    slabcache_stats_t stats() const {
        slabcache_stats_t stats{};
        stats.size = sizeof stats;
        check(slabcache_stats(cache_, &stats));
        return stats;
    }

    /** The C handle, for the C API; owned by this Cache; NULL once moved from. */
    const slabcache_t *handle() const noexcept { return cache_; }

private:
    /** slabcache_set, slabcache_add and slabcache_replace share this signature. */
    using WriteFunction = int (*)(const slabcache_t *, const std::uint8_t *, std::size_t,
                                  const std::uint8_t *, std::size_t, std::uint64_t,
                                  std::uint64_t *);

    /** Calls one of the C writes; returns its status, the new version in `version`. */
    int write(WriteFunction function, std::string_view key, std::string_view value, Ttl ttl,
              std::uint64_t &version) const {
        return function(cache_, detail::bytes(key), key.size(), detail::bytes(value),
                        value.size(), ttl.milliseconds(), &version);
    }

    static void check(int status) {
        if (status != SLABCACHE_OK) {
            throw Error(status);
        }
    }

    slabcache_t *cache_ = nullptr;
};

}  // namespace slabcache

#endif /* SLABCACHE_HPP */
