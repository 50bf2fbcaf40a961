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
 *   auto row = cache.get_or_load("user:7", [](std::string_view key) {  // read-through
 *       return db_lookup(key);                                        // std::optional<std::string>
 *   });
 *
 * Backed (a cache in front of a Source of std::function callbacks), tags (set_tagged,
 * invalidate_tag) and read-through (get_or_load) are at the end of this file; a listener told
 * of every entry that leaves the cache is a setting (Options::listener).
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
 * Callbacks. The std::function loaders and sources are called by the C library. An
 * exception they throw never crosses it: the wrapper catches it, reports a failed load or
 * write (the callback's code is slabcache::callback_exception), and the call that ran the
 * callback on its own thread rethrows it. Callers that only waited for that load, and
 * failures of C callbacks, throw slabcache::CallbackError instead, which carries the code.
 * A listener's exceptions are caught too, and counted (Cache::listener_exceptions()), not
 * rethrown: it runs at the end of whichever call made the event, on any thread, or on the
 * cache's maintenance thread, and none of those calls is the listener's to fail.
 *
 * Threads. A Cache may be used from any number of threads at once, through const
 * references: every operation is a const member function. Moving, assigning and destroying
 * it must not overlap another call on it.
 */

#ifndef SLABCACHE_HPP
#define SLABCACHE_HPP

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

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
    load_failed = SLABCACHE_LOAD_FAILED,
    recursive_load = SLABCACHE_RECURSIVE_LOAD,
    write_failed = SLABCACHE_WRITE_FAILED,
    queue_full = SLABCACHE_QUEUE_FULL,
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

inline std::string_view text(const std::uint8_t *bytes, std::size_t length) noexcept {
    return {reinterpret_cast<const char *>(bytes), length};
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

/**
 * The code a wrapper callback reports to the C library when its std::function throws. The
 * library's own statuses are never negative, so it is told from them.
 */
inline constexpr int callback_exception = std::numeric_limits<int>::min();

/**
 * A loader or a source callback failed, and the call did not run it on its own thread (or it
 * was a C callback): status() is errc::load_failed or errc::write_failed, callback_status()
 * the callback's own code (callback_exception for a wrapper callback that threw).
 */
class CallbackError : public Error {
public:
    CallbackError(int status, int callback_status)
        : Error(status), callback_status_(callback_status) {}
    /** The code the callback returned. */
    int callback_status() const noexcept { return callback_status_; }

private:
    int callback_status_;
};

namespace detail {

/** Throws for a status that is an error. */
inline void check(int status) {
    if (status != SLABCACHE_OK) {
        throw Error(status);
    }
}

/** A duration setting in milliseconds; negative ones throw Error(errc::invalid_argument). */
inline std::uint64_t setting_ms(std::chrono::milliseconds ms) {
    if (ms.count() < 0) {
        throw Error(SLABCACHE_INVALID_ARGUMENT);
    }
    return static_cast<std::uint64_t>(ms.count());
}

/** What a wrapper callback threw on this thread, for the call that ran it to rethrow. */
inline std::exception_ptr &thrown_in_callback() noexcept {
    static thread_local std::exception_ptr thrown;
    return thrown;
}

/** Runs a callback's body for the C library: an exception is kept, not thrown through C. */
template <class Body>
int callback(Body &&body) noexcept {
    try {
        return body();
    } catch (...) {
        thrown_in_callback() = std::current_exception();
        return callback_exception;
    }
}

/** Calls the C API (`call`) where callbacks may run on this thread; returns its status. */
template <class Call>
int with_callbacks(Call &&call) {
    thrown_in_callback() = nullptr;
    return call();
}

/**
 * Throws for an error status of a call made `with_callbacks`: what a callback threw on this
 * thread, for a failure that was its own; else CallbackError, or Error.
 */
[[noreturn]] inline void throw_status(int status, int callback_status) {
    const std::exception_ptr thrown = std::exchange(thrown_in_callback(), nullptr);
    if (status == SLABCACHE_LOAD_FAILED || status == SLABCACHE_WRITE_FAILED) {
        if (thrown && callback_status == callback_exception) {
            std::rethrow_exception(thrown);
        }
        throw CallbackError(status, callback_status);
    }
    throw Error(status);
}

/** Throws for a status of a call made `with_callbacks` that is an error (see throw_status). */
inline void check_callbacks(int status, int callback_status) {
    if (status != SLABCACHE_OK) {
        throw_status(status, callback_status);
    }
}

/** Hands a loaded value (or "not found") to the library. */
inline int sink_answer(slabcache_sink_t *sink, const std::optional<std::string> &value) noexcept {
    if (!value) {
        return SLABCACHE_NOT_FOUND;
    }
    return slabcache_sink_value(sink, bytes(*value), value->size());
}

/** Byte strings as the C API takes them: an array of pointers and one of lengths. */
struct ByteArrays {
    explicit ByteArrays(const std::vector<std::string_view> &items) {
        pointers.reserve(items.size());
        lengths.reserve(items.size());
        for (std::string_view item : items) {
            pointers.push_back(bytes(item));
            lengths.push_back(item.size());
        }
    }
    std::vector<const std::uint8_t *> pointers;
    std::vector<std::size_t> lengths;
};

/** The byte strings the C API passes as two arrays. */
inline std::vector<std::string_view> views(const std::uint8_t *const *pointers,
                                           const std::size_t *lengths, std::size_t count) {
    std::vector<std::string_view> items;
    items.reserve(count);
    for (std::size_t i = 0; i < count; i++) {
        items.push_back(text(pointers[i], lengths[i]));
    }
    return items;
}

}  // namespace detail

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

/** Why an entry left the cache, or had its value replaced: the SLABCACHE_CAUSE_* codes. */
enum class cause : int {
    evicted = SLABCACHE_CAUSE_EVICTED,                 /* dropped to make room */
    expired = SLABCACHE_CAUSE_EXPIRED,                 /* its TTL ran out */
    removed = SLABCACHE_CAUSE_REMOVED,                 /* erase(), erase_if_version() */
    replaced = SLABCACHE_CAUSE_REPLACED,               /* a write; the value is the old one */
    cleared = SLABCACHE_CAUSE_CLEARED,                 /* clear() */
    tag_invalidated = SLABCACHE_CAUSE_TAG_INVALIDATED, /* invalidate_tag() */
};

/**
 * A listener (Options::listener): told of every entry that leaves the cache or has its value
 * replaced, with its key, the value it held and why; see slabcache_listener_fn for when and
 * on which thread. The views are valid during the call only. It may use the cache (its own
 * events come after it returns, never inside it), from any thread, one call at a time. What
 * it throws is caught and counted in Cache::listener_exceptions().
 */
using Listener = std::function<void(std::string_view key, std::string_view value, cause why)>;

/** The settings of a Cache; see slabcache_options_t for each. */
struct Options {
    std::uint64_t max_bytes = 0;  /* required */
    std::uint64_t max_entries = 0;
    std::chrono::milliseconds default_ttl{0};  /* 0: entries do not expire */
    double ttl_jitter = 0.0;
    std::uint32_t max_value_bytes = 0;  /* 0: SLABCACHE_DEFAULT_MAX_VALUE_BYTES */
    Listener listener;  /* empty: none */
    /* With a listener, how often the maintenance thread reports expirations; 0: 1 s. */
    std::chrono::milliseconds maintenance_interval{0};
    /* Track the most read keys, for Cache::hottest(). */
    bool track_hot_keys = false;
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

/**
 * A loader for Cache::get_or_load: the value of a key, or std::nullopt when the source has
 * none. It may throw (see "Callbacks" above).
 */
using Loader = std::function<std::optional<std::string>(std::string_view key)>;

namespace detail {

/** One get_or_load call: its loader, and the value the loader returned on this thread. */
struct LoadCall {
    const Loader *load;
    std::optional<std::string> loaded;
};

inline int load_trampoline(void *ctx, const std::uint8_t *key, std::size_t key_len,
                           slabcache_sink_t *sink) noexcept {
    return callback([&] {
        auto *call = static_cast<LoadCall *>(ctx);
        call->loaded = (*call->load)(text(key, key_len));
        return sink_answer(sink, call->loaded);
    });
}

/**
 * A Cache's listener and the exceptions it threw: the listener's context. Shared by the Cache
 * and every Backed made over it, since the C cache calls the listener until the last of them
 * is freed.
 */
struct ListenerState {
    explicit ListenerState(Listener listen) : listener(std::move(listen)) {}
    const Listener listener;
    std::atomic<std::uint64_t> exceptions{0};
};

inline void listener_trampoline(void *ctx, const std::uint8_t *key, std::size_t key_len,
                                const std::uint8_t *value, std::size_t value_len,
                                int why) noexcept {
    auto *state = static_cast<ListenerState *>(ctx);
    try {
        state->listener(text(key, key_len), text(value, value_len), static_cast<cause>(why));
    } catch (...) {
        state->exceptions.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace detail

/**
 * A cache: owns a slabcache_t and frees it when destroyed. Movable, not copyable.
 *
 * A listener that uses the cache reaches it through a reference or pointer set once the
 * Cache is made (no event comes before its first write), and the Cache must then stay where
 * it is while the listener may run.
 */
class Cache {
public:
    /** Throws Error(errc::invalid_argument) for settings the library refuses. */
    explicit Cache(const Options &options) {
        slabcache_options_t raw;
        slabcache_options_init(&raw);
        raw.max_bytes = options.max_bytes;
        raw.max_entries = options.max_entries;
        raw.default_ttl_ms = detail::setting_ms(options.default_ttl);
        raw.ttl_jitter = options.ttl_jitter;
        raw.max_value_bytes = options.max_value_bytes;
        raw.maintenance_interval_ms = detail::setting_ms(options.maintenance_interval);
        raw.track_hot_keys = options.track_hot_keys ? 1 : 0;
        if (options.listener) {
            listener_ = std::make_shared<detail::ListenerState>(options.listener);
            raw.listener = &detail::listener_trampoline;
            raw.listener_ctx = listener_.get();
        }
        detail::check(slabcache_new(&raw, &cache_));
    }

    Cache(const Cache &) = delete;
    Cache &operator=(const Cache &) = delete;
    Cache(Cache &&other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)), listener_(std::move(other.listener_)) {}
    Cache &operator=(Cache &&other) noexcept {
        if (this != &other) {
            /* Freed first: it calls the listener until then. */
            slabcache_free(cache_);
            cache_ = std::exchange(other.cache_, nullptr);
            listener_ = std::move(other.listener_);
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
        detail::check(write(slabcache_set, key, value, ttl, version));
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
        detail::check(status);
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
        detail::check(status);
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
        detail::check(status);
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

    /**
     * The value of `key`; on a miss, the value `load` returns for it, cached with `ttl`
     * (std::nullopt: nothing is cached). Concurrent callers that miss the same key run one
     * loader between them, the others wait for its answer. `load` runs on this thread, with
     * no lock held: it may use the cache, except to load `key` itself (Error with
     * errc::recursive_load). What `load` throws is rethrown here; a caller that waited for
     * another's loader that failed gets CallbackError (errc::load_failed).
     */
    std::optional<std::string> get_or_load(std::string_view key, const Loader &load,
                                           Ttl ttl = Ttl::cache_default()) const {
        detail::LoadCall call{&load, std::nullopt};
        std::string value;
        value.resize(value.capacity());
        for (;;) {
            std::size_t length = 0;
            int load_error = 0;
            const int status = detail::with_callbacks([&] {
                return slabcache_get_or_load(
                    cache_, detail::bytes(key), key.size(), ttl.milliseconds(),
                    &detail::load_trampoline, &call,
                    reinterpret_cast<std::uint8_t *>(value.data()), value.size(), &length,
                    &load_error);
            });
            switch (status) {
                case SLABCACHE_OK:
                    value.resize(length);
                    return value;
                case SLABCACHE_NOT_FOUND:
                    return std::nullopt;
                case SLABCACHE_BUFFER_TOO_SMALL:
                    /* Loaded here: that is the value. Else it was cached (or another thread
                     * loaded it), and the next try usually hits. */
                    if (call.loaded) {
                        return std::move(call.loaded);
                    }
                    value.resize(length);
                    break;
                default:
                    detail::throw_status(status, load_error);
            }
        }
    }

    /**
     * Stores `value` under `key`, tagged with each of `tags`, so that invalidate_tag() of any
     * of them removes it; returns the new version.
     */
    std::uint64_t set_tagged(std::string_view key, std::string_view value,
                             const std::vector<std::string_view> &tags,
                             Ttl ttl = Ttl::cache_default()) const {
        const detail::ByteArrays raw(tags);
        std::uint64_t version = 0;
        detail::check(slabcache_set_tagged(cache_, detail::bytes(key), key.size(),
                                           detail::bytes(value), value.size(),
                                           ttl.milliseconds(), raw.pointers.data(),
                                           raw.lengths.data(), tags.size(), &version));
        return version;
    }

    /** Removes every entry tagged with `tag` (and not written since without it); how many. */
    std::uint64_t invalidate_tag(std::string_view tag) const {
        std::uint64_t removed = 0;
        detail::check(slabcache_invalidate_tag(cache_, detail::bytes(tag), tag.size(), &removed));
        return removed;
    }

    /**
     * The keys read most often lately, most read first, with their estimated recent reads (at
     * most n, and at most 64); empty unless the cache was made with track_hot_keys.
     */
    std::vector<std::pair<std::string, std::uint64_t>> hottest(std::size_t n) const {
        struct Collected {
            std::vector<std::pair<std::string, std::uint64_t>> keys;
            std::exception_ptr failure;  /* an exception may not unwind through the C library */
        } collected;
        detail::check(slabcache_hottest(
            cache_, n,
            [](void *ctx, const std::uint8_t *key, std::size_t key_len, std::uint64_t reads) {
                auto &out = *static_cast<Collected *>(ctx);
                if (out.failure) {
                    return;
                }
                try {
                    out.keys.emplace_back(
                        std::string(reinterpret_cast<const char *>(key), key_len), reads);
                } catch (...) {
                    out.failure = std::current_exception();
                }
            },
            &collected, nullptr));
        if (collected.failure) {
            std::rethrow_exception(collected.failure);
        }
        return std::move(collected.keys);
    }

    /** A snapshot of the cache's counters. */
    slabcache_stats_t stats() const {
        slabcache_stats_t stats{};
        stats.size = sizeof stats;
        detail::check(slabcache_stats(cache_, &stats));
        return stats;
    }

    /**
     * Reaps expired entries and delivers the listener's pending events on this thread, as
     * the maintenance thread does every maintenance_interval (slabcache_run_pending_tasks).
     */
    void run_pending_tasks() const { detail::check(slabcache_run_pending_tasks(cache_)); }

    /** How many times the listener threw (each caught, and the next event still told). */
    std::uint64_t listener_exceptions() const noexcept {
        return listener_ ? listener_->exceptions.load(std::memory_order_relaxed) : 0;
    }

    /** The C handle, for the C API; owned by this Cache; NULL once moved from. */
    const slabcache_t *handle() const noexcept { return cache_; }

private:
    /* A Backed shares the listener's state, which the C cache it keeps alive calls. */
    friend class Backed;

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

    slabcache_t *cache_ = nullptr;
    /** The listener's context; on the heap, so that it stays put when the Cache moves. */
    std::shared_ptr<detail::ListenerState> listener_;
};

/**
 * A source of truth for a Backed cache, as std::function callbacks. load, store and remove
 * are required; the batch callbacks are optional (without them, write-behind sends its
 * batches one write at a time). A callback fails by throwing (see "Callbacks" above).
 *
 * The callbacks are called from the threads that use the Backed and from its own threads
 * (the write-behind flusher, the refresh workers), several at once: they must be safe to
 * call from any thread. Stores and removes must be idempotent (a failed batch is sent again
 * whole). What a callback throws on one of the Backed's own threads is counted (retried,
 * failed, load_failures), never rethrown.
 */
struct Source {
    std::function<std::optional<std::string>(std::string_view key)> load;
    std::function<void(std::string_view key, std::string_view value)> store;
    std::function<void(std::string_view key)> remove;
    std::function<void(const std::vector<std::pair<std::string_view, std::string_view>> &entries)>
        store_batch;
    std::function<void(const std::vector<std::string_view> &keys)> remove_batch;
};

/** How a Backed's writes reach the source; see SLABCACHE_WRITE_THROUGH and the others. */
enum class WriteMode : std::uint32_t {
    through = SLABCACHE_WRITE_THROUGH,
    around = SLABCACHE_WRITE_AROUND,
    behind = SLABCACHE_WRITE_BEHIND,
};

/** What a write-behind write does when the queue is full. */
enum class WhenFull : std::uint32_t {
    block = SLABCACHE_WHEN_FULL_BLOCK,
    error = SLABCACHE_WHEN_FULL_ERROR, /* Backed::put throws Error(errc::queue_full) */
};

namespace detail {

/** The C library's defaults, which BackedOptions starts from. */
inline const slabcache_backed_options_t &backed_defaults() noexcept {
    static const slabcache_backed_options_t defaults = [] {
        slabcache_backed_options_t options;
        slabcache_backed_options_init(&options);
        return options;
    }();
    return defaults;
}

inline std::chrono::milliseconds default_ms(std::uint64_t ms) noexcept {
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

}  // namespace detail

/**
 * The settings of a Backed; see slabcache_backed_options_t for each. The defaults are the
 * C library's; a zero duration or fraction turns its rule off.
 */
struct BackedOptions {
    WriteMode write_mode = WriteMode::through;
    Ttl ttl = Ttl::cache_default();
    std::chrono::milliseconds stale_while_revalidate{0};
    double refresh_ahead = 0.0;
    double early_expiry_beta = 0.0;
    std::chrono::milliseconds negative_ttl{0};
    std::size_t refresh_threads = detail::backed_defaults().refresh_threads;
    std::size_t refresh_queue = detail::backed_defaults().refresh_queue;
    std::uint64_t random_seed = 0; /* 0: drawn at random */

    /** Write-behind's settings, used with WriteMode::behind. */
    struct WriteBehind {
        std::size_t batch_size = detail::backed_defaults().behind_batch_size;
        std::chrono::milliseconds max_delay =
            detail::default_ms(detail::backed_defaults().behind_max_delay_ms);
        std::size_t queue_capacity = detail::backed_defaults().behind_queue_capacity;
        WhenFull when_full = WhenFull::block;
        std::chrono::milliseconds initial_backoff =
            detail::default_ms(detail::backed_defaults().behind_initial_backoff_ms);
        std::chrono::milliseconds max_backoff =
            detail::default_ms(detail::backed_defaults().behind_max_backoff_ms);
        std::uint32_t max_attempts = 0; /* 0: retry until the source takes the batch */
    } write_behind;
};

namespace detail {

inline Source &source_of(void *ctx) noexcept { return *static_cast<Source *>(ctx); }

inline int source_load(void *ctx, const std::uint8_t *key, std::size_t key_len,
                       slabcache_sink_t *sink) noexcept {
    return callback([&] { return sink_answer(sink, source_of(ctx).load(text(key, key_len))); });
}

inline int source_store(void *ctx, const std::uint8_t *key, std::size_t key_len,
                        const std::uint8_t *value, std::size_t value_len) noexcept {
    return callback([&] {
        source_of(ctx).store(text(key, key_len), text(value, value_len));
        return SLABCACHE_OK;
    });
}

inline int source_remove(void *ctx, const std::uint8_t *key, std::size_t key_len) noexcept {
    return callback([&] {
        source_of(ctx).remove(text(key, key_len));
        return SLABCACHE_OK;
    });
}

inline int source_store_batch(void *ctx, const std::uint8_t *const *keys,
                              const std::size_t *key_lens, const std::uint8_t *const *values,
                              const std::size_t *value_lens, std::size_t count) noexcept {
    return callback([&] {
        std::vector<std::pair<std::string_view, std::string_view>> entries;
        entries.reserve(count);
        for (std::size_t i = 0; i < count; i++) {
            entries.emplace_back(text(keys[i], key_lens[i]), text(values[i], value_lens[i]));
        }
        source_of(ctx).store_batch(entries);
        return SLABCACHE_OK;
    });
}

inline int source_remove_batch(void *ctx, const std::uint8_t *const *keys,
                               const std::size_t *key_lens, std::size_t count) noexcept {
    return callback([&] {
        source_of(ctx).remove_batch(views(keys, key_lens, count));
        return SLABCACHE_OK;
    });
}

}  // namespace detail

/**
 * A cache in front of a Source: reads go through the cache to the source, writes go
 * through, around or behind the cache (BackedOptions). Owns its slabcache_backed_t and its
 * Source; destroying it flushes the write-behind queue and stops its threads. Movable, not
 * copyable; every operation is const and may be called from any number of threads at once.
 *
 * It keeps the Cache's C cache alive by itself, and the Cache's listener with it, so it may
 * outlive the Cache it was made from; that cache should serve it only (its entries are
 * framed, see slabcache_backed_new).
 */
class Backed {
public:
    /** Throws Error(errc::invalid_argument) for a Source without load, store or remove, or
     * settings the library refuses. */
    Backed(const Cache &cache, Source source, const BackedOptions &options = BackedOptions())
        : source_(std::make_unique<Source>(std::move(source))), listener_(cache.listener_) {
        if (!source_->load || !source_->store || !source_->remove) {
            throw Error(SLABCACHE_INVALID_ARGUMENT);
        }
        slabcache_source_t raw_source{};
        raw_source.size = sizeof raw_source;
        raw_source.ctx = source_.get();
        raw_source.load = &detail::source_load;
        raw_source.store = &detail::source_store;
        raw_source.remove = &detail::source_remove;
        raw_source.store_batch = source_->store_batch ? &detail::source_store_batch : nullptr;
        raw_source.remove_batch = source_->remove_batch ? &detail::source_remove_batch : nullptr;

        slabcache_backed_options_t raw;
        slabcache_backed_options_init(&raw);
        raw.write_mode = static_cast<std::uint32_t>(options.write_mode);
        raw.ttl_ms = options.ttl.milliseconds();
        raw.stale_while_revalidate_ms = detail::setting_ms(options.stale_while_revalidate);
        raw.refresh_ahead = options.refresh_ahead;
        raw.early_expiry_beta = options.early_expiry_beta;
        raw.negative_ttl_ms = detail::setting_ms(options.negative_ttl);
        raw.refresh_threads = options.refresh_threads;
        raw.refresh_queue = options.refresh_queue;
        raw.random_seed = options.random_seed;
        const BackedOptions::WriteBehind &behind = options.write_behind;
        raw.behind_batch_size = behind.batch_size;
        raw.behind_max_delay_ms = detail::setting_ms(behind.max_delay);
        raw.behind_queue_capacity = behind.queue_capacity;
        raw.behind_when_full = static_cast<std::uint32_t>(behind.when_full);
        raw.behind_initial_backoff_ms = detail::setting_ms(behind.initial_backoff);
        raw.behind_max_backoff_ms = detail::setting_ms(behind.max_backoff);
        raw.behind_max_attempts = behind.max_attempts;
        detail::check(slabcache_backed_new(cache.handle(), &raw_source, &raw, &backed_));
    }

    Backed(const Backed &) = delete;
    Backed &operator=(const Backed &) = delete;
    Backed(Backed &&other) noexcept
        : source_(std::move(other.source_)),
          listener_(std::move(other.listener_)),
          backed_(std::exchange(other.backed_, nullptr)) {}
    Backed &operator=(Backed &&other) noexcept {
        if (this != &other) {
            /* Freed first: its threads use the Source (and the listener) until then. */
            slabcache_backed_free(backed_);
            backed_ = std::exchange(other.backed_, nullptr);
            source_ = std::move(other.source_);
            listener_ = std::move(other.listener_);
        }
        return *this;
    }
    ~Backed() { slabcache_backed_free(backed_); }

    /**
     * The value of `key`: from the cache, else loaded from the source (one load however many
     * threads miss it at once); std::nullopt when the source has none. A failed load
     * rethrows what the source's load threw on this thread, or throws CallbackError.
     */
    std::optional<std::string> get(std::string_view key) const {
        std::string value;
        value.resize(value.capacity());
        for (;;) {
            std::size_t length = 0;
            int load_error = 0;
            const int status = detail::with_callbacks([&] {
                return slabcache_backed_get(backed_, detail::bytes(key), key.size(),
                                            reinterpret_cast<std::uint8_t *>(value.data()),
                                            value.size(), &length, &load_error);
            });
            switch (status) {
                case SLABCACHE_OK:
                    value.resize(length);
                    return value;
                case SLABCACHE_NOT_FOUND:
                    return std::nullopt;
                case SLABCACHE_BUFFER_TOO_SMALL:
                    value.resize(length);
                    break;
                default:
                    detail::throw_status(status, load_error);
            }
        }
    }

    /**
     * Writes `value` as the value of `key`, as the write mode says. A failed source write
     * (write-through and write-around) rethrows what the source threw; a full write-behind
     * queue with WhenFull::error throws Error(errc::queue_full).
     */
    void put(std::string_view key, std::string_view value) const { put_tagged(key, value, {}); }

    /** put(), tagging the cached entry with each of `tags` (see invalidate_tag()). */
    void put_tagged(std::string_view key, std::string_view value,
                    const std::vector<std::string_view> &tags) const {
        const detail::ByteArrays raw(tags);
        int source_error = 0;
        const int status = detail::with_callbacks([&] {
            return slabcache_backed_put_tagged(backed_, detail::bytes(key), key.size(),
                                               detail::bytes(value), value.size(),
                                               raw.pointers.data(), raw.lengths.data(),
                                               tags.size(), &source_error);
        });
        detail::check_callbacks(status, source_error);
    }

    /** Deletes `key` from the source and the cache, as the write mode says. */
    void erase(std::string_view key) const {
        int source_error = 0;
        const int status = detail::with_callbacks([&] {
            return slabcache_backed_delete(backed_, detail::bytes(key), key.size(),
                                           &source_error);
        });
        detail::check_callbacks(status, source_error);
    }

    /** Blocks until every write-behind write made before the call has reached the source. */
    void flush() const { detail::check(slabcache_backed_flush(backed_)); }

    /** Drops every cached entry tagged with `tag` (the source keeps them); how many. */
    std::uint64_t invalidate_tag(std::string_view tag) const {
        std::uint64_t removed = 0;
        detail::check(
            slabcache_backed_invalidate_tag(backed_, detail::bytes(tag), tag.size(), &removed));
        return removed;
    }

    /** A snapshot of the Backed's counters (the cache's are Cache::stats()). */
    slabcache_backed_stats_t stats() const {
        slabcache_backed_stats_t stats{};
        stats.size = sizeof stats;
        detail::check(slabcache_backed_stats(backed_, &stats));
        return stats;
    }

    /** The C handle, for the C API; owned by this Backed; NULL once moved from. */
    const slabcache_backed_t *handle() const noexcept { return backed_; }

private:
    /** The callbacks' context: on the heap, so that it stays put when the Backed moves. */
    std::unique_ptr<Source> source_;
    /** The cache's listener, which this Backed's calls reach while it keeps the cache. */
    std::shared_ptr<detail::ListenerState> listener_;
    slabcache_backed_t *backed_ = nullptr;
};

}  // namespace slabcache

#endif /* SLABCACHE_HPP */
