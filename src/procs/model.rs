//! The process/fd model shared by `fds` and `doctor`: plain data, no I/O.

use std::collections::BTreeMap;

use serde::Serialize;

/// The system-wide file table (`/proc/sys/fs/file-nr`, `file-max`, `nr_open`). ENFILE comes
/// when `allocated` reaches `max`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SystemFds {
    /// File handles allocated (first field of file-nr).
    pub allocated: u64,
    /// Allocated but unused handles (second field; 0 on modern kernels).
    pub free: u64,
    /// The ceiling, fs.file-max (third field of file-nr).
    pub max: u64,
    /// fs.nr_open: the highest RLIMIT_NOFILE a process may be given.
    pub nr_open: Option<u64>,
}

/// One process's fd use against its RLIMIT_NOFILE. EMFILE comes when `fds` reaches
/// `soft_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdUsage {
    pub pid: u32,
    /// From /proc/PID/comm; untrusted text, escape before printing.
    pub name: String,
    /// Open fds, `None` when the process could not be read (permission).
    pub fds: Option<u64>,
    /// `None` means unlimited (JSON null).
    pub soft_limit: Option<u64>,
    pub hard_limit: Option<u64>,
    /// How many of the fds are sockets, when the fds were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u64>,
    /// Breakdown by kind (`tcp`, `udp`, `unix`, `other_socket`, `file`, `pipe`, `anon_inode`,
    /// `device`, `other`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<BTreeMap<String, u64>>,
}

impl FdUsage {
    /// Percentage of the soft limit in use, when both are known.
    pub fn percent_used(&self) -> Option<f64> {
        match (self.fds, self.soft_limit) {
            (Some(n), Some(lim)) if lim > 0 => Some(n as f64 * 100.0 / lim as f64),
            _ => None,
        }
    }
}
