//! The values of a scenario file that are more than a number or a word:
//! token lengths, objectives, seconds and an engine, each read straight
//! into the builder's own type so its errors carry the file's line.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::engine::Engine;
use crate::slo::{Slo, SloMetric};
use crate::workload::Lengths;

/// A template parameter's value: a string, or a number or boolean written
/// as one (`{count: 3}` fills `{count}` with `3`).
#[derive(Debug)]
pub(crate) struct CaseValue(pub String);

impl<'de> Deserialize<'de> for CaseValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CaseVisitor).map(CaseValue)
    }
}

struct CaseVisitor;

impl Visitor<'_> for CaseVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter's value: a string, a number or a boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A token length or distribution: `512`, `{min: 100, max: 200}`,
/// `{mean: 300, std_dev: 50}` (optionally with `min` and `max`) or a list
/// `[1024, 2048, 4096]`.
#[derive(Debug)]
pub(crate) struct LengthsValue(pub Lengths);

const LENGTH_FIELDS: &[&str] = &["min", "max", "mean", "std_dev"];

impl<'de> Deserialize<'de> for LengthsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LengthsVisitor).map(LengthsValue)
    }
}

struct LengthsVisitor;

fn tokens<E: de::Error>(n: i64) -> Result<u32, E> {
    u32::try_from(n).map_err(|_| E::custom(format!("{n} is not a number of tokens")))
}

impl<'de> Visitor<'de> for LengthsVisitor {
    type Value = Lengths;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a number of tokens (512), a range {min: 100, max: 200}, a normal distribution \
             {mean: 300, std_dev: 50} or a list [1024, 2048, 4096]",
        )
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Lengths, E> {
        tokens(n).map(Lengths::Fixed)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Lengths, E> {
        tokens(i64::try_from(n).unwrap_or(i64::MAX)).map(Lengths::Fixed)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lengths, A::Error> {
        let mut values = Vec::new();
        while let Some(n) = seq.next_element::<u32>()? {
            values.push(n);
        }
        Ok(Lengths::List(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lengths, A::Error> {
        let (mut min, mut max, mut mean, mut std_dev) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "min" => min = Some(map.next_value::<u32>()?),
                "max" => max = Some(map.next_value::<u32>()?),
                "mean" => mean = Some(map.next_value::<f64>()?),
                "std_dev" => std_dev = Some(map.next_value::<f64>()?),
                other => return Err(de::Error::unknown_field(other, LENGTH_FIELDS)),
            }
        }
        match (mean, std_dev, min, max) {
            (Some(mean), Some(std_dev), min, max) => Ok(match Lengths::normal(mean, std_dev) {
                Lengths::Normal {
                    min: lo, max: hi, ..
                } => Lengths::Normal {
                    mean,
                    std_dev,
                    min: min.unwrap_or(lo),
                    max: max.unwrap_or(hi),
                },
                other => other,
            }),
            (Some(_), None, ..) => Err(de::Error::missing_field("std_dev")),
            (None, Some(_), ..) => Err(de::Error::missing_field("mean")),
            (None, None, Some(min), Some(max)) => Ok(Lengths::Uniform { min, max }),
            (None, None, None, _) => Err(de::Error::missing_field("min")),
            (None, None, Some(_), None) => Err(de::Error::missing_field("max")),
        }
    }
}

/// Objectives, named as the builder's methods are: `{ttft_p95_ms: 500,
/// tpot_p99_ms: 50}`; any percentile is written with `_` for the point
/// (`itl_p99_9_ms`, `e2e_p97_5_ms`). One [`Slo`] of every threshold, in
/// the order written, as the builder's chain makes it.
#[derive(Debug, Default)]
pub(crate) struct SloValue(pub Option<Slo>);

impl<'de> Deserialize<'de> for SloValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SloVisitor).map(SloValue)
    }
}

struct SloVisitor;

const OBJECTIVES: &str = "METRIC_pPERCENTILE_ms, with METRIC one of ttft, itl, tpot, e2e and \
                          PERCENTILE such as 50, 95, 99 or 99_9 (ttft_p95_ms: 500)";

/// `ttft_p99_9_ms` as (ttft, 99.9).
pub(crate) fn objective(key: &str) -> Option<(SloMetric, f64)> {
    let (metric, percentile) = key.strip_suffix("_ms")?.split_once("_p")?;
    let metric = match metric {
        "ttft" => SloMetric::Ttft,
        "itl" => SloMetric::Itl,
        "tpot" => SloMetric::Tpot,
        "e2e" => SloMetric::E2eLatency,
        _ => return None,
    };
    let digits = percentile.chars().all(|c| c.is_ascii_digit() || c == '_');
    let percentile = percentile.replacen('_', ".", 1);
    if !digits || percentile.starts_with('.') || percentile.ends_with('.') {
        return None;
    }
    Some((metric, percentile.parse().ok()?))
}

impl<'de> Visitor<'de> for SloVisitor {
    type Value = Option<Slo>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "objectives, each {OBJECTIVES}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Slo>, A::Error> {
        let mut slos: Option<Slo> = None;
        while let Some(key) = map.next_key::<String>()? {
            let Some((metric, percentile)) = objective(&key) else {
                return Err(de::Error::custom(format!(
                    "unknown objective `{key}`: write {OBJECTIVES}"
                )));
            };
            let ms = map.next_value::<f64>()?;
            let limit = Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
                de::Error::custom(format!("{key}: must be 0 ms or more (got {ms})"))
            })?;
            let slo = Slo::new(metric, percentile, limit);
            slos = Some(match slos {
                Some(before) => before.and(slo),
                None => slo,
            });
        }
        Ok(slos)
    }
}

/// A number of seconds, 0 or more (`30`, `0.5`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Secs(pub Duration);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_f64(SecsVisitor)
    }
}

/// Checks inside the deserializer, so that the error carries the field's
/// path and place.
struct SecsVisitor;

impl Visitor<'_> for SecsVisitor {
    type Value = Secs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds (30, 0.5)")
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Secs, E> {
        Duration::try_from_secs_f64(secs).map(Secs).map_err(|_| {
            E::custom(format!(
                "must be a number of seconds, 0 or more (got {secs})"
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Secs, E> {
        self.visit_f64(secs as f64)
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Secs, E> {
        self.visit_f64(secs as f64)
    }
}

/// An engine spec, as `--engine` takes it:
/// `KIND=URL[,model=NAME][,name=LABEL][,api=ROUTE][,api_key_env=VAR]`.
#[derive(Debug)]
pub(crate) struct EngineValue(pub Engine);

impl<'de> Deserialize<'de> for EngineValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(EngineVisitor)
    }
}

struct EngineVisitor;

impl Visitor<'_> for EngineVisitor {
    type Value = EngineValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an engine, KIND=URL[,model=NAME][,name=LABEL] (openai=http://127.0.0.1:8000)")
    }

    fn visit_str<E: de::Error>(self, spec: &str) -> Result<EngineValue, E> {
        spec.parse()
            .map(EngineValue)
            .map_err(|e: crate::Error| E::custom(e.chain()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_are_named_as_the_builder_names_them() {
        assert_eq!(objective("ttft_p95_ms"), Some((SloMetric::Ttft, 95.0)));
        assert_eq!(objective("itl_p99_9_ms"), Some((SloMetric::Itl, 99.9)));
        assert_eq!(objective("e2e_p50_ms"), Some((SloMetric::E2eLatency, 50.0)));
        assert_eq!(objective("tpot_p97_5_ms"), Some((SloMetric::Tpot, 97.5)));
        for bad in [
            "ttft_p95",
            "ttft95_ms",
            "ttfb_p95_ms",
            "ttft_p_ms",
            "ttft_p9_9_9_ms",
        ] {
            assert_eq!(objective(bad), None, "{bad}");
        }
    }
}
