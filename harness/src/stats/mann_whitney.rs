//! The two-sided Mann–Whitney U test (Wilcoxon rank-sum test).
//!
//! It asks whether one sample tends to hold larger values than the other, without assuming
//! normality; run times are skewed and often bimodal, so a t-test would be the wrong tool.
//!
//! * With no ties and `n_base + n_head <=` [`EXACT_MAX_TOTAL`], the p-value is exact: the
//!   null distribution of U is counted from the coefficients of the Gaussian binomial
//!   coefficient `[m+n choose m]_q` (Mann & Whitney 1947), `2 · P(U ≥ max(U₁, U₂))`.
//! * Otherwise it uses the normal approximation with the tie correction of the variance
//!   and a continuity correction of ½, as SciPy's `mannwhitneyu(method="asymptotic")`
//!   does.
//!
//! # Too few samples
//!
//! The test has a floor: however far apart two samples are, the most extreme arrangement
//! (every head value beyond every base value) has probability `1 / C(m+n, m)` under the
//! null hypothesis, so no two-sided exact p-value is below `2 / C(m+n, m)`
//! ([`min_p_value`]). With 3 values a side that is 2/20 = 0.1: no difference, however
//! large, reaches α = 0.05. [`can_reach`] says whether sample sizes can reach α, and
//! [`min_repetitions`] gives the fewest equal sample sizes that can (4 for α = 0.05).
//!
//! ```
//! use harness::stats::mann_whitney::{can_reach, min_p_value, min_repetitions};
//!
//! assert!((min_p_value(3, 3) - 0.1).abs() < 1e-12);
//! assert!(!can_reach(0.05, 3, 3));
//! assert!(can_reach(0.05, 4, 4)); // 2/70 ≈ 0.029
//! assert_eq!(min_repetitions(0.05), 4);
//! ```

use serde::{Deserialize, Serialize};

use super::{StatsError, check_sample};

/// Largest `n_base + n_head` for which the exact distribution is counted. The counts stay
/// exact in `i128` far beyond this; 40 bounds the work at ~m·(m·n) additions.
pub const EXACT_MAX_TOTAL: usize = 40;

/// How the p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UMethod {
    /// Exact null distribution (no ties, small samples).
    Exact,
    /// Normal approximation with tie and continuity corrections.
    Normal,
}

/// The outcome of a U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U statistic of the base sample: the number of (base, head) pairs where the base
    /// value is larger, ties counting ½.
    pub u_base: f64,
    /// U statistic of the head sample; `u_base + u_head = n_base · n_head`.
    pub u_head: f64,
    /// Two-sided p-value, in (0, 1].
    pub p_value: f64,
    /// How the p-value was obtained.
    pub method: UMethod,
}

/// Runs the two-sided U test of `base` against `head`.
pub fn mann_whitney(base: &[f64], head: &[f64]) -> Result<MannWhitney, StatsError> {
    check_sample(base)?;
    check_sample(head)?;
    let (m, n) = (base.len(), head.len());
    let ranked = midranks(base, head);
    let rank_sum_base: f64 = ranked.ranks[..m].iter().sum();
    let u_base = rank_sum_base - (m * (m + 1)) as f64 / 2.0;
    let u_head = (m * n) as f64 - u_base;
    let u_max = u_base.max(u_head);

    let (p, method) = if ranked.tie_term == 0.0 && m + n <= EXACT_MAX_TOTAL {
        (
            exact_upper_tail(m, n, u_max.round() as usize) * 2.0,
            UMethod::Exact,
        )
    } else {
        (normal_p(m, n, u_max, ranked.tie_term), UMethod::Normal)
    };
    Ok(MannWhitney {
        u_base,
        u_head,
        p_value: p.min(1.0),
        method,
    })
}

/// The smallest two-sided exact p-value a U test of sample sizes `m` and `n` can give:
/// `2 / C(m+n, m)`, the probability of the one most extreme arrangement in each tail
/// (capped at 1). 1 for an empty sample.
pub fn min_p_value(m: usize, n: usize) -> f64 {
    if m == 0 || n == 0 {
        return 1.0;
    }
    // C(m+n, m) = Π_{i=1..k} (max + i) / i with k = min(m, n); exact in f64 far beyond
    // any sample size a benchmark holds, and it only grows, so overflow means "tiny p".
    let (k, big) = (m.min(n), m.max(n));
    let ways = (1..=k).fold(1.0f64, |c, i| c * (big + i) as f64 / i as f64);
    (2.0 / ways).min(1.0)
}

/// Whether samples of sizes `m` and `n` can reach `p < alpha` at all.
pub fn can_reach(alpha: f64, m: usize, n: usize) -> bool {
    m > 0 && n > 0 && min_p_value(m, n) < alpha
}

/// The fewest values a side (both sides equal) with which the two-sided test can reach
/// `p < alpha`: 4 for α = 0.05, 5 for α = 0.01. `alpha` must be in (0, 1).
pub fn min_repetitions(alpha: f64) -> u32 {
    // 2 / C(2r, r) falls faster than 4^-r; r = 64 reaches below 1e-36.
    (1..=64u32)
        .find(|&r| can_reach(alpha, r as usize, r as usize))
        .unwrap_or(64)
}

struct Ranked {
    /// Midranks (1-based) of the pooled sample, base values first.
    ranks: Vec<f64>,
    /// Σ (t³ − t) over groups of t tied values.
    tie_term: f64,
}

fn midranks(base: &[f64], head: &[f64]) -> Ranked {
    let pooled: Vec<f64> = base.iter().chain(head).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pooled[order[j + 1]] == pooled[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share the mean of ranks i+1..=j+1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    Ranked { ranks, tie_term }
}

/// Frequencies of U = 0..=m·n under the null hypothesis for sample sizes m and n: the
/// coefficients of `[m+n choose m]_q = Π_{i=1..m} (1 − q^{n+i}) / (1 − q^i)`, computed in
/// the power-series ring truncated at degree m·n (exact, since the result has that degree).
pub fn u_frequencies(m: usize, n: usize) -> Vec<i128> {
    let len = m * n + 1;
    let mut p = vec![0i128; len];
    p[0] = 1;
    for i in 1..=m {
        // Multiply by (1 − q^{n+i}).
        let shift = n + i;
        for k in (shift..len).rev() {
            p[k] -= p[k - shift];
        }
        // Divide by (1 − q^i): multiply by 1 + q^i + q^{2i} + …
        for k in i..len {
            p[k] += p[k - i];
        }
    }
    p
}

/// P(U ≥ u) for sample sizes m and n without ties.
fn exact_upper_tail(m: usize, n: usize, u: usize) -> f64 {
    let freq = u_frequencies(m, n);
    let total: i128 = freq.iter().sum();
    let tail: i128 = freq.iter().skip(u).sum();
    tail as f64 / total as f64
}

fn normal_p(m: usize, n: usize, u_max: f64, tie_term: f64) -> f64 {
    let (mf, nf) = (m as f64, n as f64);
    let total = mf + nf;
    let mu = mf * nf / 2.0;
    let var = if total > 1.0 {
        mf * nf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)))
    } else {
        0.0
    };
    if var <= 0.0 {
        // Every value tied: no evidence of a difference.
        return 1.0;
    }
    let z = (u_max - mu - 0.5) / var.sqrt();
    // Two-sided: 2 · (1 − Φ(z)) = erfc(z / √2).
    libm::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(U ≤ u) for the lower tail.
    fn lower_tail(m: usize, n: usize, u: usize) -> f64 {
        let freq = u_frequencies(m, n);
        let total: i128 = freq.iter().sum();
        freq[..=u].iter().sum::<i128>() as f64 / total as f64
    }

    #[test]
    fn frequencies_count_all_arrangements() {
        // Σ freq = C(m+n, m); the distribution is symmetric.
        let f = u_frequencies(4, 6);
        assert_eq!(f.iter().sum::<i128>(), 210);
        assert_eq!(f.len(), 25);
        for u in 0..f.len() {
            assert_eq!(f[u], f[f.len() - 1 - u]);
        }
        // m = n = 2: arrangements give U = 0,1,2,2,3,4.
        assert_eq!(u_frequencies(2, 2), vec![1, 1, 2, 1, 1]);
    }

    /// Two-tailed α = 0.05 critical values of U from the standard table (Zar, *Biostatistical
    /// Analysis*, 5th ed., Table B.11; the same values as Milton 1964, JASA 59:925): U ≤ c is
    /// significant, so 2·P(U ≤ c) ≤ 0.05 < 2·P(U ≤ c + 1).
    #[test]
    fn exact_distribution_reproduces_published_critical_values() {
        let table = [
            (5, 5, 2),
            (6, 6, 5),
            (7, 7, 8),
            (8, 8, 13),
            (10, 10, 23),
            (5, 10, 8),
            (20, 20, 127),
        ];
        for (m, n, c) in table {
            assert!(2.0 * lower_tail(m, n, c) <= 0.05, "({m},{n}) at {c}");
            assert!(
                2.0 * lower_tail(m, n, c + 1) > 0.05,
                "({m},{n}) at {}",
                c + 1
            );
        }
    }

    /// SciPy's `mannwhitneyu` documentation example (ages of male and female staff, from
    /// Conover, *Practical Nonparametric Statistics*): U₁ = 17, exact p = 0.1111,
    /// asymptotic p = 0.11134688653314041.
    #[test]
    fn scipy_documentation_example() {
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let r = mann_whitney(&males, &females).unwrap();
        assert_eq!(r.u_base, 17.0);
        assert_eq!(r.u_head, 3.0);
        assert_eq!(r.method, UMethod::Exact);
        assert!((r.p_value - 1.0 / 9.0).abs() < 1e-12, "{}", r.p_value);
        let approx = normal_p(5, 4, 17.0, 0.0);
        assert!((approx - 0.11134688653314041).abs() < 1e-12, "{approx}");
    }

    /// R's `wilcox.test` documentation example (Hollander & Wolfe 1973, p. 69: permeability
    /// constants at term and at 12–26 weeks): W = 35, one-sided p = 0.1272, so the
    /// two-sided exact p is 0.2544 (SciPy, `method="exact"`: 0.2544122544122544).
    #[test]
    fn hollander_wolfe_example() {
        let x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
        let y = [1.15, 0.88, 0.90, 0.74, 1.21];
        let r = mann_whitney(&x, &y).unwrap();
        assert_eq!(r.u_base, 35.0);
        assert_eq!(r.method, UMethod::Exact);
        assert!(
            (r.p_value - 0.2544122544122544).abs() < 1e-12,
            "{}",
            r.p_value
        );
    }

    /// With ties the normal approximation applies, with the tie-corrected variance. Hand
    /// computation: base [1, 2, 2, 3], head [2, 3, 4, 5]; midranks base 1, 3, 3, 5.5 → R = 12.5,
    /// U_base = 2.5, U_head = 13.5; ties (2: t = 3, 3: t = 2) → Σ(t³ − t) = 30;
    /// σ² = 16/12 · (9 − 30/56) = 11.2857; z = (13.5 − 8 − 0.5)/3.3594 = 1.4883;
    /// p = 2·(1 − Φ(1.4883)) = 0.13666 (SciPy, `method="asymptotic"`: 0.1366582477381475).
    #[test]
    fn ties_use_corrected_normal_approximation() {
        let r = mann_whitney(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(r.method, UMethod::Normal);
        assert_eq!((r.u_base, r.u_head), (2.5, 13.5));
        assert!(
            (r.p_value - 0.1366582477381475).abs() < 1e-12,
            "{}",
            r.p_value
        );
    }

    #[test]
    fn large_samples_use_normal_approximation_and_detect_a_shift() {
        let base: Vec<f64> = (0..30).map(|i| 100.0 + i as f64 * 0.1).collect();
        let head: Vec<f64> = (0..30).map(|i| 110.0 + i as f64 * 0.1).collect();
        let r = mann_whitney(&base, &head).unwrap();
        assert_eq!(r.method, UMethod::Normal);
        assert_eq!(r.u_base, 0.0);
        assert!(r.p_value < 1e-9, "{}", r.p_value);
    }

    /// The floor agrees with the exact distribution: the most separated samples give it.
    #[test]
    fn min_p_value_is_the_most_extreme_arrangement() {
        for (m, n) in [(2, 2), (3, 3), (3, 4), (4, 4), (5, 5), (3, 8), (10, 10)] {
            let freq = u_frequencies(m, n);
            let total: i128 = freq.iter().sum();
            let exact = 2.0 / total as f64;
            assert!((min_p_value(m, n) - exact).abs() < 1e-15, "({m},{n})");
            let base: Vec<f64> = (0..m).map(|i| i as f64).collect();
            let head: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
            let p = mann_whitney(&base, &head).unwrap().p_value;
            assert!(
                (p - min_p_value(m, n).min(1.0)).abs() < 1e-12,
                "({m},{n}): {p}"
            );
        }
        assert_eq!(min_p_value(1, 1), 1.0);
        assert_eq!(min_p_value(0, 5), 1.0);
    }

    #[test]
    fn too_few_values_cannot_reach_alpha() {
        assert!(!can_reach(0.05, 3, 3));
        assert!(can_reach(0.05, 4, 4));
        // Unequal sizes: 3 vs 4 gives 2/35 ≈ 0.057, 3 vs 5 gives 2/56 ≈ 0.036.
        assert!(!can_reach(0.05, 3, 4));
        assert!(can_reach(0.05, 3, 5));
        assert!(!can_reach(0.05, 0, 10));
        assert_eq!(min_repetitions(0.05), 4);
        assert_eq!(min_repetitions(0.01), 5); // 5 vs 5: 2/252 ≈ 0.008
        assert_eq!(min_repetitions(0.001), 7); // 6 vs 6: 2/924 ≈ 0.0022
    }

    #[test]
    fn identical_samples_give_p_one() {
        let xs = [3.0, 1.0, 2.0, 5.0];
        let r = mann_whitney(&xs, &xs).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(mann_whitney(&[4.0; 5], &[4.0; 5]).unwrap().p_value, 1.0);
    }
}
