//! Streaming models of one edge's request latency and error rate.
//!
//! Latency: an exponentially weighted mean and variance of ln(latency).
//! Latencies are roughly log-normal, so in log space a 10x slowdown and a
//! 10x speed-up are the same distance, and the variance is a relative
//! spread that does not depend on the edge's typical speed. Three things
//! keep it robust:
//! - each sample is winsorised to mean ± 3 sd before it is folded in, so one
//!   outlier (a GC pause, a cold cache) moves the mean by at most
//!   `alpha * 3 sd`;
//! - detection compares the *median* of the last [`WINDOW`] samples with the
//!   baseline: a shift must hold for more than half a window before it is
//!   reported, so a short burst never is, and a real shift is reported after
//!   about WINDOW/2 requests;
//! - while a shift is being reported the baseline stops learning (a
//!   sustained incident is not learned as normal); when it lasts longer than
//!   `absorb_secs` it is taken as the new normal (re-baselined), and
//!   `sensor baseline accept` does that at once.
//!
//! During the learning period alpha is 1/n (every sample weighs the same:
//! the running mean and variance); afterwards it is the small `drift_alpha`,
//! so slow legitimate drift is absorbed (time constant 1/alpha samples).
//!
//! Why not a t-digest or DDSketch: they answer quantile questions about all
//! history, but detection needs a "recent vs baseline" comparison with
//! forgetting; an EW log-normal model is 3 numbers per edge (plus the
//! recent window, not persisted) and its z-score is a natural anomaly score.
//!
//! Errors: an EW failure fraction (1/n during learning, `drift_alpha` after)
//! against the failure count of the last 64 requests (a bit mask); a spike
//! is a recent rate above base + max(min_increase, 4 binomial sd) with at
//! least 5 failures, cleared with hysteresis at base + min_increase/2.

use serde::{Deserialize, Serialize};

/// Samples in the recent window whose median is compared with the baseline.
pub const WINDOW: usize = 32;
/// The recent window needs this many samples before it is judged.
pub const WINDOW_MIN: usize = 16;
/// Floor of the log-latency standard deviation (about ±5%): a perfectly
/// steady edge would otherwise flag any jitter.
pub const SD_FLOOR: f64 = 0.05;
const ERR_WINDOW: u32 = 64;
const ERR_WINDOW_MIN: u32 = 20;

#[derive(Debug, Clone, Copy)]
pub struct ModelParams {
    pub z: f64,
    /// ln(min_ratio): a shift must also be at least this factor.
    pub ln_min_ratio: f64,
    pub min_samples: u64,
    pub drift_alpha: f64,
    pub absorb_ms: u64,
    pub error_min_increase: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyModel {
    /// Samples folded into the baseline.
    pub n: u64,
    /// Mean of ln(latency in seconds).
    pub mean: f64,
    /// Variance of ln(latency).
    pub var: f64,
    #[serde(skip)]
    recent: Vec<f32>,
    #[serde(skip)]
    next: usize,
    /// Since when a shift is being reported (ms), and its sign.
    #[serde(skip)]
    shifted: Option<(u64, i8)>,
}

/// A latency shift, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    pub baseline_ms: f64,
    pub baseline_sd: f64,
    pub observed_ms: f64,
    pub ratio: f64,
    pub z: f64,
    pub samples: u64,
}

impl LatencyModel {
    pub fn typical_ms(&self) -> f64 {
        self.mean.exp() * 1e3
    }

    pub fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt().max(SD_FLOOR)
    }

    fn recent_median(&self) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let mut v = self.recent.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(v[v.len() / 2] as f64)
    }

    fn fold(&mut self, x: f64, learning: bool, p: &ModelParams) {
        let x = if self.n >= 10 {
            let sd = self.sd();
            x.clamp(self.mean - 3.0 * sd, self.mean + 3.0 * sd)
        } else {
            x
        };
        let alpha = if learning || self.n < p.min_samples {
            (1.0 / (self.n + 1) as f64).max(p.drift_alpha)
        } else {
            p.drift_alpha
        };
        let d = x - self.mean;
        self.mean += alpha * d;
        self.var = (1.0 - alpha) * (self.var + alpha * d * d);
        self.n += 1;
    }

    /// Folds one request in; returns a shift when one starts being reported.
    pub fn observe(&mut self, latency_ns: u64, learning: bool, now_ms: u64, p: &ModelParams) -> Option<Shift> {
        let x = (latency_ns.max(1_000) as f64 / 1e9).ln();
        if self.recent.len() < WINDOW {
            self.recent.push(x as f32);
        } else {
            self.recent[self.next] = x as f32;
        }
        self.next = (self.next + 1) % WINDOW;
        match self.shifted {
            None => self.fold(x, learning, p),
            Some((since, _)) if now_ms.saturating_sub(since) >= p.absorb_ms => {
                // lasted long enough: the new normal
                if let Some(m) = self.recent_median() {
                    self.mean = m;
                }
                self.shifted = None;
                return None;
            }
            Some(_) => {}
        }
        if learning || self.n < p.min_samples || self.recent.len() < WINDOW_MIN {
            return None;
        }
        let med = self.recent_median()?;
        let d = med - self.mean;
        let sd = self.sd();
        let threshold = (p.z * sd).max(p.ln_min_ratio);
        match self.shifted {
            None if d.abs() > threshold => {
                self.shifted = Some((now_ms, d.signum() as i8));
                Some(Shift {
                    baseline_ms: self.typical_ms(),
                    baseline_sd: sd,
                    observed_ms: med.exp() * 1e3,
                    ratio: d.exp(),
                    z: d.abs() / sd,
                    samples: self.n,
                })
            }
            Some(_) if d.abs() < threshold / 2.0 => {
                self.shifted = None;
                None
            }
            _ => None,
        }
    }

    /// `baseline accept`: what is happening now is normal.
    pub fn accept(&mut self) {
        if self.shifted.is_some()
            && let Some(m) = self.recent_median()
        {
            self.mean = m;
        }
        self.shifted = None;
    }

    pub fn is_shifted(&self) -> bool {
        self.shifted.is_some()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorModel {
    pub n: u64,
    /// EW fraction of failed requests.
    pub rate: f64,
    #[serde(skip)]
    bits: u64,
    #[serde(skip)]
    count: u32,
    #[serde(skip)]
    spiking: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub baseline_rate: f64,
    pub observed_rate: f64,
    pub failures: u32,
    pub window: u32,
    pub z: f64,
}

impl ErrorModel {
    pub fn observe(&mut self, failed: bool, learning: bool, p: &ModelParams) -> Option<Spike> {
        self.bits = (self.bits << 1) | failed as u64;
        self.count = (self.count + 1).min(ERR_WINDOW);
        if !self.spiking {
            let alpha = if learning || self.n < p.min_samples {
                (1.0 / (self.n + 1) as f64).max(p.drift_alpha)
            } else {
                p.drift_alpha
            };
            self.rate += alpha * (failed as u8 as f64 - self.rate);
            self.n += 1;
        }
        if learning || self.n < p.min_samples || self.count < ERR_WINDOW_MIN {
            return None;
        }
        let mask = if self.count >= 64 { u64::MAX } else { (1u64 << self.count) - 1 };
        let failures = (self.bits & mask).count_ones();
        let w = self.count as f64;
        let r = failures as f64 / w;
        let base = self.rate.max(0.001);
        let sd = (base * (1.0 - base) / w).sqrt();
        if !self.spiking && r >= base + p.error_min_increase.max(4.0 * sd) && failures >= 5 {
            self.spiking = true;
            return Some(Spike {
                baseline_rate: self.rate,
                observed_rate: r,
                failures,
                window: self.count,
                z: (r - base) / sd,
            });
        }
        if self.spiking && r <= base + p.error_min_increase / 2.0 {
            self.spiking = false;
        }
        None
    }

    pub fn accept(&mut self) {
        if self.spiking && self.count > 0 {
            let mask = if self.count >= 64 { u64::MAX } else { (1u64 << self.count) - 1 };
            self.rate = (self.bits & mask).count_ones() as f64 / self.count as f64;
        }
        self.spiking = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ModelParams {
        ModelParams {
            z: 4.0,
            ln_min_ratio: 3f64.ln(),
            min_samples: 50,
            drift_alpha: 0.002,
            absorb_ms: 1_800_000,
            error_min_increase: 0.2,
        }
    }

    /// A deterministic jitter in [0.6, 1.6): xorshift.
    fn jitter(state: &mut u64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        0.6 + (*state % 1000) as f64 / 1000.0
    }

    #[test]
    fn steady_jitter_and_bursts_do_not_fire_a_tenfold_shift_does_once() {
        let p = params();
        let mut m = LatencyModel::default();
        let mut s = 7u64;
        let mut t = 0;
        for _ in 0..500 {
            assert_eq!(m.observe((5e6 * jitter(&mut s)) as u64, true, t, &p), None);
            t += 50;
        }
        assert!((m.typical_ms() - 5.0).abs() < 1.0, "{}", m.typical_ms());
        // after learning: jitter and a burst of 10 slow requests (less than half a window)
        for i in 0..2000 {
            let ns = if (1000..1010).contains(&i) { 500e6 } else { 5e6 * jitter(&mut s) };
            assert_eq!(m.observe(ns as u64, false, t, &p), None, "sample {i}");
            t += 50;
        }
        let before = m.typical_ms();
        assert!((before - 5.0).abs() < 1.0, "the burst poisoned the baseline: {before}");
        // 5 ms -> 50 ms: reported within about half a window, once
        let mut fired = Vec::new();
        for i in 0..200 {
            if let Some(sh) = m.observe((50e6 * jitter(&mut s)) as u64, false, t, &p) {
                fired.push((i, sh));
            }
            t += 50;
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(fired[0].0 <= WINDOW / 2 + 1, "{fired:?}");
        assert!(fired[0].1.ratio > 5.0 && fired[0].1.z > 4.0, "{fired:?}");
        // the incident was not learned; back to normal: silent
        assert!((m.typical_ms() - before).abs() < 0.5);
        for _ in 0..200 {
            assert_eq!(m.observe((5e6 * jitter(&mut s)) as u64, false, t, &p), None);
            t += 50;
        }
        assert!(!m.is_shifted());
    }

    #[test]
    fn a_shift_that_lasts_is_absorbed_and_accept_rebaselines() {
        let p = ModelParams { absorb_ms: 10_000, ..params() };
        let mut m = LatencyModel::default();
        for i in 0..100 {
            m.observe(5_000_000, true, i, &p);
        }
        let mut t = 1000;
        let mut fired = 0;
        for _ in 0..400 {
            fired += m.observe(40_000_000, false, t, &p).is_some() as u32;
            t += 100;
        }
        assert_eq!(fired, 1);
        assert!((m.typical_ms() - 40.0).abs() < 2.0, "absorbed: {}", m.typical_ms());
        let mut m2 = LatencyModel::default();
        for i in 0..100 {
            m2.observe(5_000_000, true, i, &params());
        }
        for i in 0..20 {
            m2.observe(40_000_000, false, 1000 + i, &params());
        }
        assert!(m2.is_shifted());
        m2.accept();
        assert!(!m2.is_shifted() && (m2.typical_ms() - 40.0).abs() < 2.0);
    }

    #[test]
    fn error_spike_fires_once_and_clears() {
        let p = params();
        let mut e = ErrorModel::default();
        for i in 0..200 {
            assert_eq!(e.observe(i % 50 == 0, i < 100, &p), None);
        }
        let mut fired = 0;
        for i in 0..64 {
            fired += e.observe(i % 2 == 0, false, &p).is_some() as u32;
        }
        assert_eq!(fired, 1);
        for _ in 0..64 {
            assert_eq!(e.observe(false, false, &p), None);
        }
        assert!(!e.spiking);
        assert!(e.rate < 0.05, "{}", e.rate);
    }
}
