//! The checks: each round's logs and the cache at rest, against (a) to (e) of main.rs's doc.

use std::collections::{HashMap, HashSet};

use slabcache::Cache;

use crate::keys_and_values::{decode, is_counter, Caches, Content, Stamp};
use crate::threads::{Event, Outcome, ReadOp, RemoveOp, Worker, WriteOp};
use crate::{FIRST_PINNED, KEYS, PINNED_COUNTERS, PROBLEMS_SHOWN, THREADS};

/// A write as the checker knows it.
#[derive(Clone, Copy, Debug)]
struct Known {
    key: usize,
    op: WriteOp,
    content: Content,
    /// The version it returned; `None` if it was refused.
    version: Option<u64>,
}

/// Where a thread's knowledge of a key came from: an event of a round, or the cache at rest
/// after a round.
#[derive(Clone, Copy, Debug)]
enum Source {
    Event { round: u32, index: u32 },
    AtRest { round: u32 },
}

/// The last version of a key one thread saw, and whether it has seen the key gone since.
#[derive(Clone, Copy, Debug)]
struct Floor {
    version: u64,
    seen_at: Option<Source>,
    /// Set when the thread saw the key absent after `version`: only a newer version may show.
    gone_at: Option<Source>,
}

impl Floor {
    const NONE: Floor = Floor {
        version: 0,
        seen_at: None,
        gone_at: None,
    };

    /// Whether a read of `version` is allowed now.
    fn admits_read(&self, version: u64) -> bool {
        version > self.version || (version == self.version && self.gone_at.is_none())
    }

    fn saw(&mut self, version: u64, at: Source) {
        if version >= self.version {
            *self = Floor {
                version,
                seen_at: Some(at),
                gone_at: None,
            };
        }
    }

    fn saw_gone(&mut self, at: Source) {
        self.gone_at = Some(at);
    }
}

struct Epoch {
    key: usize,
    increments: u64,
}

#[derive(Default, Debug)]
struct Totals {
    rounds: u32,
    ops: u64,
    /// Per read operation (get, get_into, get_versioned, iter): hits, misses.
    reads: [[u64; 2]; 4],
    writes: u64,
    refused: u64,
    mismatches: u64,
    removals: u64,
    clears: u64,
    iters: u64,
    increments: u64,
    epochs_started: u64,
    /// Counter epochs that ended (evicted or cleared) and the increments they held.
    epochs_ended: u64,
    increments_ended: u64,
}

pub(crate) struct Checker {
    seed: u64,
    round: u32,
    /// Per key, the write whose value the cache held at rest after the last round.
    present: Vec<Option<(Stamp, Known)>>,
    /// Per thread, per key.
    floors: Vec<Vec<Floor>>,
    /// The counter epochs alive at rest after the last round.
    epochs: HashMap<u64, Epoch>,
    /// Per key, over the whole run: counter epochs created, successful increments.
    created: Vec<u64>,
    raised: Vec<u64>,
    problems: Vec<String>,
    problem_count: usize,
    totals: Totals,
}

impl Checker {
    pub(crate) fn new(seed: u64) -> Checker {
        Checker {
            seed,
            round: 0,
            present: vec![None; KEYS],
            floors: vec![vec![Floor::NONE; KEYS]; THREADS],
            epochs: HashMap::new(),
            created: vec![0; KEYS],
            raised: vec![0; KEYS],
            problems: Vec::new(),
            problem_count: 0,
            totals: Totals::default(),
        }
    }

    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_SHOWN {
            self.problems.push(format!("round {}: {what}", self.round));
        }
    }

    pub(crate) fn check_round(&mut self, caches: &Caches, workers: &[Worker]) {
        self.round += 1;
        self.totals.rounds += 1;
        // Every write that could have been read this round: this round's, and those whose
        // values the cache held at the start of it.
        let mut known: HashMap<Stamp, Known> = self.present.iter().flatten().copied().collect();
        let mut by_version: HashMap<(usize, u64), Stamp> = HashMap::new();
        let mut last_version = vec![0u64; KEYS];
        for (stamp, write) in self.present.iter().flatten() {
            let version = write.version.expect("a value at rest was written");
            by_version.insert((write.key, version), *stamp);
            last_version[write.key] = version;
        }
        for worker in workers {
            for event in &worker.events {
                let Event::Write {
                    key,
                    op,
                    content,
                    outcome,
                } = event
                else {
                    continue;
                };
                let key = usize::from(*key);
                let version = match outcome {
                    Outcome::Done(version) => *version,
                    _ => None,
                };
                known.insert(
                    content.stamp,
                    Known {
                        key,
                        op: *op,
                        content: *content,
                        version,
                    },
                );
                if let Some(version) = version {
                    if let Some(other) = by_version.insert((key, version), content.stamp) {
                        self.problem(format!(
                            "(c) key {key}: writes {other:?} and {:?} both returned version \
                             {version}",
                            content.stamp
                        ));
                    }
                    last_version[key] = last_version[key].max(version);
                }
            }
        }
        for worker in workers {
            self.check_history(worker, &known, &by_version);
        }
        self.check_counters(workers);
        self.check_at_rest(caches, &known, &last_version);
    }

    /// Checks one thread's events in its order: (a), (b), (c), and that each operation
    /// answered something it may answer.
    fn check_history(
        &mut self,
        worker: &Worker,
        known: &HashMap<Stamp, Known>,
        by_version: &HashMap<(usize, u64), Stamp>,
    ) {
        let t = usize::from(worker.id);
        let events = &worker.events;
        self.totals.ops += events.len() as u64;
        // Within one `iter` call, the order entries come out in is not the order they were
        // read in (a chain's entries are read together, then handed out last first), so each
        // is checked against what the thread knew when the call began, and the thread's floor
        // rises to the newest of them.
        let mut before_iter = Vec::new();
        let mut yielded = [false; KEYS];
        for (index, event) in events.iter().enumerate() {
            let at = Source::Event {
                round: self.round,
                index: index as u32,
            };
            let here = || format!("thread {t}, event {index} {event:?}");
            match event {
                Event::Read {
                    key,
                    op,
                    content,
                    version,
                } => {
                    let key = usize::from(*key);
                    self.totals.reads[*op as usize][0] += 1;
                    let Some(write) = known.get(&content.stamp) else {
                        self.problem(format!(
                            "(a) {}: read the value of write {:?}, which no thread attempted \
                             this round and the cache did not hold at the start of it",
                            here(),
                            content.stamp
                        ));
                        continue;
                    };
                    if write.key != key || write.content != *content {
                        self.problem(format!(
                            "(a) {}: read a value that differs from what write {:?} wrote \
                             ({write:?})",
                            here(),
                            content.stamp
                        ));
                        continue;
                    }
                    let Some(written) = write.version else {
                        self.problem(format!(
                            "(a) {}: read the value of write {:?}, which was refused ({:?})",
                            here(),
                            content.stamp,
                            write.op
                        ));
                        continue;
                    };
                    if let Some(read) = *version {
                        if read != written {
                            self.problem(format!(
                                "(c) {}: version {read} came with the value of write {:?}, \
                                 which returned version {written}; version {read} belongs to \
                                 {:?}",
                                here(),
                                content.stamp,
                                by_version.get(&(key, read))
                            ));
                        }
                    }
                    let version = version.unwrap_or(written);
                    if *op == ReadOp::Iter {
                        if std::mem::replace(&mut yielded[key], true) {
                            self.problem(format!(
                                "{}: one iteration yielded the key twice",
                                here()
                            ));
                        }
                        self.check_read(before_iter[key], version, &here, events);
                    } else {
                        self.check_read(self.floors[t][key], version, &here, events);
                    }
                    self.floors[t][key].saw(version, at);
                }
                Event::IterBegin => {
                    self.totals.iters += 1;
                    before_iter.clone_from(&self.floors[t]);
                    yielded = [false; KEYS];
                }
                Event::Garbled { op, what } => {
                    self.problem(format!(
                        "(a) thread {t}, event {index}: {op:?} returned {what}"
                    ));
                }
                Event::Miss { key, op } => {
                    self.totals.reads[*op as usize][1] += 1;
                    self.gone(t, usize::from(*key), at, &here, events);
                }
                Event::Write {
                    key, op, outcome, ..
                } => {
                    let key = usize::from(*key);
                    self.totals.writes += 1;
                    match (op, outcome) {
                        (_, Outcome::Done(Some(version))) => {
                            let floor = self.floors[t][key];
                            if *version <= floor.version {
                                self.problem(format!(
                                    "(b) {}: a write returned version {version}, not above \
                                     version {} the thread had seen ({})",
                                    here(),
                                    floor.version,
                                    describe(floor.seen_at, self.round, events)
                                ));
                            }
                            self.floors[t][key].saw(*version, at);
                        }
                        (
                            WriteOp::CompareAndSwap | WriteOp::Increment,
                            Outcome::Mismatch { current },
                        ) => {
                            self.totals.refused += 1;
                            self.totals.mismatches += 1;
                            if !by_version.contains_key(&(key, *current)) {
                                self.problem(format!(
                                    "(c) {}: the mismatch names version {current}, which no \
                                     write of this key returned",
                                    here()
                                ));
                            }
                            self.check_read(self.floors[t][key], *current, &here, events);
                            self.floors[t][key].saw(*current, at);
                        }
                        (
                            WriteOp::Replace | WriteOp::CompareAndSwap | WriteOp::Increment,
                            Outcome::NotFound,
                        ) => {
                            self.totals.refused += 1;
                            self.gone(t, key, at, &here, events);
                        }
                        (WriteOp::InsertIfAbsent | WriteOp::NewCounter, Outcome::Exists) => {
                            self.totals.refused += 1;
                        }
                        _ => self.problem(format!("{}: an answer this write cannot give", here())),
                    }
                }
                Event::Remove { key, op, outcome } => {
                    let key = usize::from(*key);
                    match (op, outcome) {
                        (RemoveOp::Remove, Outcome::Done(None)) => self.totals.removals += 1,
                        (RemoveOp::RemoveIfVersion, Outcome::Done(Some(_))) => {
                            self.totals.removals += 1;
                        }
                        (RemoveOp::RemoveIfVersion, Outcome::Mismatch { current }) => {
                            self.totals.mismatches += 1;
                            self.check_read(self.floors[t][key], *current, &here, events);
                            self.floors[t][key].saw(*current, at);
                            continue;
                        }
                        (_, Outcome::NotFound) => {}
                        _ => {
                            self.problem(format!("{}: an answer this removal cannot give", here()));
                            continue;
                        }
                    }
                    // Removed, or found absent: whatever the thread saw of it is gone.
                    self.floors[t][key].saw_gone(at);
                }
                Event::Clear => {
                    self.totals.clears += 1;
                    // `clear` empties the main cache; the pinned counters live elsewhere.
                    for floor in &mut self.floors[t][..FIRST_PINNED] {
                        floor.saw_gone(at);
                    }
                }
            }
        }
    }

    /// (b): thread `t` saw `key` absent. Nothing removes a pinned counter and its cache never
    /// evicts, so once the thread saw one it must never find it gone: a read that raced an
    /// update and reported a miss instead of retrying shows up here.
    fn gone(
        &mut self,
        t: usize,
        key: usize,
        at: Source,
        here: &dyn Fn() -> String,
        events: &[Event],
    ) {
        let floor = self.floors[t][key];
        if key >= FIRST_PINNED && floor.seen_at.is_some() {
            self.problem(format!(
                "(b) {}: pinned counter {key} was absent after the thread saw version {} ({})",
                here(),
                floor.version,
                describe(floor.seen_at, self.round, events)
            ));
        }
        self.floors[t][key].saw_gone(at);
    }

    /// (b): a read of `version` must not be older than `floor`, what the thread knew of the
    /// key when it read it.
    fn check_read(
        &mut self,
        floor: Floor,
        version: u64,
        here: &dyn Fn() -> String,
        events: &[Event],
    ) {
        if floor.admits_read(version) {
            return;
        }
        let why = match floor.gone_at {
            Some(gone) if version == floor.version => format!(
                "version {version} again after the thread saw it gone ({})",
                describe(Some(gone), self.round, events)
            ),
            _ => format!(
                "version {version} after version {} ({})",
                floor.version,
                describe(floor.seen_at, self.round, events)
            ),
        };
        self.problem(format!("(b) {}: went back in time: {why}", here()));
    }

    /// (d): within each counter epoch, successful increments reach each count exactly once.
    fn check_counters(&mut self, workers: &[Worker]) {
        let mut raised: HashMap<u64, Vec<(u64, Stamp, u64)>> = HashMap::new();
        for worker in workers {
            for event in &worker.events {
                let Event::Write {
                    key,
                    op,
                    content,
                    outcome: Outcome::Done(Some(version)),
                } = event
                else {
                    continue;
                };
                match op {
                    WriteOp::NewCounter => {
                        self.totals.epochs_started += 1;
                        self.created[usize::from(*key)] += 1;
                        let epoch = Epoch {
                            key: usize::from(*key),
                            increments: 0,
                        };
                        if self.epochs.insert(content.epoch, epoch).is_some() {
                            self.problem(format!(
                                "(d) counter epoch {:#x} was created twice",
                                content.epoch
                            ));
                        }
                    }
                    WriteOp::Increment => raised.entry(content.epoch).or_default().push((
                        content.count,
                        content.stamp,
                        *version,
                    )),
                    _ => {}
                }
            }
        }
        for (epoch, mut increments) in raised {
            increments.sort_unstable_by_key(|&(count, _, version)| (count, version));
            let Some(before) = self.epochs.get(&epoch).map(|e| e.increments) else {
                self.problem(format!(
                    "(d) {} increments of counter epoch {epoch:#x}, which was never created or \
                     had ended before this round: {increments:?}",
                    increments.len()
                ));
                continue;
            };
            let mut next = before + 1;
            for pair in increments.windows(2) {
                let ((count, a, va), (count_b, b, vb)) = (pair[0], pair[1]);
                if count == count_b {
                    self.problem(format!(
                        "(d) counter epoch {epoch:#x}: writes {a:?} (version {va}) and {b:?} \
                         (version {vb}) both raised the count to {count}: an increment was lost"
                    ));
                }
            }
            for &(count, stamp, version) in &increments {
                if count > next {
                    self.problem(format!(
                        "(d) counter epoch {epoch:#x}: write {stamp:?} (version {version}) \
                         raised the count to {count}, but no increment reached {next}"
                    ));
                }
                next = next.max(count + 1);
            }
            self.totals.increments += increments.len() as u64;
            if let Some(state) = self.epochs.get_mut(&epoch) {
                state.increments += increments.len() as u64;
                self.raised[state.key] += increments.len() as u64;
            }
        }
    }

    /// (e), with the threads stopped: what each key holds, against the logs; then carries
    /// over what the next round can observe.
    fn check_at_rest(
        &mut self,
        caches: &Caches,
        known: &HashMap<Stamp, Known>,
        last_version: &[u64],
    ) {
        let mut present: Vec<Option<(Stamp, Known)>> = vec![None; KEYS];
        for (key, held) in present.iter_mut().enumerate() {
            let Some((value, version)) = caches.of(key).get_versioned(caches.key(key)) else {
                continue;
            };
            let version = version.get();
            let content = match decode(key, &value) {
                Ok(content) => content,
                Err(what) => {
                    self.problem(format!(
                        "(a) at rest, key {key} (version {version}): {what}"
                    ));
                    continue;
                }
            };
            let write = known
                .get(&content.stamp)
                .filter(|w| w.key == key && w.content == content && w.version == Some(version));
            let Some(write) = write else {
                self.problem(format!(
                    "(c) at rest, key {key} holds version {version} with {content:?}, which is \
                     not what any write that returned that version wrote ({:?})",
                    known.get(&content.stamp)
                ));
                continue;
            };
            if version != last_version[key] {
                self.problem(format!(
                    "(e) at rest, key {key} holds version {version} (write {:?}), but a later \
                     write of it returned version {}: that write was lost",
                    content.stamp, last_version[key]
                ));
            }
            *held = Some((content.stamp, *write));
        }
        self.check_counters_at_rest(&present);
        self.check_iter_at_rest(
            &caches.main,
            caches,
            0,
            &present[..FIRST_PINNED],
            caches.shape.max_entries,
            caches.shape.expiring,
        );
        let pinned = &present[FIRST_PINNED..];
        let most = PINNED_COUNTERS as u64;
        self.check_iter_at_rest(&caches.pinned, caches, FIRST_PINNED, pinned, most, false);
        let mut behind = Vec::new();
        for (t, floors) in self.floors.iter_mut().enumerate() {
            for (key, floor) in floors.iter_mut().enumerate() {
                let at = Source::AtRest { round: self.round };
                match present[key].and_then(|(_, w)| w.version) {
                    Some(version) => {
                        if !floor.admits_read(version) {
                            behind.push(format!(
                                "(b) at rest, key {key} holds version {version}, older than what \
                                 thread {t} saw: {floor:?}"
                            ));
                        }
                        floor.saw(version, at);
                    }
                    None => floor.saw_gone(at),
                }
            }
        }
        for what in behind {
            self.problem(what);
        }
        self.present = present;
    }

    fn check_counters_at_rest(&mut self, present: &[Option<(Stamp, Known)>]) {
        let mut live = HashSet::new();
        for (key, held) in present
            .iter()
            .enumerate()
            .filter(|&(key, _)| is_counter(key))
        {
            let Some((_, write)) = held else { continue };
            let content = write.content;
            live.insert(content.epoch);
            match self.epochs.get(&content.epoch) {
                None => self.problem(format!(
                    "(d) at rest, counter key {key} holds {content:?}, of an epoch never created"
                )),
                Some(epoch) if epoch.key != key || epoch.increments != content.count => {
                    let (epoch_key, increments) = (epoch.key, epoch.increments);
                    self.problem(format!(
                        "(d) at rest, counter key {key} holds count {} of epoch {:#x} (key \
                         {epoch_key}), but that epoch had {increments} successful increments",
                        content.count, content.epoch
                    ));
                }
                Some(_) => {}
            }
        }
        let ended: Vec<u64> = self
            .epochs
            .keys()
            .filter(|e| !live.contains(*e))
            .copied()
            .collect();
        for epoch in ended {
            let gone = self.epochs.remove(&epoch).expect("listed above");
            self.totals.epochs_ended += 1;
            self.totals.increments_ended += gone.increments;
        }
    }

    /// Checks what `iter`, `len` and `stats` of `cache` say at rest against `present`: what
    /// get_versioned found of each key, for the keys the cache holds, numbered from `first`.
    /// With `expiring`, expired entries not reclaimed yet count in `len` and `stats` (they are
    /// resident) but not in `present` or `iter`.
    fn check_iter_at_rest(
        &mut self,
        cache: &Cache,
        caches: &Caches,
        first: usize,
        present: &[Option<(Stamp, Known)>],
        max_entries: u64,
        expiring: bool,
    ) {
        let mut yielded = HashSet::new();
        for (k, value, version) in cache.iter() {
            let Some(key) = caches
                .number(&k)
                .filter(|key| (first..first + present.len()).contains(key))
            else {
                self.problem(format!("(e) at rest, iter yielded a foreign key {k:02x?}"));
                continue;
            };
            if !yielded.insert(key) {
                self.problem(format!("(e) at rest, iter yielded key {key} twice"));
            }
            let held = present[key - first];
            let matches = held.is_some_and(|(stamp, write)| {
                write.version == Some(version.get())
                    && decode(key, &value).is_ok_and(|c| c.stamp == stamp)
            });
            if !matches {
                self.problem(format!(
                    "(e) at rest, iter yielded key {key} at version {} ({:?}), but \
                     get_versioned found {held:?}",
                    version.get(),
                    decode(key, &value),
                ));
            }
        }
        let held = present.iter().flatten().count() as u64;
        let (resident, stats) = (cache.len() as u64, cache.stats());
        let agree = yielded.len() as u64 == held
            && resident == stats.entries
            && (resident == held || expiring && resident > held);
        if !agree {
            self.problem(format!(
                "(e) at rest, {held} keys are present, but iter yielded {}, len is {resident} \
                 and stats count {} entries: {stats:?}",
                yielded.len(),
                stats.entries
            ));
        }
        if resident > max_entries || stats.arena_bytes_used > stats.max_bytes {
            self.problem(format!(
                "(e) at rest, over a limit: {resident} entries (at most {max_entries}), {stats:?}"
            ));
        }
    }

    /// Fails with every problem found, or checks that the run did what it is meant to.
    pub(crate) fn finish(&mut self, caches: &Caches) {
        for key in FIRST_PINNED..KEYS {
            let count = self.present[key].map(|(_, write)| write.content.count);
            if self.created[key] != 1 || count != Some(self.raised[key]) {
                self.problem(format!(
                    "(d) pinned counter {key} was created {} times (its cache has room: it should \
                     be once), holds count {count:?}, and {} increments of it succeeded",
                    self.created[key], self.raised[key]
                ));
            }
        }
        let (main, pinned) = (caches.main.stats(), caches.pinned.stats());
        if pinned.evictions != 0 {
            self.problem(format!(
                "the pinned counters' cache evicted, with room to spare: {pinned:?}"
            ));
        }
        println!("stress: {:?}", self.totals);
        println!("stress: main cache {main:?}");
        println!("stress: pinned counters' cache {pinned:?}");
        assert!(
            self.problems.is_empty(),
            "{} problems in the {} shape (seed {}; the first {} below)\n{}\ntotals: {:?}\n\
             main cache: {main:?}",
            self.problem_count,
            caches.shape.name,
            self.seed,
            self.problems.len(),
            self.problems.join("\n"),
            self.totals
        );
        assert!(
            main.evictions > 0
                && main.hits > 0
                && (main.expirations > 0 || !caches.shape.expiring)
                && self.raised[FIRST_PINNED..].iter().all(|&n| n > 0),
            "the run in the {} shape was meant to evict, hit and count (seed {}): {:?} {main:?}",
            caches.shape.name,
            self.seed,
            self.totals
        );
    }
}

/// Names where a thread learned something, showing the event when it is in `round`.
fn describe(source: Option<Source>, round: u32, events: &[Event]) -> String {
    match source {
        None => "nothing before".into(),
        Some(Source::Event { round: r, index }) if r == round => {
            format!("event {index} {:?}", events[index as usize])
        }
        Some(Source::Event { round: r, index }) => format!("round {r}, event {index}"),
        Some(Source::AtRest { round: r }) => format!("the cache at rest after round {r}"),
    }
}
