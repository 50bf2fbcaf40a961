//! The threads and their logs: what each thread does, and the events it logs in its own order.

use std::time::Instant;

use slabcache::{Error, Version};

use crate::common::{mix64, Rng};
use crate::keys_and_values::{
    counter_len, decode, encode, epoch_of, home_len, Caches, Content, Stamp,
};
use crate::{
    CLEAR_ONE_IN, DATA_KEYS, EVICTABLE_COUNTERS, FIRST_PINNED, ITER_ONE_IN, MAX_LEN,
    MAX_OPS_PER_ROUND, MAX_TTL_TICKS, MIN_LEN, OPS_PER_CLOCK_CHECK, PINNED_COUNTERS, TICK,
    TICK_ONE_IN,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOp {
    Get,
    GetInto,
    GetVersioned,
    Iter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOp {
    Insert,
    InsertIfAbsent,
    Replace,
    CompareAndSwap,
    /// `insert_if_absent` of a counter at count 0.
    NewCounter,
    /// `compare_and_swap` of a counter to its count + 1.
    Increment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoveOp {
    Remove,
    RemoveIfVersion,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Succeeded: with the new version for a write, the removed one for `remove_if_version`.
    Done(Option<u64>),
    Mismatch {
        current: u64,
    },
    NotFound,
    Exists,
    /// Any other error, which no operation here should return.
    Failed(Box<str>),
}

impl Outcome {
    fn of_write(result: Result<Version, Error>) -> Outcome {
        match result {
            Ok(version) => Outcome::Done(Some(version.get())),
            Err(e) => Outcome::of_error(e),
        }
    }

    fn of_error(e: Error) -> Outcome {
        match e {
            Error::VersionMismatch { current } => Outcome::Mismatch {
                current: current.get(),
            },
            Error::NotFound => Outcome::NotFound,
            Error::Exists => Outcome::Exists,
            other => Outcome::Failed(format!("{other:?}").into()),
        }
    }
}

/// One thing a thread did, in its own order.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Read {
        key: u8,
        op: ReadOp,
        content: Content,
        version: Option<u64>,
    },
    /// The start of an `iter` call; its entries follow as `Read`s.
    IterBegin,
    /// A read that returned something no write wrote whole.
    Garbled {
        op: ReadOp,
        what: Box<str>,
    },
    Miss {
        key: u8,
        op: ReadOp,
    },
    Write {
        key: u8,
        op: WriteOp,
        content: Content,
        outcome: Outcome,
    },
    Remove {
        key: u8,
        op: RemoveOp,
        outcome: Outcome,
    },
    Clear,
}

/// What a write puts in its value besides its stamp: a data value's length, or a counter.
enum Body {
    Data { len: usize },
    NewCounter,
    Increment { epoch: u64, count: u64 },
}

/// One thread's state, kept across rounds: its random stream and its next sequence number.
pub(crate) struct Worker {
    pub(crate) id: u8,
    rng: Rng,
    next_seq: u64,
    pub(crate) events: Vec<Event>,
    buf: Vec<u8>,
}

impl Worker {
    pub(crate) fn new(id: u8, seed: u64) -> Worker {
        Worker {
            id,
            rng: Rng::new(mix64(seed ^ u64::from(id))),
            next_seq: 0,
            events: Vec::new(),
            buf: Vec::new(),
        }
    }

    pub(crate) fn run_round(&mut self, caches: &Caches, until: Instant) {
        self.events.clear();
        for op in 0..MAX_OPS_PER_ROUND {
            if op % OPS_PER_CLOCK_CHECK == 0 && Instant::now() >= until {
                break;
            }
            self.step(caches);
        }
    }

    fn step(&mut self, caches: &Caches) {
        if let Some(clock) = &caches.clock {
            if self.rng.one_in(TICK_ONE_IN) {
                clock.advance(TICK);
            }
        }
        if self.id == 0 && self.rng.one_in(CLEAR_ONE_IN) {
            caches.main.clear();
            self.events.push(Event::Clear);
            return;
        }
        if self.rng.one_in(ITER_ONE_IN) {
            self.events.push(Event::IterBegin);
            for (k, value, version) in caches.main.iter() {
                match caches.number(&k) {
                    Some(key) => self.observe(key, ReadOp::Iter, &value, Some(version)),
                    None => self.events.push(Event::Garbled {
                        op: ReadOp::Iter,
                        what: format!("iter yielded an unknown key {k:02x?}").into(),
                    }),
                }
            }
            return;
        }
        let roll = self.rng.below(1000);
        if roll < 150 {
            let key = if roll < 90 {
                DATA_KEYS + self.rng.below(EVICTABLE_COUNTERS as u64) as usize
            } else {
                FIRST_PINNED + self.rng.below(PINNED_COUNTERS as u64) as usize
            };
            self.increment(caches, key);
            return;
        }
        let key = self.rng.below(DATA_KEYS as u64) as usize;
        let (cache, k) = (caches.of(key), caches.key(key));
        match roll {
            150..=279 => {
                let found = cache.get(k);
                self.log_read(key, ReadOp::Get, found.as_deref(), None);
            }
            280..=329 => {
                let mut buf = std::mem::take(&mut self.buf);
                let version = cache.get_into(k, &mut buf);
                self.log_read(key, ReadOp::GetInto, version.map(|_| &buf[..]), version);
                self.buf = buf;
            }
            330..=449 => {
                self.get_versioned(caches, key);
            }
            450..=599 => self.write(caches, key, WriteOp::Insert, None),
            600..=669 => self.write(caches, key, WriteOp::InsertIfAbsent, None),
            670..=739 => self.write(caches, key, WriteOp::Replace, None),
            740..=839 => {
                if let Some((_, version)) = self.get_versioned(caches, key) {
                    self.write(caches, key, WriteOp::CompareAndSwap, Some(version));
                }
            }
            840..=899 => {
                let outcome = if cache.remove(k) {
                    Outcome::Done(None)
                } else {
                    Outcome::NotFound
                };
                self.events.push(Event::Remove {
                    key: key as u8,
                    op: RemoveOp::Remove,
                    outcome,
                });
            }
            _ => {
                if let Some((_, version)) = self.get_versioned(caches, key) {
                    let outcome = match cache.remove_if_version(k, version) {
                        Ok(()) => Outcome::Done(Some(version.get())),
                        Err(e) => Outcome::of_error(e),
                    };
                    self.events.push(Event::Remove {
                        key: key as u8,
                        op: RemoveOp::RemoveIfVersion,
                        outcome,
                    });
                }
            }
        }
    }

    /// Reads a counter and raises it by one, creating it (at 0) if it is absent.
    fn increment(&mut self, caches: &Caches, key: usize) {
        match self.get_versioned(caches, key) {
            None => self.write_body(caches, key, WriteOp::NewCounter, Body::NewCounter, None),
            Some((value, version)) => {
                // A value that does not decode is logged already; there is nothing to raise.
                if let Ok(seen) = decode(key, &value) {
                    let body = Body::Increment {
                        epoch: seen.epoch,
                        count: seen.count + 1,
                    };
                    self.write_body(caches, key, WriteOp::Increment, body, Some(version));
                }
            }
        }
    }

    fn get_versioned(&mut self, caches: &Caches, key: usize) -> Option<(Vec<u8>, Version)> {
        let found = caches.of(key).get_versioned(caches.key(key));
        match &found {
            Some((value, version)) => {
                self.observe(key, ReadOp::GetVersioned, value, Some(*version));
            }
            None => self.events.push(Event::Miss {
                key: key as u8,
                op: ReadOp::GetVersioned,
            }),
        }
        found
    }

    fn log_read(&mut self, key: usize, op: ReadOp, value: Option<&[u8]>, version: Option<Version>) {
        match value {
            Some(value) => self.observe(key, op, value, version),
            None => self.events.push(Event::Miss { key: key as u8, op }),
        }
    }

    fn observe(&mut self, key: usize, op: ReadOp, value: &[u8], version: Option<Version>) {
        let event = match decode(key, value) {
            Ok(content) => Event::Read {
                key: key as u8,
                op,
                content,
                version: version.map(Version::get),
            },
            Err(what) => Event::Garbled {
                op,
                what: format!("key {key}, version {:?}: {what}", version.map(Version::get)).into(),
            },
        };
        self.events.push(event);
    }

    /// A data write of a random length: near the key's own length six times in ten (an update
    /// that stays in its class), any length otherwise.
    fn write(&mut self, caches: &Caches, key: usize, op: WriteOp, expected: Option<Version>) {
        let home = home_len(key);
        let len = if self.rng.below(10) < 6 {
            home + self.rng.below(home as u64 / 16 + 1) as usize
        } else {
            self.rng.log_uniform(MIN_LEN, MAX_LEN)
        };
        self.write_body(caches, key, op, Body::Data { len }, expected);
    }

    fn write_body(
        &mut self,
        caches: &Caches,
        key: usize,
        op: WriteOp,
        body: Body,
        expected: Option<Version>,
    ) {
        let stamp = Stamp {
            writer: self.id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let (len, epoch, count) = match body {
            Body::Data { len } => (len, 0, 0),
            Body::NewCounter => (counter_len(0), epoch_of(stamp), 0),
            Body::Increment { epoch, count } => (counter_len(count), epoch, count),
        };
        let content = Content {
            stamp,
            len: len as u32,
            epoch,
            count,
        };
        let value = encode(key, content);
        let (cache, k) = (caches.of(key), caches.key(key));
        let expires = caches.clock.is_some() && key < FIRST_PINNED && self.rng.one_in(2);
        let ttl = expires.then(|| TICK * (1 + self.rng.below(MAX_TTL_TICKS)) as u32);
        let result = match (op, expected) {
            (WriteOp::Insert, _) => cache.insert_with_ttl(k, &value, ttl),
            (WriteOp::InsertIfAbsent | WriteOp::NewCounter, _) => {
                cache.insert_if_absent_with_ttl(k, &value, ttl)
            }
            (WriteOp::Replace, _) => cache.replace_with_ttl(k, &value, ttl),
            (WriteOp::CompareAndSwap | WriteOp::Increment, Some(expected)) => {
                cache.compare_and_swap_with_ttl(k, expected, &value, ttl)
            }
            (WriteOp::CompareAndSwap | WriteOp::Increment, None) => {
                unreachable!("a compare-and-swap always has the version it read")
            }
        };
        self.events.push(Event::Write {
            key: key as u8,
            op,
            content,
            outcome: Outcome::of_write(result),
        });
    }
}
