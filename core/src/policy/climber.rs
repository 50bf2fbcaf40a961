//! How big the window should be: a hill climber over the observed hit ratio.
//!
//! A 1% window suits frequency-biased traffic; recency-biased traffic (a key read again soon
//! after it is first written, then never) wants a window of most of the cache, where W-TinyLFU
//! degenerates into LRU. The climber finds the size by trial: after each sample of requests it
//! compares the hit ratio with the previous sample's, keeps stepping the window in the same
//! direction while the ratio improves and turns back when it worsens. Steps start at 6.25% of
//! capacity and shrink by 2% each sample, so the window settles; a jump in the hit ratio of 5
//! points or more (the workload changed) restarts with full steps. This follows the adaptive
//! W-TinyLFU of Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management"
//! (Middleware 2018), as Caffeine implements it, with one change: Caffeine's samples are
//! always `10 x capacity` requests, ours start at `1 x capacity` and grow by one capacity per
//! sample up to 10 (and start small again on a restart). A window that starts at 1% needs about
//! 16 steps to reach most of the cache; with fixed long samples, traffic that needs that gets
//! there only after 160 x capacity requests, which on the recency-biased traces of the test
//! suite (corda, sprite) cost 2 to 4 points of hit ratio against LRU.
//!
//! The window's size is kept as a fraction of capacity, so it follows the class as pages come
//! and go.

const SAMPLE_PER_ENTRY: u64 = 10;
const INITIAL_STEP: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;
/// The window starts at 1% of capacity and never quite vanishes or takes everything.
pub(super) const INITIAL_WINDOW: f64 = 0.01;
const MIN_WINDOW: f64 = 0.0;
const MAX_WINDOW: f64 = 0.99;

pub(super) struct Climber {
    hits: u64,
    misses: u64,
    previous_hit_ratio: f64,
    /// The next change of the window fraction; its sign is the direction being tried.
    step: f64,
    /// Samples since the climber (re)started: early samples are short, so the window finds
    /// its size quickly, and grow to `10 x capacity` as the steps settle.
    samples: u64,
}

impl Climber {
    pub(super) fn new() -> Climber {
        Climber {
            hits: 0,
            misses: 0,
            previous_hit_ratio: 0.0,
            step: INITIAL_STEP,
            samples: 0,
        }
    }

    pub(super) fn hit(&mut self) {
        self.hits += 1;
    }

    pub(super) fn miss(&mut self) {
        self.misses += 1;
    }

    /// At the end of a sample of `10 x capacity` requests, the new window fraction (from
    /// `window`, the current one); else `None`.
    pub(super) fn adjust(&mut self, window: f64, capacity: u64) -> Option<f64> {
        let requests = self.hits + self.misses;
        if requests < (1 + self.samples).min(SAMPLE_PER_ENTRY) * capacity.max(1) {
            return None;
        }
        self.samples += 1;
        let hit_ratio = self.hits as f64 / requests as f64;
        let change = hit_ratio - self.previous_hit_ratio;
        // Keep going while the hit ratio does not drop; turn back when it does.
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            self.samples = 0;
            INITIAL_STEP * amount.signum()
        } else {
            amount * STEP_DECAY
        };
        self.previous_hit_ratio = hit_ratio;
        self.hits = 0;
        self.misses = 0;
        Some((window + amount).clamp(MIN_WINDOW, MAX_WINDOW))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one full-length sample (`10 x capacity` requests) with the given hit ratio.
    fn sample(climber: &mut Climber, window: f64, capacity: u64, hit_ratio: f64) -> Option<f64> {
        let requests = capacity * SAMPLE_PER_ENTRY;
        let hits = (requests as f64 * hit_ratio) as u64;
        (0..hits).for_each(|_| climber.hit());
        (hits..requests).for_each(|_| climber.miss());
        climber.adjust(window, capacity)
    }

    #[test]
    fn samples_start_at_one_capacity_and_grow_to_ten() {
        let mut climber = Climber::new();
        // The first sample's change from nothing counts as a jump: it restarts the count.
        for multiple in [1].into_iter().chain(1..=10).chain([10, 10]) {
            (0..100 * multiple - 1).for_each(|_| climber.hit());
            assert_eq!(
                climber.adjust(0.5, 100),
                None,
                "sample of {multiple} x capacity"
            );
            climber.miss();
            assert!(climber.adjust(0.5, 100).is_some());
        }
    }

    #[test]
    fn keeps_its_direction_while_the_hit_ratio_improves_and_turns_back_when_it_drops() {
        let mut climber = Climber::new();
        let mut window = INITIAL_WINDOW;
        let grown = sample(&mut climber, window, 100, 0.30).unwrap();
        assert!(grown > window, "first step grows the window");
        window = grown;
        let grown_more = sample(&mut climber, window, 100, 0.32).unwrap();
        assert!(grown_more > window, "improving: same direction");
        window = grown_more;
        let shrunk = sample(&mut climber, window, 100, 0.31).unwrap();
        assert!(shrunk < window, "worse: turn back");
        let step_back = window - shrunk;
        let step_before = grown_more - grown;
        assert!(
            step_back < step_before,
            "steps decay: {step_back} after {step_before}"
        );
    }

    #[test]
    fn a_large_change_restarts_with_full_steps() {
        let mut climber = Climber::new();
        let mut window = 0.5;
        for ratio in [0.40, 0.41, 0.42, 0.43] {
            window = sample(&mut climber, window, 100, ratio).unwrap();
        }
        assert!(climber.step.abs() < INITIAL_STEP);
        sample(&mut climber, window, 100, 0.10).unwrap();
        assert_eq!(climber.step.abs(), INITIAL_STEP);
    }

    #[test]
    fn the_window_stays_within_bounds() {
        let mut climber = Climber::new();
        let mut window = 0.95;
        for i in 0..50 {
            window = sample(&mut climber, window, 10, 0.5 + i as f64 * 0.001).unwrap();
            assert!((MIN_WINDOW..=MAX_WINDOW).contains(&window));
        }
        assert_eq!(window, MAX_WINDOW);
    }
}
