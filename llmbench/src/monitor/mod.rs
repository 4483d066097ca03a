//! What the machine and the engine did during a run. For now: the parser
//! of the Prometheus text format engines expose at `/metrics`.

pub mod prometheus;
