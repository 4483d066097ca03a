//! Load shapes and their seeded schedules, as a user sees them: identical
//! bytes for a shape and seed, Poisson and gamma gaps that pass their
//! statistical tests at a fixed seed, ramps and spikes on their formulas,
//! and bad shapes refused with the field named.

use std::time::Duration;

use llmbench::load::schedule::{arrival_times, user_curve, UserCurve};
use llmbench::load::{Arrivals, Level, Profile};
use llmbench::prelude::*;

/// The seed every statistical test uses: the tests are deterministic.
const SEED: u64 = 20_250_607;
/// Significance level of every statistical test here.
const ALPHA: f64 = 0.01;
/// The standard normal quantile at 1 - ALPHA/2 (two-sided test at ALPHA).
const Z: f64 = 2.575_829_303_548_901;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn times(load: &Load, seed: u64) -> Vec<f64> {
    match arrival_times(load, seed) {
        Ok(t) => t.map(|d| d.as_secs_f64()).collect(),
        Err(e) => panic!("{load:?}: {e}"),
    }
}

fn curve(load: &Load) -> UserCurve {
    match user_curve(load) {
        Ok(c) => c,
        Err(e) => panic!("{load:?}: {e}"),
    }
}

fn gaps(t: &[f64]) -> Vec<f64> {
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The Kolmogorov–Smirnov statistic of `sample` against the CDF `cdf`.
fn ks_statistic(sample: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut x = sample.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    x.iter()
        .enumerate()
        .map(|(i, &xi)| {
            let f = cdf(xi);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// The KS critical value at ALPHA for `n` points (Kolmogorov's asymptotic
/// distribution: c(α) = sqrt(-ln(α/2) / 2), over sqrt(n)).
fn ks_critical(n: usize) -> f64 {
    (-(ALPHA / 2.0).ln() / 2.0).sqrt() / (n as f64).sqrt()
}

fn assert_ks(what: &str, sample: &[f64], cdf: impl Fn(f64) -> f64) {
    let d = ks_statistic(sample, cdf);
    let crit = ks_critical(sample.len());
    eprintln!(
        "{what}: n = {}, D = {d:.5}, critical D at α = {ALPHA}: {crit:.5}",
        sample.len()
    );
    assert!(d < crit, "{what}: D = {d} >= {crit}");
}

/// The Erlang CDF (gamma with whole shape `k`) at rate `lambda`.
fn erlang_cdf(k: u32, lambda: f64, x: f64) -> f64 {
    let lx = lambda * x;
    let (mut term, mut sum) = (1.0, 1.0);
    for i in 1..k {
        term *= lx / f64::from(i);
        sum += term;
    }
    1.0 - (-lx).exp() * sum
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

fn to_bytes(load: &Load, seed: u64) -> Vec<u8> {
    match (arrival_times(load, seed), user_curve(load)) {
        (Ok(t), _) => t.flat_map(|d| d.as_nanos().to_le_bytes()).collect(),
        (_, Ok(c)) => c
            .changes()
            .flat_map(|(t, u)| {
                [
                    t.as_nanos().to_le_bytes().to_vec(),
                    u.to_le_bytes().to_vec(),
                ]
            })
            .flatten()
            .collect(),
        (Err(e), Err(_)) => panic!("{load:?}: {e}"),
    }
}

#[test]
fn the_same_shape_and_seed_give_byte_identical_schedules() {
    let random = [
        Load::rate(50.0).poisson().requests(5_000),
        Load::rate(50.0).gamma(0.5).for_secs(60),
        Load::rate(5.0).poisson().ramp_to(80.0, s(30)).for_secs(60),
        Load::rate(5.0)
            .gamma(3.0)
            .spike_to(50.0, s(20), s(10))
            .for_secs(60),
    ];
    for load in &random {
        let a = to_bytes(load, SEED);
        assert!(a.len() > 16 * 100, "{load:?}");
        assert_eq!(a, to_bytes(load, SEED), "{load:?}");
        assert_ne!(
            a,
            to_bytes(load, SEED + 1),
            "a new seed, new times: {load:?}"
        );
    }
    let fixed = [
        Load::rate(50.0).for_secs(10),
        Load::rate(1.0).ramp_to(20.0, s(10)).for_secs(20),
        Load::users(1).ramp_to(50, s(60)).for_secs(90),
        Load::spike_test(),
    ];
    for load in &fixed {
        assert_eq!(to_bytes(load, SEED), to_bytes(load, SEED + 1), "{load:?}");
    }
}

#[test]
fn poisson_gaps_pass_kolmogorov_smirnov_and_keep_the_rate() {
    let rate = 200.0;
    let t = times(&Load::rate(rate).poisson().requests(20_000), SEED);
    assert_eq!(t.first(), Some(&0.0), "the first arrival is at the start");
    let g = gaps(&t);
    assert_ks("poisson gaps vs Exp(200/s)", &g, |x| {
        1.0 - (-rate * x).exp()
    });
    // The test has power: gaps of another law fail it at the same n.
    let burstier = gaps(&times(&Load::rate(rate).gamma(0.8).requests(20_000), SEED));
    let d = ks_statistic(&burstier, |x| 1.0 - (-rate * x).exp());
    eprintln!("gamma(0.8) gaps vs Exp(200/s): D = {d:.5} (must fail)");
    assert!(
        d > ks_critical(burstier.len()),
        "KS cannot tell gamma(0.8) from Poisson"
    );
    // n - 1 gaps sum to the last time: mean 1/rate, sd 1/(rate·sqrt(n-1)).
    let n = g.len() as f64;
    let measured = n / t[t.len() - 1];
    let tolerance = Z * rate / n.sqrt();
    eprintln!("poisson rate: {measured:.3}/s for {rate}/s, tolerance ±{tolerance:.3}");
    assert!((measured - rate).abs() < tolerance, "{measured}");
}

#[test]
fn gamma_gaps_follow_the_gamma_law_with_mean_one_over_rate() {
    let rate = 10.0;
    // Whole shapes have a closed-form CDF (Erlang): test the distribution.
    for k in [1, 2, 4] {
        let b = f64::from(k);
        let g = gaps(&times(&Load::rate(rate).gamma(b).requests(10_001), SEED));
        let what = format!("gamma({b}) gaps vs Erlang({k}, {}/s)", b * rate);
        assert_ks(&what, &g, |x| erlang_cdf(k, b * rate, x));
    }
    // Any shape: mean 1/rate and variance 1/(b·rate²), within Z standard
    // errors (the variance's from the gamma's kurtosis, 3 + 6/b).
    for b in [0.25, 0.5, 3.7] {
        let g = gaps(&times(&Load::rate(rate).gamma(b).requests(40_001), SEED));
        let n = g.len() as f64;
        let (mean, var) = mean_var(&g);
        let want_var = 1.0 / (b * rate * rate);
        let mean_tol = Z * want_var.sqrt() / n.sqrt();
        let var_tol = Z * want_var * ((2.0 + 6.0 / b) / n).sqrt();
        eprintln!(
            "gamma({b}): mean {mean:.5} (want {:.5} ± {mean_tol:.5}), var {var:.6} \
             (want {want_var:.6} ± {var_tol:.6})",
            1.0 / rate
        );
        assert!(
            (mean - 1.0 / rate).abs() < mean_tol,
            "gamma({b}) mean {mean}"
        );
        assert!((var - want_var).abs() < var_tol, "gamma({b}) var {var}");
    }
}

#[test]
fn constant_arrivals_are_evenly_spaced_and_end_on_time() {
    let t = times(&Load::rate(4.0).for_secs(2), SEED);
    assert_eq!(t, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]);
    assert_eq!(
        times(&Load::rate(10.0).requests(5).for_secs(100), 1).len(),
        5
    );
    assert_eq!(
        times(&Load::rate(1000.0).requests(100_000).for_secs(3), 1).len(),
        3000
    );
}

/// Λ(t) of a rate ramping linearly from r0 to r1 over `over` s, then r1.
fn ramp_intensity(r0: f64, r1: f64, over: f64, t: f64) -> f64 {
    let u = t.min(over);
    r0 * u + (r1 - r0) * u * u / (2.0 * over) + r1 * (t - over).max(0.0)
}

#[test]
fn a_rate_ramp_follows_its_integrated_rate() {
    // Constant spacing on a ramp: arrival k is where Λ(t) = k.
    for (r0, r1, end) in [(1.0, 20.0, 19.97), (20.0, 1.0, 12.34)] {
        let load = Load::rate(r0)
            .ramp_to(r1, s(10))
            .for_duration(Duration::from_secs_f64(end));
        let t = times(&load, SEED);
        for (k, &tk) in t.iter().enumerate() {
            let cum = ramp_intensity(r0, r1, 10.0, tk);
            assert!(
                (cum - k as f64).abs() < 1e-6,
                "{r0}->{r1}: Λ(t_{k}) = {cum}"
            );
        }
        let total = ramp_intensity(r0, r1, 10.0, end);
        assert_eq!(
            t.len() as f64,
            total.ceil(),
            "{r0}->{r1}: one arrival per unit of Λ"
        );
    }
    // Poisson on a ramp: by time rescaling, Λ(t_k) - Λ(t_k-1) ~ Exp(1), and
    // the count after the first is Poisson(Λ(T)).
    let (r0, r1, over, end) = (100.0, 400.0, 60.0, 60.0);
    let load = Load::rate(r0).poisson().ramp_to(r1, s(60)).for_secs(60);
    let t = times(&load, SEED);
    let rescaled: Vec<f64> = t.iter().map(|&x| ramp_intensity(r0, r1, over, x)).collect();
    assert_ks(
        "ramp 100->400/s, rescaled gaps vs Exp(1)",
        &gaps(&rescaled),
        |x| 1.0 - (-x).exp(),
    );
    let expected = ramp_intensity(r0, r1, over, end);
    let count = (t.len() - 1) as f64;
    eprintln!(
        "ramp count {count} for Λ(T) = {expected}, tolerance ±{:.1}",
        Z * expected.sqrt()
    );
    assert!((count - expected).abs() < Z * expected.sqrt(), "{count}");
}

#[test]
fn a_spike_follows_its_formula() {
    // 2/s for 5 s, 10/s from 5 s to 7 s, 2/s to the end at 10 s.
    let load = Load::rate(2.0).spike_to(10.0, s(5), s(2)).for_secs(10);
    let want: Vec<f64> = (0..10)
        .map(|k| 0.5 * f64::from(k))
        .chain((0..20).map(|k| 5.0 + 0.1 * f64::from(k)))
        .chain((0..6).map(|k| 7.0 + 0.5 * f64::from(k)))
        .collect();
    let got = times(&load, SEED);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-9, "{g} vs {w}");
    }
    // Users: base before `at` and from `at + hold`, peak in between.
    let curve = curve(&Load::spike_test());
    for tenth in 0..=2000 {
        let t = f64::from(tenth) / 10.0;
        let want = if (60.0..90.0).contains(&t) { 100 } else { 10 };
        assert_eq!(curve.at(Duration::from_secs_f64(t)), want, "at {t} s");
    }
    let changes: Vec<_> = curve.changes().collect();
    assert_eq!(changes, [(s(0), 10), (s(60), 100), (s(90), 10)]);
    assert_eq!(curve.peak(), 100);
}

#[test]
fn a_user_ramp_adds_one_user_at_a_time_on_schedule() {
    // 1 -> 50 over 98 s: change j at 98·j/49 = 2j s; users(t) = 1 + ⌊t/2⌋.
    let up = curve(&Load::users(1).ramp_to(50, s(98)).for_secs(120));
    let want: Vec<_> = (0..50).map(|j| (s(2 * j), 1 + j as u32)).collect();
    assert_eq!(up.changes().collect::<Vec<_>>(), want);
    // 50 -> 1 over 49 s: users(t) = 50 - ⌊t⌋ until 49 s.
    let down = curve(&Load::users(50).ramp_to(1, s(49)).for_secs(60));
    for quarter in 0..=480 {
        let t = f64::from(quarter) / 4.0;
        let d = Duration::from_secs_f64(t);
        assert_eq!(
            up.at(d),
            1 + (t / 2.0).floor().min(49.0) as u32,
            "up at {t}"
        );
        assert_eq!(down.at(d), 50 - t.floor().min(49.0) as u32, "down at {t}");
    }
}

#[test]
fn sweeps_and_steps_give_one_phase_per_step() {
    let load = Load::users(1).for_secs(30).sweep([1, 2, 4, 8]);
    let levels: Vec<_> = load.phases().iter().filter_map(Load::level).collect();
    assert_eq!(levels, [1, 2, 4, 8].map(Level::Users));
    assert!(load.phases().iter().all(|p| p.duration() == Some(s(30))));
    let rates = Load::steps([Load::rate(1.0), Load::rate(5.0)])
        .poisson()
        .requests(10);
    assert_eq!(rates.phases()[1].level(), Some(Level::Rate(5.0)));
    assert_eq!(times(&rates.phases()[0], 1).len(), 10);
    // Builder calls on a sequence apply to every step.
    let load = Load::steps([Load::rate(1.0), Load::rate(2.0)])
        .poisson()
        .for_secs(10)
        .warmup_secs(2);
    for step in load.phases() {
        assert_eq!(step.arrivals(), Some(Arrivals::Poisson));
        assert_eq!((step.duration(), step.warmup()), (Some(s(10)), Some(s(2))));
    }
    assert_eq!(load.level(), None);
    assert_eq!(Load::users(3).phases(), &[Load::users(3)]);
}

#[test]
fn presets_are_what_their_docs_say() {
    assert_eq!(Load::quick(), Load::users(5).for_secs(60));
    assert_eq!(Load::stress(), Load::users(50).for_secs(300));
    assert_eq!(Load::endurance(), Load::users(10).for_secs(1800));
    let spike = Load::spike_test();
    assert_eq!(spike.level(), Some(Level::Users(10)));
    let burst = Profile::Spike {
        peak: 100.0,
        at: s(60),
        hold: s(30),
    };
    assert_eq!((spike.profile(), spike.duration()), (burst, Some(s(180))));
}

fn bench_error(load: Load) -> String {
    let bench = Bench::new().workload(Workload::prompts(["hi"])).load(load);
    match bench.validate() {
        Ok(_) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_load_specs_are_rejected_naming_the_field() {
    let cases = [
        (
            Load::rate(-1.0).for_secs(10),
            "load.rate: must be positive (got -1)",
        ),
        (
            Load::rate(0.0).requests(5),
            "load.rate: must be positive (got 0)",
        ),
        (
            Load::rate(f64::INFINITY).requests(5),
            "load.rate: must be finite (got inf)",
        ),
        (
            Load::rate(1.0).ramp_to(9.0, Duration::ZERO).for_secs(10),
            "load.ramp.over: must be longer than 0 s",
        ),
        (
            Load::users(10).spike_to(100, s(50), s(20)).for_secs(60),
            "load.spike: ends at 70 s, beyond load.duration (60 s)",
        ),
        (Load::steps([]), "load.steps: empty"),
        (
            Load::users(1).for_secs(1).sweep(Vec::<u32>::new()),
            "load.steps: empty",
        ),
        (
            Load::rate(1.0).gamma(-1.0).requests(5),
            "load.burstiness: must be positive (got -1)",
        ),
        (
            Load::rate(1.0).max_in_flight(0).requests(5),
            "load.max_in_flight: must be at least 1",
        ),
        (
            Load::users(2).for_secs(30).warmup_secs(30),
            "load.warmup: must be shorter than load.duration",
        ),
        (
            Load::users(0).for_secs(1),
            "load.users: must be at least 1 (got 0)",
        ),
    ];
    for (load, want) in cases {
        let got = bench_error(load);
        assert!(got.contains(want), "want `{want}`, got `{got}`");
    }
}

#[test]
fn run_once_refuses_a_sequence_the_harness_runs_step_by_step() {
    let bench = Bench::new()
        .workload(Workload::prompts(["hi"]))
        .load(Load::users(1).for_secs(1).sweep([1, 2]));
    let engine = Engine::openai("http://127.0.0.1:9", "none");
    let got = llmbench::harness::run_once("steps", &bench, &engine).map(|run| run.records.len());
    let msg = got.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("load.steps: run_once runs one load"), "{msg}");
    assert!(bench_error(Load::quick()) == "accepted");
}
