//! How big the window should be: a hill climber over the observed hit ratio.
//!
//! A 1% window suits frequency-biased traffic; recency-biased traffic (a key read again soon
//! after it is first written, then never) wants a window of most of the cache, where W-TinyLFU
//! degenerates into LRU. The climber finds the size by trial: every sample (`10 x capacity`
//! requests) it compares the hit ratio with the previous sample's, keeps stepping the window in
//! the same direction while the ratio improves and turns back when it worsens. Steps start at
//! 6.25% of capacity and shrink by 2% each sample, so the window settles; a jump in the hit
//! ratio of 5 points or more (the workload changed) restarts with full steps. This follows the
//! adaptive W-TinyLFU of Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management"
//! (Middleware 2018), as Caffeine implements it.
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
}

impl Climber {
    pub(super) fn new() -> Climber {
        Climber {
            hits: 0,
            misses: 0,
            previous_hit_ratio: 0.0,
            step: INITIAL_STEP,
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
        if requests < SAMPLE_PER_ENTRY * capacity.max(1) {
            return None;
        }
        let hit_ratio = self.hits as f64 / requests as f64;
        let change = hit_ratio - self.previous_hit_ratio;
        // Keep going while the hit ratio does not drop; turn back when it does.
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
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

    /// Runs one sample of `capacity * 10` requests with the given hit ratio.
    fn sample(climber: &mut Climber, window: f64, capacity: u64, hit_ratio: f64) -> Option<f64> {
        let requests = capacity * SAMPLE_PER_ENTRY;
        let hits = (requests as f64 * hit_ratio) as u64;
        (0..hits).for_each(|_| climber.hit());
        (hits..requests).for_each(|_| climber.miss());
        climber.adjust(window, capacity)
    }

    #[test]
    fn waits_for_a_full_sample() {
        let mut climber = Climber::new();
        (0..999).for_each(|_| climber.hit());
        assert_eq!(climber.adjust(0.01, 100), None);
        climber.miss();
        assert!(climber.adjust(0.01, 100).is_some());
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
