//! The built-in simulated engine (stub; being written).
