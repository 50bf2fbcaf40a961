//! Tags: entries written with [`Cache::insert_tagged`] can be ended together by
//! [`Cache::invalidate_tag`], e.g. every cached page that shows product 42.
//!
//! Invalidation is **eager**: `invalidate_tag` removes the tagged entries before it returns,
//! so `len()` and the stats count them out at once, and no read that starts afterwards returns
//! an entry that carried the tag. An entry re-written without the tag since it was tagged no
//! longer carries it, and stays.
//!
//! The registry maps each tag to its members (key and the version the tagged write gave it)
//! and to an *epoch* that every invalidation advances. A tagged write:
//! 1. notes each tag's epoch and counts itself in flight on the tag;
//! 2. writes the entry;
//! 3. registers itself as a member of each tag whose epoch has not moved; if any has moved,
//!    an invalidation began after step 1 and the write lost the race: it removes its own entry
//!    (if still at its version);
//! 4. counts itself out.
//!
//! An invalidation advances the epoch, takes the members, and waits until no tagged write of
//! the tag is in flight before it removes them: every write that saw the old epoch has by then
//! either registered (and is removed here) or removed itself. Writes that start after the
//! epoch moved are unaffected. Removal is by version, so a key written again since it was
//! tagged keeps its newer value.
//!
//! A member whose entry was evicted, expired or overwritten stays in the registry until the
//! tag is invalidated or the members are pruned: a tag's members are pruned (those whose key
//! no longer has the tagged version dropped) whenever they have doubled since the last prune,
//! so the registry stays within a constant factor of the live tagged entries. The listener
//! hears of entries a tag ended with the cause `TagInvalidated`, and of what a tagged write
//! replaced or evicted only once the write is done (step 4). No engine lock
//! is held while the registry's locks are taken, and the registry's locks are never held
//! while waiting for anything but a tagged write to finish.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::cache::Cache;
use crate::error::Error;
use crate::events;
use crate::version::Version;

const SHARDS: usize = 16;
/// Members a tag may gather before its first prune.
const FIRST_PRUNE: usize = 1024;

#[derive(Default)]
struct Tag {
    epoch: u64,
    members: HashMap<Vec<u8>, Version>,
    /// Tagged writes between steps 1 and 4 that saw the current epoch.
    writing: usize,
    /// Those that saw an earlier epoch: the invalidations that moved it wait for them.
    writing_before: usize,
    prune_at: usize,
}

#[derive(Default)]
struct Shard {
    tags: Mutex<HashMap<Vec<u8>, Tag>>,
    /// Told when a tag's last tagged write in flight finishes.
    written: Condvar,
}

/// The tag registry of one cache.
pub(crate) struct Tags {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Tags {
    pub(crate) fn new() -> Self {
        Tags {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, tag: &[u8]) -> &Shard {
        &self.shards[self.hasher.hash_one(tag) as usize % SHARDS]
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Tag>> {
        // No user code runs under this lock; every change under it is whole.
        self.tags.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cache {
    /// [`insert_with_ttl`](Cache::insert_with_ttl) that also tags the entry with each of
    /// `tags`, so that [`invalidate_tag`](Cache::invalidate_tag) of any of them removes it.
    /// A write racing an invalidation of one of its tags either lands before it (and is
    /// removed by it) or loses (the entry it wrote is removed before the invalidation
    /// returns); tags are any byte strings.
    pub fn insert_tagged(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        tags: &[&[u8]],
    ) -> Result<Version, Error> {
        self.tagged(key, tags, || self.insert_with_ttl(key, value, ttl))
    }

    /// Runs `write` (a write of `key`) as a tagged write: steps 1 to 4 of the module doc.
    pub(crate) fn tagged(
        &self,
        key: &[u8],
        tags: &[&[u8]],
        write: impl FnOnce() -> Result<Version, Error>,
    ) -> Result<Version, Error> {
        // The listener hears of what the write replaced or evicted once the write is done
        // (step 4): called in between, it could invalidate one of these tags and wait for
        // this very write.
        let written = events::held(|| self.tagged_steps(key, tags, write));
        self.deliver_events();
        written
    }

    fn tagged_steps(
        &self,
        key: &[u8],
        tags: &[&[u8]],
        write: impl FnOnce() -> Result<Version, Error>,
    ) -> Result<Version, Error> {
        let mut tags = tags.to_vec();
        tags.sort_unstable();
        tags.dedup();
        let registry = self.tags();
        let epochs: Vec<u64> = tags
            .iter()
            .map(|&name| {
                let mut shard = registry.shard(name).lock();
                let tag = shard.entry(name.to_vec()).or_default();
                tag.writing += 1;
                tag.epoch
            })
            .collect();
        let written = write();
        let mut lost = false;
        if let Ok(version) = written {
            for (&name, &epoch) in tags.iter().zip(&epochs) {
                let mut shard = registry.shard(name).lock();
                let tag = shard
                    .get_mut(name)
                    .expect("a tag with a write in flight stays");
                if tag.epoch == epoch {
                    // Two tagged writes of a key can register in either order; the newer
                    // version is the entry's (a key's versions rise in publication order).
                    let member = tag.members.entry(key.to_vec()).or_insert(version);
                    *member = (*member).max(version);
                    if tag.members.len() >= tag.prune_at.max(FIRST_PRUNE) {
                        self.prune(tag);
                    }
                } else {
                    lost = true;
                }
            }
            if lost {
                let _ = self.remove_tagged_out(key, version);
            }
        }
        for (&name, &epoch) in tags.iter().zip(&epochs) {
            let shard = registry.shard(name);
            let mut locked = shard.lock();
            let tag = locked
                .get_mut(name)
                .expect("a tag with a write in flight stays");
            if tag.epoch == epoch {
                tag.writing -= 1;
            } else {
                tag.writing_before -= 1;
                if tag.writing_before == 0 {
                    shard.written.notify_all();
                }
            }
            if tag.writing + tag.writing_before == 0 && tag.members.is_empty() {
                locked.remove(name);
            }
        }
        written
    }

    /// Removes every entry tagged with `tag` (see [`insert_tagged`](Cache::insert_tagged)),
    /// and returns how many it removed. Eager: they are gone, and counted out of `len()` and
    /// the stats, before this returns; entries tagged afterwards are unaffected.
    pub fn invalidate_tag(&self, tag: &[u8]) -> u64 {
        let shard = self.tags().shard(tag);
        let mut locked = shard.lock();
        let Some(state) = locked.get_mut(tag) else {
            return 0;
        };
        state.epoch += 1;
        state.writing_before += std::mem::take(&mut state.writing);
        let members = std::mem::take(&mut state.members);
        state.prune_at = 0;
        // Writes that saw an earlier epoch finish registering or removing themselves.
        while locked.get(tag).is_some_and(|t| t.writing_before > 0) {
            locked = shard
                .written
                .wait(locked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if locked
            .get(tag)
            .is_some_and(|t| t.writing == 0 && t.members.is_empty())
        {
            locked.remove(tag);
        }
        drop(locked);
        let removed = members
            .into_iter()
            .filter(|(key, version)| self.remove_tagged_out(key, *version).is_ok())
            .count() as u64;
        self.deliver_events();
        removed
    }

    /// Drops the members whose key no longer has the tagged version, and sets the next prune
    /// for when the survivors have doubled.
    fn prune(&self, tag: &mut Tag) {
        tag.members
            .retain(|key, version| self.version_of(key) == Some(*version));
        tag.prune_at = (tag.members.len() * 2).max(FIRST_PRUNE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(cache: &Cache, tag: &[u8]) -> usize {
        cache
            .tags()
            .shard(tag)
            .lock()
            .get(tag)
            .map_or(0, |t| t.members.len())
    }

    #[test]
    fn members_whose_entries_are_gone_are_pruned_as_the_tag_grows() {
        let cache = Cache::builder().max_bytes(8 << 20).build().unwrap();
        let n = if cfg!(miri) {
            FIRST_PRUNE + 4
        } else {
            3 * FIRST_PRUNE
        };
        for i in 0..n {
            let key = i.to_string();
            cache
                .insert_tagged(key.as_bytes(), b"v", None, &[b"t"])
                .unwrap();
            // Untagged again at once: the member is stale from here on.
            cache.insert(key.as_bytes(), b"v").unwrap();
        }
        assert!(
            members(&cache, b"t") < FIRST_PRUNE,
            "stale members were pruned: {}",
            members(&cache, b"t")
        );
        assert_eq!(
            cache.invalidate_tag(b"t"),
            0,
            "no entry carries the tag any more"
        );
        assert_eq!(cache.len(), n);
    }

    #[test]
    fn a_tag_without_members_or_writes_leaves_the_registry() {
        let cache = Cache::builder().max_bytes(8 << 20).build().unwrap();
        cache.insert_tagged(b"k", b"v", None, &[b"t"]).unwrap();
        assert_eq!(cache.invalidate_tag(b"t"), 1);
        assert!(cache.tags().shard(b"t").lock().get(&b"t"[..]).is_none());
        assert!(cache.insert_tagged(b"", b"v", None, &[b"u"]).is_err());
        assert!(cache.tags().shard(b"u").lock().get(&b"u"[..]).is_none());
    }
}
