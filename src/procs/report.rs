//! What `fds` shows: the system-wide table and the ranked processes (plain data).

use std::collections::HashMap;

use serde::Serialize;

use super::container::Container;
use super::growth::Trend;
use super::model::{FdUsage, SystemFds};
use crate::scope::Where;

/// One `fds` run.
#[derive(Debug, Clone, Default)]
pub struct FdsReport {
    /// `None` when /proc/sys/fs could not be read.
    pub system: Option<SystemFds>,
    /// The rows shown, most used first.
    pub processes: Vec<FdUsage>,
    /// How many processes matched before `--top` cut the list.
    pub matched: usize,
    /// Processes whose fds could not be read (counted once each).
    pub unreadable: usize,
    /// Fd slots reserved but not open (a blocked `accept`), by pid, for the rows whose fds
    /// were read. Their `fds` is then the open fds (what `ls /proc/PID/fd` lists, and what
    /// the kinds sum to); the soft limit counts the reserved slots too.
    pub reserved: HashMap<u32, u64>,
    /// Whether the socket column / kinds were read for the rows.
    pub sockets_read: bool,
    pub kinds_read: bool,
    /// `--all-netns`: each shown row's network namespace and container, by pid.
    pub places: HashMap<u32, Where>,
}

/// `fds --by container`: fd use against the limit, per container.
#[derive(Debug, Clone, Serialize)]
pub struct FdsByContainer {
    pub system: Option<SystemFds>,
    /// Processes matched (all grouped).
    pub matched: usize,
    pub unreadable: usize,
    /// Worst first: by the share of its limit the worst process uses, then by fds.
    pub containers: Vec<ContainerFds>,
}

/// One container's processes (or, with `container` null, those outside any container).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerFds {
    pub container: Option<Container>,
    pub processes: usize,
    /// The fds of its readable processes, summed (the kernel's counts).
    pub fds: u64,
    /// Of `processes`, those whose fds could not be read.
    pub unreadable: usize,
    /// The process closest to its soft limit (the first to meet EMFILE).
    pub worst: Option<FdUsage>,
    /// `worst`'s share of its soft limit, in percent.
    pub worst_percent_used: Option<f64>,
}

/// One `--watch` sample.
#[derive(Debug, Clone, Serialize)]
pub struct WatchSample {
    pub sample: usize,
    /// Since the watch began, in µs (durations in JSON are integer `_us`).
    pub elapsed_us: u64,
    pub system: Option<SystemFds>,
    /// How many processes matched (the rows are the first `--top` of them).
    pub matched: usize,
    pub processes: Vec<Trend>,
}

/// The end of a `--watch`: what grew.
#[derive(Debug, Clone, Serialize)]
pub struct WatchSummary {
    pub samples: usize,
    pub elapsed_us: u64,
    /// True when Ctrl-C (SIGINT) ended the watch.
    pub interrupted: bool,
    /// Processes with a positive growth rate at the last sample, soonest exhaustion first.
    pub growing: Vec<Trend>,
}
