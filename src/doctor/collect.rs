//! Gathering the doctor's evidence in the calling thread's namespace: one sock_diag dump of TCP
//! (listeners, state counts and CLOSE_WAIT inodes together), UDP drop counters per socket, the
//! kernel's TCP/UDP counters read twice an interval apart, fd counts per process (one stat
//! each) and the system file table; established sockets with a high Recv-Q are read again
//! after the interval. fd links are walked only to name the owners of what will be reported: a
//! crowded listener, a CLOSE_WAIT pile-up, a dropping UDP socket, a stuck reader.
//! Returns model values; deciding what is bad is `checks.rs`'s job.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::checks::{
    time_wait_may_warn, CounterDelta, CLOSE_WAIT_WARN, RECV_Q_STUCK, UDP_DROP_COUNTERS,
};
use super::counters::{read_counters, Counters};
use super::error::DoctorError;
use super::model::StuckReader;
use crate::host::{Host, PROC};
use crate::procs::model::SystemFds;
use crate::procs::owners::read_owners;
use crate::procs::usage::{read_system, scan_counts, ProcScan, ProcSelect};
use crate::sockets::diag::DiagError;
use crate::sockets::filter::Selection;
use crate::sockets::listeners::{is_listener, to_listener, Listener};
use crate::sockets::model::{Endpoint, ProcessRef, Proto, Socket, TcpState};
use crate::sockets::states::{StateCounter, StateSummary};
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};
use crate::sockets::{for_each_socket, Extras};
use crate::summary::sockstat::read_sockstat;

/// What to collect.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// Time between the two counter reads.
    pub interval: Duration,
    /// Only processes in this network namespace (the `--netns` case); all when `None`.
    pub netns_inode: Option<u64>,
    /// Read fs.file-nr: a host-wide number, skipped when looking at one namespace.
    pub system_wide: bool,
}

/// The whole-host (or whole-namespace) evidence.
#[derive(Debug)]
pub struct HostEvidence {
    pub listeners: Vec<Listener>,
    pub states: StateSummary,
    pub counters: CounterDelta,
    pub processes: ProcScan,
    pub system: Option<SystemFds>,
    /// The processes holding CLOSE_WAIT sockets, most first, with how many each holds.
    pub close_wait_holders: Vec<(ProcessRef, u64)>,
    /// The UDP sockets that dropped datagrams during the interval, with how many each (from
    /// their own drop counters), most first, with owners: read only when the UDP
    /// receive-buffer drop counters moved.
    pub udp_dropping: Vec<(Socket, u64)>,
    /// Established sockets whose Recv-Q was at RECV_Q_STUCK or more at both readings and did
    /// not shrink, with owners.
    pub stuck_readers: Vec<StuckReader>,
}

/// The inode of the calling thread's network namespace.
pub fn current_netns_inode(host: &dyn Host) -> Result<u64, DoctorError> {
    let path = format!("{PROC}/thread-self/ns/net");
    host.stat(&path)
        .map(|m| m.ino)
        .map_err(|e| DoctorError::Proc {
            what: path,
            source: e,
        })
}

fn counters(host: &dyn Host) -> Result<Counters, DoctorError> {
    read_counters(host).map_err(|e| DoctorError::Proc {
        what: format!("{PROC}/thread-self/net/netstat and snmp"),
        source: e,
    })
}

/// Collects everything; the interval's sleep overlaps with the other work, so the run takes
/// max(interval, work) rather than their sum.
pub fn collect_host(host: &dyn Host, plan: &HostPlan) -> Result<HostEvidence, DoctorError> {
    // The host's clock: a replayed snapshot answers with the recorded times.
    let clock = host;
    let first = counters(host)?;
    let t0 = clock.now();
    let udp_before = udp_drops(host)?;
    let TcpDump {
        mut listeners,
        states,
        mut close_wait,
        recv_q_high,
    } = dump_tcp(host)?;
    // The walk is the expensive part: only for a pile-up the check will report.
    if (close_wait.len() as u64) < CLOSE_WAIT_WARN {
        close_wait.clear();
    }
    let close_wait_holders = name_owners(host, &mut listeners, &close_wait);
    let mut processes = scan_counts(
        host,
        PROC,
        &ProcSelect {
            netns_inode: plan.netns_inode,
            ..Default::default()
        },
    )
    .map_err(|e| DoctorError::Proc {
        what: PROC.into(),
        source: e,
    })?;
    if plan.netns_inode.is_some() {
        // sockscope entered the namespace to read it, which puts it among the namespace's
        // processes; it is the observer, not the observed.
        let me = host.self_pid();
        processes.processes.retain(|p| p.pid != me);
    }
    let system = if plan.system_wide {
        Some(read_system(host, PROC).map_err(|e| DoctorError::Proc {
            what: format!("{PROC}/sys/fs/file-nr"),
            source: e,
        })?)
    } else {
        None
    };
    let left = plan.interval.saturating_sub(clock.now().saturating_sub(t0));
    clock.sleep(left);
    let second = counters(host)?;
    let counters = CounterDelta {
        delta: first.delta(&second),
        seconds: clock.now().saturating_sub(t0).as_secs_f64(),
    };
    let udp_dropping = if UDP_DROP_COUNTERS.iter().any(|k| counters.delta.get(k) > 0) {
        udp_dropping(host, &udp_before, 3)?
    } else {
        Vec::new()
    };
    let stuck_readers = if recv_q_high.is_empty() {
        Vec::new()
    } else {
        stuck_readers(host, &recv_q_high)?
    };
    Ok(HostEvidence {
        listeners,
        states,
        counters,
        processes,
        system,
        close_wait_holders,
        udp_dropping,
        stuck_readers,
    })
}

/// What one dump of every TCP socket keeps: the listeners, the inodes of CLOSE_WAIT sockets
/// (to name who leaks them), and counts of everything.
pub struct TcpDump {
    pub listeners: Vec<Listener>,
    pub states: StateSummary,
    pub close_wait: Vec<u32>,
    /// Established sockets with RECV_Q_STUCK bytes or more unread: the first reading.
    pub recv_q_high: Vec<Socket>,
}

pub fn dump_tcp(host: &dyn Host) -> Result<TcpDump, DoctorError> {
    // Per namespace: read after entering it, from this thread.
    let range = read_port_range(host);
    let settings = read_time_wait_settings(host);
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    let mut listeners = Vec::new();
    let mut close_wait = Vec::new();
    let mut recv_q_high = Vec::new();
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        counter.add(&s);
        if s.state == TcpState::Established && s.recv_q >= RECV_Q_STUCK {
            recv_q_high.push(s.clone());
        }
        if s.state == TcpState::CloseWait && s.inode != 0 {
            close_wait.push(s.inode);
        }
        if s.state == TcpState::Listening && is_listener(&s) {
            listeners.push(to_listener(s));
        }
    })?;
    Ok(TcpDump {
        listeners,
        states: counter.finish(5, settings),
        close_wait,
        recv_q_high,
    })
}

/// Plain `doctor`'s cheap look at another namespace: its listeners from a LISTEN-only dump (the
/// kernel walks only its listening hash for that, not the host-wide established hash every
/// full dump walks), and the state counts only when the namespace's socket totals
/// (sockstat, one small read) leave room for a TIME_WAIT finding; `None` when they cannot.
pub struct Glance {
    pub listeners: Vec<Listener>,
    pub states: Option<StateSummary>,
}

pub fn glance_dump(host: &dyn Host) -> Result<Glance, DoctorError> {
    let range = read_port_range(host);
    let settings = read_time_wait_settings(host);
    let totals = read_sockstat(host).ok().map(|s| {
        let sockets = s.get("TCP.inuse") + s.get("TCP6.inuse") + s.get("TCP.tw");
        (sockets, s.get("TCP.tw"))
    });
    let may_warn = match totals {
        Some((sockets, tw)) => time_wait_may_warn(sockets, tw, range, &settings),
        // No totals: look, rather than stay silent.
        None => true,
    };
    if may_warn {
        let dump = dump_tcp(host)?;
        return Ok(Glance {
            listeners: dump.listeners,
            states: Some(dump.states),
        });
    }
    let sel = Selection {
        states: TcpState::Listening.mask_bit(),
        ..Selection::every_tcp()
    };
    let mut listeners = Vec::new();
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        if is_listener(&s) {
            listeners.push(to_listener(s));
        }
    })?;
    Ok(Glance {
        listeners,
        states: None,
    })
}

/// The second reading of the sockets `first` found with a high Recv-Q: the ones still
/// established, still at RECV_Q_STUCK or more and no lower than before, with their owners
/// (one fd walk, only for them).
fn stuck_readers(host: &dyn Host, first: &[Socket]) -> Result<Vec<StuckReader>, DoctorError> {
    let before: HashMap<(u32, Endpoint, Endpoint), u32> = first
        .iter()
        .map(|s| ((s.inode, s.local, s.peer), s.recv_q))
        .collect();
    let sel = Selection {
        states: TcpState::Established.mask_bit(),
        ..Selection::every_tcp()
    };
    let mut stuck = Vec::new();
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        if let Some(&was) = before.get(&(s.inode, s.local, s.peer)) {
            if s.recv_q >= RECV_Q_STUCK && s.recv_q >= was {
                stuck.push(StuckReader {
                    socket: s,
                    before: was,
                });
            }
        }
    })?;
    let wanted: HashSet<u32> = stuck
        .iter()
        .map(|s| s.socket.inode)
        .filter(|&i| i != 0)
        .collect();
    if let (false, Ok(owners)) = (wanted.is_empty(), read_owners(host, PROC, Some(&wanted))) {
        for s in &mut stuck {
            s.socket.processes = Some(owners.get(s.socket.inode));
        }
    }
    Ok(stuck)
}

/// Every UDP socket with its memory (and so its drop counter).
/// A kernel without UDP sock_diag (udp_diag not loaded) gives no sockets: the drop counters
/// still raise the finding, only without naming the socket; doctor's TCP checks must not
/// fail for want of it.
fn udp_sockets(host: &dyn Host, each: &mut dyn FnMut(Socket)) -> Result<(), DoctorError> {
    let sel = Selection {
        protos: vec![Proto::Udp],
        families: vec![4, 6],
        states: 0,
        user: Default::default(),
    };
    let extras = Extras {
        memory: true,
        ..Default::default()
    };
    match for_each_socket(host, &sel, extras, each) {
        Ok(()) | Err(DiagError::NoKernelSupport { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Each UDP socket's drop counter now, by inode.
fn udp_drops(host: &dyn Host) -> Result<HashMap<u32, u32>, DoctorError> {
    let mut drops = HashMap::new();
    udp_sockets(host, &mut |s| {
        if let Some(d) = s.mem.and_then(|m| m.drops) {
            drops.insert(s.inode, d);
        }
    })?;
    Ok(drops)
}

/// The `top` UDP sockets whose drop counters grew since `before`, most first, with owners. A
/// socket opened since then counts all its drops.
fn udp_dropping(
    host: &dyn Host,
    before: &HashMap<u32, u32>,
    top: usize,
) -> Result<Vec<(Socket, u64)>, DoctorError> {
    let mut grew = Vec::new();
    udp_sockets(host, &mut |s| {
        let now = s.mem.and_then(|m| m.drops).unwrap_or(0);
        let was = before.get(&s.inode).copied().unwrap_or(0);
        if now > was {
            grew.push((s, u64::from(now - was)));
        }
    })?;
    grew.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    grew.truncate(top);
    let wanted: HashSet<u32> = grew
        .iter()
        .map(|(s, _)| s.inode)
        .filter(|&i| i != 0)
        .collect();
    if let (false, Ok(owners)) = (wanted.is_empty(), read_owners(host, PROC, Some(&wanted))) {
        for (s, _) in &mut grew {
            s.processes = Some(owners.get(s.inode));
        }
    }
    Ok(grew)
}

/// The TCP listeners on one port (the probe's local check).
pub fn listeners_on(host: &dyn Host, port: u16) -> Result<Vec<Listener>, DoctorError> {
    let sel = Selection {
        protos: vec![Proto::Tcp],
        families: vec![4, 6],
        states: TcpState::Listening.mask_bit(),
        user: crate::sockets::filter::UserFilter {
            sport: Some(port),
            ..Default::default()
        },
    };
    let mut found = Vec::new();
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        if is_listener(&s) {
            found.push(to_listener(s))
        }
    })?;
    name_owners(host, &mut found, &[]);
    Ok(found)
}

/// Names the programs behind what doctor may report: fills in the processes holding
/// listeners with connections waiting for accept(), and returns who holds the CLOSE_WAIT
/// sockets `close_wait` (most first). One walk of the fd links, and only when there is
/// something to name; owners are a help, not evidence, so a failed walk leaves them unknown.
pub fn name_owners(
    host: &dyn Host,
    listeners: &mut [Listener],
    close_wait: &[u32],
) -> Vec<(ProcessRef, u64)> {
    let busy = |l: &Listener| l.accept_queue.unwrap_or(0) > 0 && l.socket.inode != 0;
    let mut wanted: HashSet<u32> = listeners
        .iter()
        .filter(|l| busy(l))
        .map(|l| l.socket.inode)
        .collect();
    wanted.extend(close_wait);
    if wanted.is_empty() {
        return Vec::new();
    }
    let Ok(owners) = read_owners(host, PROC, Some(&wanted)) else {
        return Vec::new();
    };
    for l in listeners.iter_mut().filter(|l| busy(l)) {
        l.socket.processes = Some(owners.get(l.socket.inode));
    }
    let mut held: HashMap<u32, (ProcessRef, u64)> = HashMap::new();
    for inode in close_wait {
        for p in owners.get(*inode) {
            held.entry(p.pid).or_insert_with(|| (p, 0)).1 += 1;
        }
    }
    let mut held: Vec<(ProcessRef, u64)> = held.into_values().collect();
    held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    held
}

/// Reads the counters (for the probe, which brackets its connect with two reads).
pub fn read_now(host: &dyn Host) -> Result<(Counters, Instant), DoctorError> {
    Ok((counters(host)?, Instant::now()))
}
