//! The paired, interleaved run order of an A/B experiment.
//!
//! Runs alternate between variants, A B A B …, rather than A A A … B B B …: slow drift of
//! the machine (thermal throttling, a neighbour's build, a growing database file) then
//! hits every variant almost equally instead of piling onto whichever ran last. Warm-up
//! rounds come first, over every variant, and are marked so they are not counted.
//!
//! ```
//! use harness::interleave::{schedule, Phase};
//!
//! let order: Vec<(&str, Phase)> = schedule(&["A", "B"], 2, 1)
//!     .map(|run| (*run.variant, run.phase))
//!     .collect();
//! assert_eq!(order, [
//!     ("A", Phase::Warmup), ("B", Phase::Warmup),
//!     ("A", Phase::Measured), ("B", Phase::Measured),
//!     ("A", Phase::Measured), ("B", Phase::Measured),
//! ]);
//! ```

use serde::{Deserialize, Serialize};

/// Whether a run counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Warms the page cache, database files and allocator; run but discarded.
    Warmup,
    /// A counted repetition.
    Measured,
}

/// One slot of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run<'a, T> {
    /// The variant to run.
    pub variant: &'a T,
    /// Its index in the variants given.
    pub variant_index: usize,
    /// Warm-up or measured.
    pub phase: Phase,
    /// 0-based round within the phase: the repetition number for measured runs.
    pub round: usize,
}

/// The schedule as an iterator; see [`schedule`].
#[derive(Debug, Clone)]
pub struct Schedule<'a, T> {
    variants: &'a [T],
    repetitions: usize,
    warmup: usize,
    /// Slot position over warm-up slots then measured slots.
    next: usize,
}

/// The interleaved order: `warmup` rounds then `repetitions` rounds, each round running
/// every variant once in the order given. Empty when there are no variants.
pub fn schedule<T>(variants: &[T], repetitions: usize, warmup: usize) -> Schedule<'_, T> {
    Schedule {
        variants,
        repetitions,
        warmup,
        next: 0,
    }
}

impl<T> Schedule<'_, T> {
    fn total(&self) -> usize {
        (self.warmup + self.repetitions) * self.variants.len()
    }
}

impl<'a, T> Iterator for Schedule<'a, T> {
    type Item = Run<'a, T>;

    fn next(&mut self) -> Option<Run<'a, T>> {
        if self.next >= self.total() {
            return None;
        }
        let slot = self.next;
        self.next += 1;
        let k = self.variants.len();
        let (round, variant_index) = (slot / k, slot % k);
        let (phase, round) = if round < self.warmup {
            (Phase::Warmup, round)
        } else {
            (Phase::Measured, round - self.warmup)
        };
        Some(Run {
            variant: &self.variants[variant_index],
            variant_index,
            phase,
            round,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total() - self.next;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for Schedule<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmups_first_then_alternating_rounds() {
        let runs: Vec<_> = schedule(&['A', 'B', 'C'], 2, 2).collect();
        assert_eq!(runs.len(), 12);
        let letters: String = runs.iter().map(|r| *r.variant).collect();
        assert_eq!(letters, "ABCABCABCABC");
        assert!(runs[..6].iter().all(|r| r.phase == Phase::Warmup));
        assert!(runs[6..].iter().all(|r| r.phase == Phase::Measured));
        let rounds: Vec<usize> = runs.iter().map(|r| r.round).collect();
        assert_eq!(rounds, [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
        assert_eq!(runs[7].variant_index, 1);
    }

    #[test]
    fn every_variant_gets_each_repetition_once() {
        let s = schedule(&["base", "head"], 5, 1);
        assert_eq!(s.len(), 12);
        for v in 0..2 {
            let reps: Vec<usize> = s
                .clone()
                .filter(|r| r.variant_index == v && r.phase == Phase::Measured)
                .map(|r| r.round)
                .collect();
            assert_eq!(reps, [0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(schedule::<u8>(&[], 5, 2).count(), 0);
        assert_eq!(schedule(&[1], 0, 0).count(), 0);
        let only_warmup: Vec<_> = schedule(&[1, 2], 0, 1).collect();
        assert_eq!(only_warmup.len(), 2);
        assert!(only_warmup.iter().all(|r| r.phase == Phase::Warmup));
    }

    /// Under a linear drift (each slot 1 unit slower than the last) two identical
    /// variants must come out nearly equal when interleaved: their mean times differ by
    /// one slot, where running all of A then all of B would differ by n slots.
    #[test]
    fn interleaving_cancels_linear_drift() {
        let n = 10;
        let mut totals = [0.0f64; 2];
        for (slot, run) in schedule(&[(), ()], n, 0).enumerate() {
            totals[run.variant_index] += 100.0 + slot as f64;
        }
        let gap = (totals[1] - totals[0]) / n as f64;
        assert_eq!(gap, 1.0);
    }
}
