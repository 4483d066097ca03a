//! (being written)
pub(crate) fn ser_ms<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> { s.serialize_f64(d.as_secs_f64() * 1e3) }
