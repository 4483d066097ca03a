//! Unit tests of the load shapes: every shape scaled and smoke-tested.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// One of every shape, each valid.
fn every_shape() -> Vec<Load> {
    vec![
        Load::users(4).for_secs(30),
        Load::users(4).think_time(s(1)).requests(10),
        Load::users(1)
            .ramp_to(50, s(60))
            .for_secs(90)
            .warmup_secs(5),
        Load::spike_test(),
        Load::rate(5.0).for_secs(30),
        Load::rate(5.0).poisson().max_in_flight(8).for_secs(30),
        Load::rate(5.0).gamma(0.5).requests(100),
        Load::rate(1.0)
            .ramp_to(20.0, s(30))
            .for_secs(30)
            .warmup_secs(29),
        Load::rate(2.0).spike_to(10.0, s(10), s(20)).for_secs(30),
        Load::users(1).for_secs(60).sweep([1, 2, 4]),
        Load::quick(),
        Load::stress(),
        Load::endurance(),
    ]
}

#[test]
fn duration_scale_shrinks_every_time_of_every_shape_and_keeps_it_valid() {
    for load in every_shape() {
        assert!(load.validate().is_ok(), "{load:?}");
        for factor in [1.0, 0.5, 0.01, 1e-6, 1e-12] {
            let scaled = load.clone().scaled(factor);
            assert!(scaled.validate().is_ok(), "{factor} {scaled:?}");
            for (before, after) in load.phases().iter().zip(scaled.phases()) {
                if let Some(d) = before.duration {
                    let want = (d.as_secs_f64() * factor).max(0.001);
                    let got = after.duration.map(|d| d.as_secs_f64());
                    assert!(got.is_some_and(|g| (g - want).abs() < 1e-9), "{after:?}");
                }
                assert_eq!(after.requests, before.requests);
                assert_eq!(after.level(), before.level());
            }
        }
    }
    let ramp = Load::rate(1.0)
        .ramp_to(20.0, s(60))
        .for_secs(120)
        .warmup_secs(10);
    let half = ramp.scaled(0.5);
    assert_eq!(
        half.profile(),
        Profile::Ramp {
            to: 20.0,
            over: s(30)
        }
    );
    assert_eq!(half.warmup(), Some(s(5)));
    let spike = Load::spike_test().scaled(0.1);
    assert_eq!(
        spike.profile(),
        Profile::Spike {
            peak: 100.0,
            at: s(6),
            hold: s(3)
        }
    );
    assert_eq!(spike.duration(), Some(s(18)));
}

#[test]
fn smoke_is_one_user_two_requests_for_every_shape() {
    for load in every_shape() {
        let smoke = load.smoke();
        assert_eq!(smoke, Load::users(1).requests(2), "{load:?}");
        assert!(smoke.validate().is_ok());
    }
}

#[test]
fn whole_users_accepts_only_whole_counts() {
    assert_eq!(whole_users(50.0), Some(50));
    assert_eq!(whole_users(2.5), None);
    assert_eq!(whole_users(-1.0), None);
    assert_eq!(whole_users(f64::NAN), None);
    assert_eq!(whole_users(1e12), None);
}
