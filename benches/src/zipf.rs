//! A Zipf sampler by rejection-inversion (after Hörmann and Derflinger, 1996).
//!
//! Rank `k` in `1..=n` is drawn with probability proportional to `k^-s`. Instead of a table of
//! `n` cumulative weights (megabytes for a large key space, and a binary search per draw), the
//! sampler inverts the integral of the continuous density `h(x) = x^-s`, which bounds the
//! discrete weights from above once each rank `k` owns the interval `[k - 1/2, k + 1/2]`:
//!
//! ```text
//!   draw u uniformly in [H(3/2) - h(1), H(n + 1/2)]     H = an antiderivative of h
//!   x = H⁻¹(u),  k = x rounded to the nearest rank
//!   accept k if u >= H(k + 1/2) - h(k)                  (else draw again)
//! ```
//!
//! The accepted part of rank `k`'s interval has width exactly `h(k)`, so ranks come out with
//! the right weights; because `h` is convex the rejected part is small, and a cheap squeeze
//! test accepts most draws without evaluating `H` again. Setup and each draw are O(1).

use crate::rng::Rng;

/// Draws ranks `1..=n` with `P(k) ∝ k^-s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    /// `H(3/2) - h(1)`: the lower end of the range `u` is drawn from.
    lo: f64,
    /// `H(n + 1/2)`: the upper end.
    hi: f64,
    /// Squeeze: a rounded `x` this close to its rank is accepted without further test.
    squeeze: f64,
}

impl Zipf {
    /// A sampler over `1..=n` with exponent `s`. Panics unless `n >= 1` and `s > 0` is finite.
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(n >= 1, "Zipf needs at least one rank");
        assert!(
            s > 0.0 && s.is_finite(),
            "Zipf exponent must be positive and finite"
        );
        let mut z = Zipf {
            n: n as f64,
            s,
            lo: 0.0,
            hi: 0.0,
            squeeze: 0.0,
        };
        z.lo = z.big_h(1.5) - 1.0;
        z.hi = z.big_h(z.n + 0.5);
        z.squeeze = 2.0 - z.big_h_inv(z.big_h(2.5) - z.h(2.0));
        z
    }

    /// The number of ranks.
    pub fn n(&self) -> u64 {
        self.n as u64
    }

    /// One rank in `1..=n`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.hi + rng.next_f64() * (self.lo - self.hi);
            let x = self.big_h_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.big_h(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// The density `h(x) = x^-s`.
    #[inline]
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `H(x) = (x^(1-s) - 1) / (1 - s)`, which is `ln x` at `s = 1`; written so that it stays
    /// accurate for `s` near 1.
    #[inline]
    fn big_h(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of `H`: `(1 + (1 - s) y)^(1 / (1 - s))`, which is `e^y` at `s = 1`.
    #[inline]
    fn big_h_inv(&self, y: f64) -> f64 {
        let t = ((1.0 - self.s) * y).max(-1.0);
        (ln1p_over_x(t) * y).exp()
    }
}

/// `ln(1 + t) / t`, continuous at 0 (where it is 1).
#[inline]
fn ln1p_over_x(t: f64) -> f64 {
    if t.abs() > 1e-8 {
        t.ln_1p() / t
    } else {
        1.0 - t * (0.5 - t * (1.0 / 3.0 - 0.25 * t))
    }
}

/// `(e^t - 1) / t`, continuous at 0 (where it is 1).
#[inline]
fn expm1_over_x(t: f64) -> f64 {
    if t.abs() > 1e-8 {
        t.exp_m1() / t
    } else {
        1.0 + t * 0.5 * (1.0 + t / 3.0 * (1.0 + 0.25 * t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws many ranks over a small support and compares each rank's frequency with its
    /// exact probability.
    fn check(n: u64, s: f64) {
        let zipf = Zipf::new(n, s);
        let mut rng = Rng::new(0x5eed ^ n ^ s.to_bits());
        let draws = 400_000u64;
        let mut counts = vec![0u64; n as usize + 1];
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} out of 1..={n}");
            counts[k as usize] += 1;
        }
        let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        for k in 1..=n {
            let p = (k as f64).powf(-s) / norm;
            let expected = p * draws as f64;
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            let got = counts[k as usize] as f64;
            assert!(
                (got - expected).abs() <= 5.0 * sd + 1.0,
                "n={n} s={s} rank {k}: got {got}, expected {expected:.0} (sd {sd:.0})"
            );
        }
    }

    #[test]
    fn matches_exact_probabilities() {
        for &s in &[0.5, 0.8, 0.99, 1.0, 1.01, 1.3, 2.0] {
            check(1, s);
            check(2, s);
            check(10, s);
            check(50, s);
        }
    }

    #[test]
    fn large_support_stays_in_range_and_is_skewed() {
        let n = 10_000_000;
        let zipf = Zipf::new(n, 0.99);
        assert_eq!(zipf.n(), n);
        let mut rng = Rng::new(42);
        let mut top_100 = 0;
        for _ in 0..100_000 {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k));
            if k <= 100 {
                top_100 += 1;
            }
        }
        // With s = 0.99 over 10M ranks the first 100 ranks carry about 30% of the mass.
        assert!(
            (25_000..35_000).contains(&top_100),
            "top 100 drew {top_100}"
        );
    }
}
