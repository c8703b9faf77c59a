//! `states --by process`: one namespace's sockets counted per owning process (pure). The
//! kernel links a socket to processes only through its inode (held in their fd tables);
//! TIME_WAIT sockets, connections still in an accept queue and orphans have inode 0 and no
//! owner at all, so they are counted apart instead of being guessed at.

use std::collections::HashMap;

use super::model::{ProcessRef, Socket};
use super::states::{StateCounter, StateCounts, StateSummary, TimeWaitSettings};

/// Who holds a row's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Holder {
    /// One process (a socket several processes share counts for each).
    Process,
    /// Nobody: inode 0 (TIME_WAIT, not yet accepted, orphaned).
    None,
    /// A socket with an inode no readable process holds: its holder refused the fd walk, or
    /// it opened or closed between the walk and the dump.
    Unknown,
}

/// One namespace's sockets per holder.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedStates {
    /// Every socket of the namespace, once each (the rows below may count a shared one twice).
    pub all: StateCounts,
    /// By pid.
    pub processes: Vec<(ProcessRef, StateSummary)>,
    pub no_owner: StateSummary,
    pub unknown: StateSummary,
    /// Sockets held by more than one process.
    pub shared: u64,
}

/// The streaming accumulator: one [`StateCounter`] per process, so each process gets its
/// peers and its busiest remote service in the ephemeral range, as a namespace does.
pub struct OwnerCounter {
    range: Option<(u16, u16)>,
    all: StateCounter,
    processes: HashMap<u32, (String, StateCounter)>,
    no_owner: StateCounter,
    unknown: StateCounter,
    shared: u64,
}

impl OwnerCounter {
    pub fn new(range: Option<(u16, u16)>) -> Self {
        OwnerCounter {
            range,
            all: StateCounter::new(range),
            processes: HashMap::new(),
            no_owner: StateCounter::new(range),
            unknown: StateCounter::new(range),
            shared: 0,
        }
    }

    /// Counts `s` for each of `owners` (the processes holding its inode).
    pub fn add(&mut self, s: &Socket, owners: &[ProcessRef]) {
        self.all.add(s);
        if s.inode == 0 {
            self.no_owner.add(s);
            return;
        }
        if owners.is_empty() {
            self.unknown.add(s);
            return;
        }
        self.shared += (owners.len() > 1) as u64;
        for p in owners {
            let range = self.range;
            self.processes
                .entry(p.pid)
                .or_insert_with(|| (p.name.clone(), StateCounter::new(range)))
                .1
                .add(s);
        }
    }

    pub fn finish(self, top: usize, settings: TimeWaitSettings) -> OwnedStates {
        let mut processes: Vec<(ProcessRef, StateSummary)> = self
            .processes
            .into_iter()
            .map(|(pid, (name, c))| (ProcessRef { pid, name }, c.finish(top, settings.clone())))
            .collect();
        processes.sort_by_key(|(p, _)| p.pid);
        OwnedStates {
            all: self.all.finish(0, settings.clone()).states,
            processes,
            no_owner: self.no_owner.finish(top, settings.clone()),
            unknown: self.unknown.finish(top, settings),
            shared: self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::TcpState;

    fn s(state: TcpState, lport: u16, inode: u32) -> Socket {
        Socket {
            inode,
            state,
            ..Socket::test_tcp("10.0.0.1", lport, "10.0.0.9", 443)
        }
    }

    fn p(pid: u32) -> ProcessRef {
        ProcessRef {
            pid,
            name: format!("p{pid}"),
        }
    }

    #[test]
    fn each_socket_goes_to_its_holders_or_to_no_owner() {
        let mut c = OwnerCounter::new(Some((40000, 40099)));
        c.add(&s(TcpState::Established, 40000, 10), &[p(7)]);
        c.add(&s(TcpState::CloseWait, 40001, 11), &[p(7)]);
        // Shared by a parent and its child: counted for each.
        c.add(&s(TcpState::Established, 40002, 12), &[p(7), p(9)]);
        c.add(&s(TcpState::TimeWait, 40003, 0), &[]);
        c.add(&s(TcpState::TimeWait, 40004, 0), &[]);
        c.add(&s(TcpState::Established, 40005, 13), &[]);
        let o = c.finish(5, TimeWaitSettings::default());
        assert_eq!(o.all.total(), 6);
        assert_eq!(o.shared, 1);
        let pids: Vec<u32> = o.processes.iter().map(|(p, _)| p.pid).collect();
        assert_eq!(pids, vec![7, 9]);
        let seven = &o.processes[0].1;
        assert_eq!(seven.total, 3);
        assert_eq!(seven.states.get(TcpState::CloseWait), 1);
        let busiest = seven.ephemeral.as_ref().unwrap().busiest.as_ref().unwrap();
        assert_eq!(busiest.ports_used, 3);
        assert_eq!(o.processes[1].1.total, 1);
        assert_eq!(o.no_owner.states.get(TcpState::TimeWait), 2);
        assert_eq!(o.no_owner.total, 2);
        assert_eq!(o.unknown.total, 1);
    }
}
