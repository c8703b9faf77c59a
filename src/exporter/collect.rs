//! Every reading the exporter serves, gathered in one function ([`Collector::collect`]) from
//! sockscope's own collectors: one TCP dump (states, listeners, TIME_WAIT and ephemeral ports
//! per peer), one UDP dump (counts), the kernel counters, one stat per process (fds against
//! limits), the system file table, and the doctor's checks over all of it. Runs in the calling
//! thread's network namespace; returns plain data, which `metrics.rs` renders.
//!
//! Doctor findings need counters over an interval: the exporter uses the previous scrape as
//! the first reading, so a counter finding (resets, overflows, UDP drops) is about the time
//! since the last scrape, and the first scrape after start has none. Findings that need no
//! interval (accept queues, TIME_WAIT, CLOSE_WAIT, fd limits, file-nr) are there from the
//! first scrape.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::owner_cache::OwnerCache;
use crate::doctor::checks::{CounterDelta, CLOSE_WAIT_WARN};
use crate::doctor::collect::HostEvidence;
use crate::doctor::counters::{read_counters, Counters};
use crate::doctor::diagnose::diagnose_host;
use crate::procs::model::{FdUsage, SystemFds};
use crate::procs::usage::{read_system, scan_counts, ProcScan, ProcSelect};
use crate::sockets::diag::DiagError;
use crate::sockets::filter::Selection;
use crate::sockets::for_each_socket;
use crate::sockets::listeners::{is_listener, to_listener, Listener};
use crate::sockets::model::{Endpoint, ProcessRef, Proto, TcpState};
use crate::sockets::states::{StateCounter, StateSummary};
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};

/// What to collect.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `netns` label: the `--netns` spec as typed, or "host".
    pub netns: String,
    /// Only processes in this network namespace (`--netns`); every process when `None`.
    pub netns_inode: Option<u64>,
    /// How many peers and processes get their own series (`--top`).
    pub top: usize,
    /// `/proc`, except in tests.
    pub proc_root: String,
}

/// One listening address, with its sockets merged (SO_REUSEPORT gives several per address).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRow {
    pub addr: String,
    pub port: u16,
    /// The names of the processes holding it, sorted and joined by ","; "" when unknown.
    pub process: String,
    pub accept_queue: u64,
    pub backlog: u64,
    /// Sockets of this address whose queue is past their backlog (the kernel drops SYNs).
    pub overflowing: u64,
}

/// Ephemeral ports in use toward one remote service.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPorts {
    pub peer: Endpoint,
    pub ports_used: u64,
    pub time_wait: u64,
}

/// One collection. Absent parts (`None`, empty) could not be read; `errors` says which.
#[derive(Debug, Default)]
pub struct Sample {
    pub netns: String,
    /// (proto, state) → sockets.
    pub sockets: Vec<(Proto, TcpState, u64)>,
    pub listeners: Vec<ListenerRow>,
    /// The kernel's counters since the namespace was created.
    pub counters: Option<Counters>,
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u16, u16)>,
    /// TCP sockets whose local port is in the ephemeral range (connections made from here).
    pub ephemeral_in_use: u64,
    /// The `top` remote services by ephemeral ports used.
    pub peer_ports: Vec<PeerPorts>,
    /// The `top` processes by share of their soft limit.
    pub processes: Vec<FdUsage>,
    pub unreadable_processes: usize,
    pub system: Option<SystemFds>,
    /// Doctor findings: (symptom, severity), one per pair.
    pub findings: Vec<(&'static str, &'static str)>,
    /// Collectors that failed this time, with the error.
    pub errors: Vec<(&'static str, String)>,
    pub duration_seconds: f64,
    /// fd tables walked for owners (0 on a warm scrape of an unchanged host).
    pub owner_walks: usize,
    /// Seconds spent in each part of the collection, in order (where a slow scrape's time
    /// goes: `sockscope_scrape_phase_seconds`).
    pub phases: Vec<(&'static str, f64)>,
}

/// Times the parts of one collection.
struct Lap(Instant);

impl Lap {
    fn mark(&mut self, s: &mut Sample, phase: &'static str) {
        let now = Instant::now();
        s.phases.push((phase, now.duration_since(self.0).as_secs_f64()));
        self.0 = now;
    }
}

/// The state kept between scrapes: the owner cache, the previous counters (the doctor's first
/// reading) and the running error counts.
#[derive(Debug, Default)]
pub struct Collector {
    owners: OwnerCache,
    previous: Option<(Counters, Instant)>,
    /// Errors per collector since start (the `sockscope_scrape_errors_total` counter).
    pub errors_total: HashMap<&'static str, u64>,
}

/// What one TCP dump keeps.
struct Tcp {
    summary: StateSummary,
    listeners: Vec<Listener>,
    close_wait: Vec<u32>,
    ephemeral_in_use: u64,
    peers: HashMap<Endpoint, (u64, u64)>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// One collection: never fails as a whole; what could not be read is in `errors`.
    pub fn collect(&mut self, plan: &Plan) -> Sample {
        let t0 = Instant::now();
        let mut s = Sample {
            netns: plan.netns.clone(),
            ..Default::default()
        };
        let mut lap = Lap(t0);
        let range = read_port_range();
        s.port_range = range;
        let tcp = match dump_tcp(range) {
            Ok(t) => Some(t),
            Err(e) => {
                s.errors.push(("tcp", e.to_string()));
                None
            }
        };
        lap.mark(&mut s, "tcp");
        match count_udp() {
            Ok(c) => s.sockets.extend(c),
            Err(e) => s.errors.push(("udp", e.to_string())),
        }
        lap.mark(&mut s, "udp");
        let counters = match read_counters() {
            Ok(c) => Some(c),
            Err(e) => {
                s.errors.push(("netstat", e.to_string()));
                None
            }
        };
        lap.mark(&mut s, "netstat");
        let mut scan = match scan_counts(
            &plan.proc_root,
            &ProcSelect {
                netns_inode: plan.netns_inode,
                ..Default::default()
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                s.errors.push(("proc", e.to_string()));
                ProcScan::default()
            }
        };
        if plan.netns_inode.is_some() {
            // The exporter's collecting thread sits in the namespace; it observes, it is not
            // one of the namespace's processes.
            let me = std::process::id();
            scan.processes.retain(|p| p.pid != me);
        }
        s.unreadable_processes = scan.unreadable;
        s.system = match read_system(&plan.proc_root) {
            Ok(sys) => Some(sys),
            Err(e) => {
                s.errors.push(("file-nr", e.to_string()));
                None
            }
        };
        lap.mark(&mut s, "proc");
        self.owners.refresh(&scan.processes, &plan.proc_root);
        lap.mark(&mut s, "owners");
        let delta = match (&self.previous, &counters) {
            (Some((before, t)), Some(now)) => CounterDelta {
                delta: before.delta(now),
                seconds: t.elapsed().as_secs_f64(),
            },
            _ => CounterDelta {
                delta: Counters::default(),
                seconds: 0.0,
            },
        };
        if let Some(tcp) = tcp {
            let Tcp {
                summary,
                mut listeners,
                mut close_wait,
                ephemeral_in_use,
                peers,
            } = tcp;
            if (close_wait.len() as u64) < CLOSE_WAIT_WARN {
                close_wait.clear();
            }
            let mut wanted: HashSet<u32> = listeners
                .iter()
                .map(|l| l.socket.inode)
                .filter(|&i| i != 0)
                .collect();
            wanted.extend(&close_wait);
            let owners = self
                .owners
                .owners(&wanted, &scan.processes, &plan.proc_root);
            for l in &mut listeners {
                l.socket.processes = owners.get(&l.socket.inode).cloned();
            }
            lap.mark(&mut s, "owners");
            let close_wait_holders = holders(&close_wait, &owners);
            s.sockets.extend(
                TcpState::ALL
                    .iter()
                    .map(|&st| (Proto::Tcp, st, summary.states.get(st))),
            );
            s.listeners = listener_rows(&listeners);
            s.ephemeral_in_use = ephemeral_in_use;
            s.peer_ports = top_peers(peers, plan.top);
            let ev = HostEvidence {
                listeners,
                states: summary,
                counters: delta,
                processes: scan.clone(),
                system: s.system.clone(),
                close_wait_holders,
                udp_dropping: Vec::new(),
                // A stuck reader needs two readings of one socket's queue; not tracked
                // across scrapes yet.
                stuck_readers: Vec::new(),
            };
            let report = diagnose_host(&ev);
            let mut seen = HashSet::new();
            for f in &report.findings {
                if seen.insert((f.symptom, f.severity.name())) {
                    s.findings.push((f.symptom.id(), f.severity.name()));
                }
            }
            lap.mark(&mut s, "doctor");
        }
        s.owner_walks = self.owners.last_walks;
        // Counted fds but unreadable links (no CAP_SYS_PTRACE): their sockets go unnamed.
        s.unreadable_processes += self.owners.denied();
        s.processes = top_processes(scan.processes, plan.top);
        if let Some(c) = &counters {
            self.previous = Some((c.clone(), Instant::now()));
        }
        s.counters = counters;
        for (what, _) in &s.errors {
            *self.errors_total.entry(what).or_default() += 1;
        }
        s.duration_seconds = t0.elapsed().as_secs_f64();
        s
    }
}

/// One dump of every TCP socket, counted as it streams (nothing but listeners and CLOSE_WAIT
/// inodes is kept, so memory follows the number of peers, not of sockets).
fn dump_tcp(range: Option<(u16, u16)>) -> Result<Tcp, DiagError> {
    let settings = read_time_wait_settings();
    let mut counter = StateCounter::new(range);
    let mut listeners = Vec::new();
    let mut close_wait = Vec::new();
    let mut ephemeral_in_use = 0;
    let mut peers: HashMap<Endpoint, (u64, u64)> = HashMap::new();
    for_each_socket(&Selection::every_tcp(), Default::default(), &mut |s| {
        counter.add(&s);
        match s.state {
            TcpState::Listening => {
                if is_listener(&s) {
                    listeners.push(to_listener(s));
                }
                return;
            }
            TcpState::CloseWait if s.inode != 0 => close_wait.push(s.inode),
            TcpState::Close => return,
            _ => {}
        }
        // The same rule as `states`: each (local addr, peer addr, peer port) can use each
        // ephemeral port once, so use is counted per remote service.
        if let Some((lo, hi)) = range {
            if s.peer.port != 0 && (lo..=hi).contains(&s.local.port) {
                ephemeral_in_use += 1;
                let peer = Endpoint {
                    addr: match s.peer.addr {
                        std::net::IpAddr::V6(v6) => v6
                            .to_ipv4_mapped()
                            .map(std::net::IpAddr::V4)
                            .unwrap_or(s.peer.addr),
                        v4 => v4,
                    },
                    port: s.peer.port,
                };
                let e = peers.entry(peer).or_default();
                e.0 += 1;
                e.1 += (s.state == TcpState::TimeWait) as u64;
            }
        }
    })?;
    Ok(Tcp {
        summary: counter.finish(5, settings),
        listeners,
        close_wait,
        ephemeral_in_use,
        peers,
    })
}

/// UDP sockets per state (unconnected ones read "close", connected ones "established"). A
/// kernel without udp_diag has none to count, which is not an error.
fn count_udp() -> Result<Vec<(Proto, TcpState, u64)>, DiagError> {
    let sel = Selection {
        protos: vec![Proto::Udp],
        families: vec![4, 6],
        states: 0,
        user: Default::default(),
    };
    let mut counts: HashMap<TcpState, u64> = HashMap::new();
    match for_each_socket(&sel, Default::default(), &mut |s| {
        *counts.entry(s.state).or_default() += 1
    }) {
        Ok(()) | Err(DiagError::NoKernelSupport { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok([TcpState::Close, TcpState::Established]
        .into_iter()
        .map(|st| (Proto::Udp, st, counts.get(&st).copied().unwrap_or(0)))
        .collect())
}

/// Who holds the CLOSE_WAIT sockets, most first (what doctor's check names).
fn holders(close_wait: &[u32], owners: &HashMap<u32, Vec<ProcessRef>>) -> Vec<(ProcessRef, u64)> {
    let mut held: HashMap<u32, (ProcessRef, u64)> = HashMap::new();
    for i in close_wait {
        for p in owners.get(i).into_iter().flatten() {
            held.entry(p.pid).or_insert_with(|| (p.clone(), 0)).1 += 1;
        }
    }
    let mut held: Vec<_> = held.into_values().collect();
    held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    held
}

/// Listening sockets merged per (address, port, owners): one series each.
pub fn listener_rows(listeners: &[Listener]) -> Vec<ListenerRow> {
    let mut rows: Vec<ListenerRow> = Vec::new();
    for l in listeners {
        let mut names: Vec<&str> = l
            .socket
            .processes
            .iter()
            .flatten()
            .map(|p| p.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        let addr = normal_addr(l.socket.local.addr);
        let process = names.join(",");
        let port = l.socket.local.port;
        let i = match rows
            .iter()
            .position(|r| r.addr == addr && r.port == port && r.process == process)
        {
            Some(i) => i,
            None => {
                rows.push(ListenerRow {
                    addr,
                    port,
                    process,
                    accept_queue: 0,
                    backlog: 0,
                    overflowing: 0,
                });
                rows.len() - 1
            }
        };
        let r = &mut rows[i];
        r.accept_queue += u64::from(l.accept_queue.unwrap_or(0));
        r.backlog += u64::from(l.backlog.unwrap_or(0));
        r.overflowing += l.overflowing() as u64;
    }
    rows.sort_by(|a, b| (a.port, &a.addr, &a.process).cmp(&(b.port, &b.addr, &b.process)));
    rows
}

fn normal_addr(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

/// The `top` remote services by ephemeral ports used (ties by address, for stable series).
pub fn top_peers(peers: HashMap<Endpoint, (u64, u64)>, top: usize) -> Vec<PeerPorts> {
    let mut v: Vec<PeerPorts> = peers
        .into_iter()
        .map(|(peer, (used, tw))| PeerPorts {
            peer,
            ports_used: used,
            time_wait: tw,
        })
        .collect();
    v.sort_by(|a, b| {
        b.ports_used
            .cmp(&a.ports_used)
            .then(a.peer.addr.cmp(&b.peer.addr))
            .then(a.peer.port.cmp(&b.peer.port))
    });
    v.truncate(top);
    v
}

/// The `top` readable processes by share of their soft limit (then by fds, then pid).
pub fn top_processes(mut procs: Vec<FdUsage>, top: usize) -> Vec<FdUsage> {
    procs.retain(|p| p.fds.is_some());
    let share = |p: &FdUsage| p.percent_used().unwrap_or(0.0);
    procs.sort_by(|a, b| {
        share(b)
            .total_cmp(&share(a))
            .then(b.fds.cmp(&a.fds))
            .then(a.pid.cmp(&b.pid))
    });
    procs.truncate(top);
    procs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Socket;

    fn listener(addr: &str, port: u16, q: u32, backlog: u32, owner: &str) -> Listener {
        to_listener(Socket {
            proto: Proto::Tcp,
            family: 4,
            state: TcpState::Listening,
            local: Endpoint {
                addr: addr.parse().unwrap(),
                port,
            },
            peer: Endpoint {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            recv_q: q,
            send_q: backlog,
            uid: 0,
            inode: 1,
            timer: None,
            info: None,
            processes: Some(vec![ProcessRef {
                pid: 1,
                name: owner.into(),
            }]),
            mem: None,
            v6only: None,
        })
    }

    #[test]
    fn reuseport_sockets_of_one_address_are_one_series() {
        let rows = listener_rows(&[
            listener("0.0.0.0", 80, 5, 4, "nginx"),
            listener("0.0.0.0", 80, 1, 4, "nginx"),
            listener("127.0.0.1", 22, 0, 128, "sshd"),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].port, 22);
        assert_eq!(
            (rows[1].accept_queue, rows[1].backlog, rows[1].overflowing),
            (6, 8, 1)
        );
    }

    #[test]
    fn top_processes_rank_by_share_of_their_limit() {
        let p = |pid, fds, limit| FdUsage {
            pid,
            name: "p".into(),
            fds,
            soft_limit: Some(limit),
            hard_limit: None,
            sockets: None,
            kinds: None,
        };
        let top = top_processes(
            vec![p(1, Some(500), 100000), p(2, Some(90), 100), p(3, None, 10)],
            5,
        );
        assert_eq!(top.iter().map(|p| p.pid).collect::<Vec<_>>(), [2, 1]);
    }
}
