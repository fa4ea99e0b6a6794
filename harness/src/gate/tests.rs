//! The gate's rule on seeded and hand-made samples.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::*;

fn boot() -> BootstrapConfig {
    BootstrapConfig {
        resamples: 2000,
        ..Default::default()
    }
}

fn normal_sample(mean: f64, sd: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = Normal::new(mean, sd).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

fn timing(base: &[f64], head: &[f64], direction: Direction) -> Judgement {
    judge(
        base,
        head,
        direction,
        MetricKind::Timing,
        &GatePolicy::default(),
        &boot(),
    )
    .unwrap()
}

#[test]
fn identical_samples_are_unchanged() {
    let xs = normal_sample(100.0, 1.0, 10, 1);
    let j = timing(&xs, &xs, Direction::LowerIsBetter);
    assert_eq!(j.verdict, Verdict::Unchanged);
    assert_eq!(j.ratio, 1.0);
    assert_eq!(j.p_value, Some(1.0));
    let c = judge(
        &xs,
        &xs,
        Direction::LowerIsBetter,
        MetricKind::Counter,
        &GatePolicy::default(),
        &boot(),
    )
    .unwrap();
    assert_eq!(c.verdict, Verdict::Unchanged);
}

#[test]
fn thirty_percent_shift_is_judged_in_the_right_direction() {
    let base = normal_sample(100.0, 1.0, 10, 2);
    let slower = normal_sample(130.0, 1.3, 10, 3);
    let faster = normal_sample(70.0, 0.7, 10, 4);
    assert_eq!(
        timing(&base, &slower, Direction::LowerIsBetter).verdict,
        Verdict::Regressed
    );
    assert_eq!(
        timing(&base, &faster, Direction::LowerIsBetter).verdict,
        Verdict::Improved
    );
    // For a throughput, a larger head is an improvement.
    assert_eq!(
        timing(&base, &slower, Direction::HigherIsBetter).verdict,
        Verdict::Improved
    );
    assert_eq!(
        timing(&base, &faster, Direction::HigherIsBetter).verdict,
        Verdict::Regressed
    );
    let j = timing(&base, &slower, Direction::LowerIsBetter);
    assert!(j.ratio > 1.25 && j.ratio < 1.35, "{}", j.ratio);
    assert!(j.p_value.unwrap() < 0.001);
}

#[test]
fn significant_shift_within_tolerance_is_unchanged() {
    // 2% slower with very little noise: the U test is sure, but 2% < 5% tolerance.
    let base = normal_sample(100.0, 0.1, 10, 5);
    let head = normal_sample(102.0, 0.1, 10, 6);
    let j = timing(&base, &head, Direction::LowerIsBetter);
    assert!(j.p_value.unwrap() < 0.001);
    assert_eq!(j.verdict, Verdict::Unchanged);
    // The same pair regresses once the tolerance is tightened to 1%.
    let strict = GatePolicy::default().with_override(&GateOverride {
        tolerance: Some(0.01),
        ..Default::default()
    });
    let j = judge(
        &base,
        &head,
        Direction::LowerIsBetter,
        MetricKind::Timing,
        &strict,
        &boot(),
    )
    .unwrap();
    assert_eq!(j.verdict, Verdict::Regressed);
}

#[test]
fn noise_tolerance_is_the_99_percent_bound_of_two_single_runs() {
    assert_eq!(noise_tolerance(0.0, 0.0), 0.0);
    // Two sides at the 10% threshold: exp(2.576 · 0.1414) − 1.
    let t = noise_tolerance(0.10, 0.10);
    assert!((t - 0.4401).abs() < 1e-3, "{t}");
    // Symmetric, and one noisy side alone counts too.
    assert_eq!(noise_tolerance(0.2, 0.05), noise_tolerance(0.05, 0.2));
    assert!(noise_tolerance(0.115, 0.0) > 0.30);
}

/// Regression test for issue 10's "22.6× slowdown passed with exit 0": a clear
/// slowdown whose base side is noisy (CoV above 10%), 5 runs a side, p = 2/252.
/// Noise widens the tolerance; it must not void the verdict.
#[test]
fn noisy_but_clear_twentyfold_regression_is_regressed() {
    let base = [11.2, 12.0, 14.6, 12.4, 10.3];
    let head = [268.0, 281.5, 255.3, 290.1, 262.7];
    let j = timing(&base, &head, Direction::LowerIsBetter);
    assert!(j.base.erratic && j.noisy, "{j:?}");
    assert!(j.ratio > 20.0, "{}", j.ratio);
    assert!((j.p_value.unwrap() - 2.0 / 252.0).abs() < 1e-12);
    assert!(j.tolerance > GatePolicy::default().tolerance);
    assert_eq!(j.verdict, Verdict::Regressed);
    // The mirror: the same pair read the other way is a noisy improvement.
    let j = timing(&head, &base, Direction::LowerIsBetter);
    assert_eq!((j.verdict, j.noisy), (Verdict::Improved, true));
    // And for a throughput, twenty times more is better.
    let j = timing(&base, &head, Direction::HigherIsBetter);
    assert_eq!(j.verdict, Verdict::Improved);
}

#[test]
fn noisy_change_straddling_the_widened_tolerance_is_erratic() {
    let base = normal_sample(100.0, 1.0, 10, 7);
    // Median 136, CoV 13%: a third slower, give or take the noise.
    let head = [
        110.0, 118.0, 125.0, 130.0, 134.0, 138.0, 142.0, 150.0, 160.0, 172.0,
    ];
    let j = timing(&base, &head, Direction::LowerIsBetter);
    assert!(j.head.erratic && !j.base.erratic && j.noisy, "{j:?}");
    let ci = j.ratio_ci.unwrap();
    // The CI crosses 1 + t': part of it is beyond the widened tolerance, part is not.
    assert!(
        ci.lower < 1.0 + j.tolerance && ci.upper > 1.0 + j.tolerance,
        "{ci:?} vs {}",
        j.tolerance
    );
    assert!(j.p_value.unwrap() < 0.05);
    assert_eq!(j.verdict, Verdict::Erratic);
}

#[test]
fn noisy_a_a_pair_within_the_widened_tolerance_is_unchanged() {
    let base = normal_sample(100.0, 15.0, 10, 9);
    let head = normal_sample(100.0, 15.0, 10, 10);
    let j = timing(&base, &head, Direction::LowerIsBetter);
    assert!(j.noisy, "{j:?}");
    assert_eq!(j.verdict, Verdict::Unchanged);
}

/// Regression test for issue 10's "too few samples is not unchanged": 3 against 3 can
/// never reach p < 0.05 (the smallest exact p is 0.1), so a 1.5× change is neither
/// unchanged nor regressed but `insufficient samples`; one more run a side settles it.
#[test]
fn three_against_three_is_insufficient_samples() {
    let j = timing(
        &[100.0, 101.0, 99.0],
        &[150.0, 151.0, 149.0],
        Direction::LowerIsBetter,
    );
    assert!((j.p_value.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(j.verdict, Verdict::InsufficientSamples);
    // Even identical samples: "unchanged" would claim what 3 runs cannot show.
    let same = [100.0, 101.0, 99.0];
    assert_eq!(
        timing(&same, &same, Direction::LowerIsBetter).verdict,
        Verdict::InsufficientSamples
    );
    let j = timing(
        &[100.0, 101.0, 99.0, 100.5],
        &[150.0, 151.0, 149.0, 150.5],
        Direction::LowerIsBetter,
    );
    assert!((j.p_value.unwrap() - 2.0 / 70.0).abs() < 1e-12);
    assert_eq!(j.verdict, Verdict::Regressed);
    // A stricter alpha needs more runs: 4 against 4 cannot reach 0.01.
    let strict = GatePolicy {
        alpha: 0.01,
        ..GatePolicy::default()
    };
    let j = judge(
        &[100.0, 101.0, 99.0, 100.5],
        &[150.0, 151.0, 149.0, 150.5],
        Direction::LowerIsBetter,
        MetricKind::Timing,
        &strict,
        &boot(),
    )
    .unwrap();
    assert_eq!(j.verdict, Verdict::InsufficientSamples);
}

#[test]
fn counters_use_the_counter_tolerance() {
    let policy = GatePolicy::default();
    let counter = |base: &[f64], head: &[f64], d| {
        judge(base, head, d, MetricKind::Counter, &policy, &boot())
            .unwrap()
            .verdict
    };
    let lower = Direction::LowerIsBetter;
    assert_eq!(
        counter(&[1000.0; 3], &[1005.0; 3], lower),
        Verdict::Unchanged
    );
    assert_eq!(
        counter(&[1000.0; 3], &[1020.0; 3], lower),
        Verdict::Regressed
    );
    assert_eq!(counter(&[1000.0; 3], &[980.0; 3], lower), Verdict::Improved);
    assert_eq!(
        counter(&[1000.0; 3], &[1020.0; 3], Direction::HigherIsBetter),
        Verdict::Improved
    );
    // Zero baselines: equal zeros are unchanged, anything from zero is a change.
    assert_eq!(counter(&[0.0; 3], &[0.0; 3], lower), Verdict::Unchanged);
    let j = judge(
        &[0.0; 3],
        &[5.0; 3],
        lower,
        MetricKind::Counter,
        &policy,
        &boot(),
    )
    .unwrap();
    assert_eq!(
        (j.verdict, j.ratio, j.p_value),
        (Verdict::Regressed, f64::INFINITY, None)
    );
    // A counter is never erratic: a one-off outlier does not move the median.
    assert_eq!(
        counter(&[1000.0, 1000.0, 1000.0, 5000.0], &[1000.0; 4], lower),
        Verdict::Unchanged
    );
}

#[test]
fn timing_metric_with_zero_baseline_is_an_error() {
    let r = judge(
        &[0.0; 4],
        &[1.0; 4],
        Direction::LowerIsBetter,
        MetricKind::Timing,
        &GatePolicy::default(),
        &boot(),
    );
    assert_eq!(r, Err(StatsError::ZeroBaseline));
}

/// A/A: 20 pairs drawn from one seeded distribution (N(100, 3²), n = 10 per side) must
/// never regress; with α = 0.05 about one pair is expected to reach p < α by chance,
/// and the ratio-CI condition is what keeps it from being a false alarm.
#[test]
fn a_a_pairs_raise_no_false_alarm() {
    let mut significant = 0;
    for pair in 0..20u64 {
        let base = normal_sample(100.0, 3.0, 10, 1000 + 2 * pair);
        let head = normal_sample(100.0, 3.0, 10, 1001 + 2 * pair);
        let j = timing(&base, &head, Direction::LowerIsBetter);
        assert_ne!(j.verdict, Verdict::Regressed, "pair {pair}: {j:?}");
        assert_ne!(j.verdict, Verdict::Improved, "pair {pair}: {j:?}");
        if j.p_value.unwrap() < 0.05 {
            significant += 1;
        }
    }
    assert!(
        significant <= 4,
        "{significant} of 20 A/A pairs had p < 0.05"
    );
}

/// The same with noise above the erratic threshold (N(100, 15²)): the widened
/// tolerance keeps every pair from being called a change.
#[test]
fn noisy_a_a_pairs_raise_no_false_alarm() {
    for pair in 0..20u64 {
        let base = normal_sample(100.0, 15.0, 10, 3000 + 2 * pair);
        let head = normal_sample(100.0, 15.0, 10, 3001 + 2 * pair);
        let j = timing(&base, &head, Direction::LowerIsBetter);
        assert!(
            !matches!(j.verdict, Verdict::Regressed | Verdict::Improved),
            "pair {pair}: {j:?}"
        );
    }
}

#[test]
fn policy_override_and_validation() {
    let p = GatePolicy::default();
    assert_eq!(
        (p.alpha, p.tolerance, p.counter_tolerance),
        (0.05, 0.05, 0.01)
    );
    assert_eq!(p.validate(), Ok(()));
    let o: GateOverride = toml::from_str("alpha = 0.01\ncov_threshold = 0.2").unwrap();
    let q = p.with_override(&o);
    assert_eq!((q.alpha, q.tolerance, q.cov_threshold), (0.01, 0.05, 0.2));
    let bad = p.with_override(&GateOverride {
        alpha: Some(1.5),
        ..Default::default()
    });
    assert_eq!(bad.validate().unwrap_err().field, "alpha");
    assert!(toml::from_str::<GateOverride>("alpah = 0.01").is_err());
}
