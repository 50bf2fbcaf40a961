//! An exact LRU cache of keys, the baseline every trace is also replayed through.
//!
//! A hash map from key to a node, and the nodes kept in one `Vec` and linked into a
//! doubly-linked list by index, most recently used at the head. Every access is O(1): a hit
//! moves its node to the head, a miss with the cache full reuses the tail's node.

use std::collections::HashMap;

/// The index that links to no node.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    /// Towards the head (more recently used).
    prev: u32,
    /// Towards the tail (less recently used).
    next: u32,
}

/// An LRU cache of at most `capacity` keys.
#[derive(Debug)]
pub struct Lru {
    capacity: usize,
    index: HashMap<u64, u32>,
    nodes: Vec<Node>,
    head: u32,
    tail: u32,
}

impl Lru {
    /// An empty cache of `capacity` keys, at least 1 and below `u32::MAX`.
    pub fn new(capacity: usize) -> Lru {
        assert!(
            capacity >= 1 && capacity < NIL as usize,
            "LRU capacity {capacity} is out of range"
        );
        Lru {
            capacity,
            index: HashMap::with_capacity(capacity),
            nodes: Vec::with_capacity(capacity),
            head: NIL,
            tail: NIL,
        }
    }

    /// Requests `key`: true on a hit. On a miss the key is inserted, evicting the least
    /// recently used key if the cache is full.
    pub fn access(&mut self, key: u64) -> bool {
        if let Some(&node) = self.index.get(&key) {
            self.unlink(node);
            self.push_front(node);
            return true;
        }
        let node = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key,
                prev: NIL,
                next: NIL,
            });
            (self.nodes.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.index.remove(&self.nodes[victim as usize].key);
            self.nodes[victim as usize].key = key;
            victim
        };
        self.index.insert(key, node);
        self.push_front(node);
        false
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn unlink(&mut self, node: u32) {
        let Node { prev, next, .. } = self.nodes[node as usize];
        match prev {
            NIL => self.head = next,
            _ => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            _ => self.nodes[next as usize].prev = prev,
        }
    }

    fn push_front(&mut self, node: u32) {
        let old_head = self.head;
        self.nodes[node as usize].prev = NIL;
        self.nodes[node as usize].next = old_head;
        match old_head {
            NIL => self.tail = node,
            _ => self.nodes[old_head as usize].prev = node,
        }
        self.head = node;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(capacity: usize, keys: &[u64]) -> Vec<bool> {
        let mut lru = Lru::new(capacity);
        keys.iter().map(|&k| lru.access(k)).collect()
    }

    #[test]
    fn evicts_the_least_recently_used() {
        // 1 2 3 fill; 1 hits (order 1 3 2); 4 evicts 2; 2 evicts 3; 3 evicts 1 (order 3 2 4);
        // 2 hits; 1 misses.
        let (t, f) = (true, false);
        assert_eq!(
            hits(3, &[1, 2, 3, 1, 4, 2, 3, 2, 1]),
            [f, f, f, t, f, f, f, t, f]
        );
    }

    #[test]
    fn capacity_one_keeps_only_the_last_key() {
        let (t, f) = (true, false);
        assert_eq!(hits(1, &[5, 5, 6, 5, 5]), [f, t, f, f, t]);
    }

    #[test]
    fn a_loop_larger_than_the_cache_never_hits() {
        let keys: Vec<u64> = (0..10).cycle().take(100).collect();
        assert!(hits(9, &keys).iter().all(|&hit| !hit));
        assert_eq!(hits(10, &keys).iter().filter(|&&hit| hit).count(), 90);
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut lru = Lru::new(4);
        assert!(lru.is_empty());
        for key in 0..100u64 {
            lru.access(key % 7);
            lru.access(key % 3);
            assert!(lru.len() <= 4);
        }
        assert_eq!(lru.len(), 4);
    }
}
