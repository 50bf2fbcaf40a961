//! Belady's optimal policy (OPT): the ceiling every other policy is measured against.
//!
//! With the whole trace known in advance, the best a cache of unit-size entries can do is, on
//! every miss with the cache full, to evict the resident key whose next request lies farthest
//! in the future. [`next_uses`] precomputes, for every request, the position of the next
//! request for the same key; [`Opt`] keeps the resident keys as the set of their next-use
//! positions, so the farthest is the set's last element.
//!
//! A key requested at position `i` is resident exactly when `i` is in the set (it was put
//! there, as the next use of the key's previous request), so the set alone answers hits: no
//! map from keys is needed.
//!
//! Like libCacheSim's Belady (whose figures the traces README lists, and which this one
//! reproduces), every missed key is inserted: the optimum among caches that admit every key.
//! A cache with an admission filter may decline a key needed later than everything resident,
//! and so could, in principle, edge past this figure.

use std::collections::{BTreeSet, HashMap};

/// For every request of `trace`, the position of the next request for the same key. A key
/// that is never requested again gets `trace.len() + i` (`i` its own position): later than
/// every real request and distinct from every other entry, so such keys are evicted first.
pub fn next_uses(trace: &[u64]) -> Vec<usize> {
    let mut next = vec![0; trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &key) in trace.iter().enumerate().rev() {
        next[i] = seen.insert(key, i).unwrap_or(trace.len() + i);
    }
    next
}

/// Belady's optimal cache of at most `capacity` keys, replaying the trace [`next_uses`] was
/// computed from, in order.
#[derive(Debug)]
pub struct Opt<'a> {
    capacity: usize,
    next: &'a [usize],
    /// Position of the next request; [`Opt::access`] must be given the keys in trace order.
    position: usize,
    /// The next-use positions of the resident keys.
    resident: BTreeSet<usize>,
}

impl<'a> Opt<'a> {
    /// An empty cache of `capacity` keys (at least 1) for the trace whose next uses are
    /// `next`.
    pub fn new(capacity: usize, next: &'a [usize]) -> Opt<'a> {
        assert!(capacity >= 1, "OPT capacity must be at least 1");
        Opt {
            capacity,
            next,
            position: 0,
            resident: BTreeSet::new(),
        }
    }

    /// Serves the next request of the trace: true on a hit. A missed key is inserted, first
    /// evicting the resident key needed farthest in the future if the cache is full.
    pub fn access(&mut self) -> bool {
        let i = self.position;
        self.position += 1;
        let hit = self.resident.remove(&i);
        if !hit && self.resident.len() == self.capacity {
            self.resident.pop_last();
        }
        self.resident.insert(self.next[i]);
        hit
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.resident.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.resident.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn hits(capacity: usize, trace: &[u64]) -> usize {
        let next = next_uses(trace);
        let mut opt = Opt::new(capacity, &next);
        let hits = trace.iter().filter(|_| opt.access()).count();
        assert!(opt.len() <= capacity);
        hits
    }

    /// The most hits any cache that inserts every missed key can get: every choice of victim
    /// tried.
    fn best(capacity: usize, trace: &[u64], resident: &mut Vec<u64>) -> usize {
        let Some((&key, rest)) = trace.split_first() else {
            return 0;
        };
        if resident.contains(&key) {
            return 1 + best(capacity, rest, resident);
        }
        if resident.len() < capacity {
            resident.push(key);
            let hits = best(capacity, rest, resident);
            resident.pop();
            return hits;
        }
        (0..resident.len())
            .map(|victim| {
                let evicted = std::mem::replace(&mut resident[victim], key);
                let hits = best(capacity, rest, resident);
                resident[victim] = evicted;
                hits
            })
            .max()
            .expect("a full cache has a victim")
    }

    #[test]
    fn next_uses_point_at_the_next_request_of_the_key() {
        assert_eq!(next_uses(&[1, 2, 1, 3, 2, 1]), [2, 4, 5, 9, 10, 11]);
    }

    #[test]
    fn evicts_the_key_needed_farthest_ahead() {
        // The textbook reference string: with 3 frames the optimum misses 9 of 20 requests.
        let trace = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(hits(3, &trace), 11);
        // A loop over 5 keys through 4 slots: after the 5 cold misses, the optimum keeps 3
        // of the 4 keys that come back before the evicted one, so misses 1 request in 4.
        let trace: Vec<u64> = (0..5).cycle().take(5 + 40).collect();
        assert_eq!(hits(4, &trace), 30);
        assert_eq!(hits(5, &trace), 40);
        assert_eq!(hits(1, &trace), 0);
    }

    #[test]
    fn matches_an_exhaustive_search() {
        let mut rng = Rng::new(7);
        for round in 0..40 {
            let keys = 3 + round % 4;
            let trace: Vec<u64> = (0..14).map(|_| rng.next_u64() % keys).collect();
            for capacity in 1..=3 {
                assert_eq!(
                    hits(capacity, &trace),
                    best(capacity, &trace, &mut Vec::new()),
                    "{trace:?} at {capacity}"
                );
            }
        }
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let trace: Vec<u64> = (0..200).map(|i| (i * 7919) % 13).collect();
        let next = next_uses(&trace);
        let mut opt = Opt::new(5, &next);
        assert!(opt.is_empty());
        for _ in &trace {
            opt.access();
            assert!(opt.len() <= 5);
        }
    }
}
