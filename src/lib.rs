//! sockscope as a library: collectors (kernel, procfs, pcap), plain models, pure analysis and
//! renderers. The binary in `main.rs` only parses arguments and wires these together.

pub mod capture;
pub mod cli;
pub mod commands;
pub mod completions;
pub mod counters;
pub mod doctor;
pub mod exit;
pub mod exporter;
pub mod fxhash;
pub mod host;
pub mod manpages;
pub mod mem;
pub mod netns;
pub mod procs;
pub mod render;
pub mod report;
pub mod scope;
pub mod sockets;
pub mod summary;
pub mod units;
