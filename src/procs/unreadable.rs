//! Processes whose fds could not be read, and which of them a note should name: only those
//! that could hold something being shown. A process in another network namespace cannot own a
//! socket of this one, so `--netns` runs do not mention the host's PID 1.

use super::fdwalk::read_comm;
use crate::host::Host;

/// A process that refused to show its fds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub pid: u32,
    /// From /proc/PID/comm (readable even where the fds are not); untrusted text.
    pub name: String,
    /// Its network namespace's inode, `None` when that link is refused too.
    pub netns: Option<u64>,
}

/// What can be learnt about a denied process without its fds.
pub fn describe(host: &dyn Host, root: &str, pid: u32) -> Denied {
    Denied {
        pid,
        name: read_comm(host, root, pid).unwrap_or_default(),
        netns: host
            .stat(&format!("{root}/{pid}/ns/net"))
            .ok()
            .map(|m| m.ino),
    }
}

/// The network namespace this thread is in (after `--netns` entered one).
pub fn current_netns(host: &dyn Host) -> Option<u64> {
    host.stat(&format!("{}/thread-self/ns/net", crate::host::PROC))
        .ok()
        .map(|m| m.ino)
}

/// The denied processes worth naming for a view of sockets: none when every socket shown
/// found its owner (the refusal hid nothing), else those that could hold one of them — in the
/// namespace shown (`shown_netns`; `None` = any), or in a namespace that could not be read.
/// Sorted by pid, each once.
pub fn could_own(denied: &[Denied], shown_netns: Option<u64>, unowned_shown: bool) -> Vec<Denied> {
    if !unowned_shown {
        return Vec::new();
    }
    let mut v: Vec<Denied> = denied
        .iter()
        .filter(|d| shown_netns.is_none() || d.netns.is_none() || d.netns == shown_netns)
        .cloned()
        .collect();
    v.sort_by_key(|d| d.pid);
    v.dedup_by_key(|d| d.pid);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(pid: u32, netns: Option<u64>) -> Denied {
        Denied {
            pid,
            name: format!("p{pid}"),
            netns,
        }
    }

    #[test]
    fn only_processes_that_could_own_a_shown_socket_are_named() {
        let host = 4026531840;
        let test_ns = 4026532999;
        let all = [
            d(77, Some(host)),
            d(1, None),
            d(5, Some(test_ns)),
            d(5, Some(test_ns)),
        ];
        // Every socket shown has its owner: nothing to say.
        assert!(could_own(&all, Some(test_ns), false).is_empty());
        // --netns of the test namespace: the host's process is out, the unknown one stays.
        let pids = |v: Vec<Denied>| v.iter().map(|d| d.pid).collect::<Vec<_>>();
        assert_eq!(pids(could_own(&all, Some(test_ns), true)), [1, 5]);
        // Host view: only host (or unknown) processes.
        assert_eq!(pids(could_own(&all, Some(host), true)), [1, 77]);
        // No namespace to compare with (explicit --pid): all of them, once each.
        assert_eq!(pids(could_own(&all, None, true)), [1, 5, 77]);
    }

    #[test]
    fn describes_a_live_process() {
        let me = describe(
            &crate::host::LiveHost,
            crate::host::PROC,
            std::process::id(),
        );
        assert_eq!(me.netns, current_netns(&crate::host::LiveHost));
        assert!(!me.name.is_empty());
    }
}
