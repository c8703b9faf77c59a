//! `doctor`, `explain` and `pool`: the lesson's symptom → cause → fix table as data
//! (`table.rs`), evidence collectors (`collect.rs`, `counters.rs`, `probe.rs`), pure checks
//! (`checks.rs`, `diagnose.rs`) and pool arithmetic (`pool.rs`).

pub mod checks;
pub mod collect;
pub mod counters;
pub mod diagnose;
pub mod errnos;
pub mod error;
pub mod firewall;
pub mod model;
pub mod pool;
pub mod probe;
pub mod table;
pub mod target;
pub mod trace;
