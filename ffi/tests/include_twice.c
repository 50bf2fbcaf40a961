/*
 * slabcache.h included twice in one translation unit, then used: its include guard must
 * make the second inclusion a no-op. Compiled (not run) by scripts/ffi-test.sh.
 */

#include "slabcache.h"
#include "slabcache.h"

int main(void) {
    slabcache_options_t opts;
    slabcache_options_init(&opts);
    return opts.size == sizeof opts ? SLABCACHE_OK : SLABCACHE_INVALID_ARGUMENT;
}
