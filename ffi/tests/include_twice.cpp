/*
 * slabcache.hpp and slabcache.h, each included twice in one C++ translation unit, then
 * used: their include guards must make the second inclusions no-ops. Compiled (not run) by
 * scripts/ffi-test.sh.
 */

#include "slabcache.hpp"
#include "slabcache.h"
#include "slabcache.hpp"
#include "slabcache.h"

int main() {
    const slabcache::Ttl ttl = slabcache::Ttl::never();
    return ttl.milliseconds() == SLABCACHE_TTL_NONE ? SLABCACHE_OK : SLABCACHE_PANIC;
}
