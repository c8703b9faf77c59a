//! Gathering the doctor's evidence in the calling thread's namespace: one sock_diag dump of TCP
//! (listeners and state counts together), the TCP counters read twice an interval apart, fd
//! counts per process (one stat each, never a walk of fd links) and the system file table.
//! Returns model values; deciding what is bad is `checks.rs`'s job.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use super::checks::CounterDelta;
use super::counters::{read_counters, Counters};
use super::error::DoctorError;
use crate::procs::model::SystemFds;
use crate::procs::owners::read_owners;
use crate::procs::usage::{read_system, scan_counts, ProcScan, ProcSelect};
use crate::sockets::filter::Selection;
use crate::sockets::for_each_socket;
use crate::sockets::listeners::{is_listener, to_listener, Listener};
use crate::sockets::model::{Proto, TcpState};
use crate::sockets::states::{StateCounter, StateSummary};
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};

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
}

/// The inode of the calling thread's network namespace.
pub fn current_netns_inode() -> Result<u64, DoctorError> {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| DoctorError::Proc {
            what: "/proc/thread-self/ns/net".into(),
            source: e,
        })
}

fn counters() -> Result<Counters, DoctorError> {
    read_counters().map_err(|e| DoctorError::Proc {
        what: "/proc/thread-self/net/netstat and snmp".into(),
        source: e,
    })
}

/// Collects everything; the interval's sleep overlaps with the other work, so the run takes
/// max(interval, work) rather than their sum.
pub fn collect_host(plan: &HostPlan) -> Result<HostEvidence, DoctorError> {
    let first = counters()?;
    let t0 = Instant::now();
    let (mut listeners, states) = dump_tcp()?;
    name_owners_of_busy(&mut listeners);
    let processes = scan_counts(
        "/proc",
        &ProcSelect {
            netns_inode: plan.netns_inode,
            ..Default::default()
        },
    )
    .map_err(|e| DoctorError::Proc {
        what: "/proc".into(),
        source: e,
    })?;
    let system = if plan.system_wide {
        Some(read_system("/proc").map_err(|e| DoctorError::Proc {
            what: "/proc/sys/fs/file-nr".into(),
            source: e,
        })?)
    } else {
        None
    };
    let left = plan.interval.saturating_sub(t0.elapsed());
    std::thread::sleep(left);
    let second = counters()?;
    let counters = CounterDelta {
        delta: first.delta(&second),
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(HostEvidence {
        listeners,
        states,
        counters,
        processes,
        system,
    })
}

/// One dump of every TCP socket: listeners kept, everything else only counted.
pub fn dump_tcp() -> Result<(Vec<Listener>, StateSummary), DoctorError> {
    // Per namespace: read after entering it, from this thread.
    let range = read_port_range();
    let settings = read_time_wait_settings();
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    let mut listeners = Vec::new();
    for_each_socket(&sel, false, &mut |s| {
        counter.add(&s);
        if s.state == TcpState::Listening && is_listener(&s) {
            listeners.push(to_listener(s));
        }
    })?;
    Ok((listeners, counter.finish(5, settings)))
}

/// The TCP listeners on one port (the probe's local check).
pub fn listeners_on(port: u16) -> Result<Vec<Listener>, DoctorError> {
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
    for_each_socket(&sel, false, &mut |s| {
        if is_listener(&s) {
            found.push(to_listener(s))
        }
    })?;
    name_owners_of_busy(&mut found);
    Ok(found)
}

/// Fills in the processes holding listeners that have connections waiting for accept(), so
/// an accept-queue finding can name the program to look at. One walk of the fd links, and
/// only when some queue is not empty; owners are a help, not evidence, so a failed walk
/// leaves them unknown.
pub fn name_owners_of_busy(listeners: &mut [Listener]) {
    let busy = |l: &Listener| l.accept_queue.unwrap_or(0) > 0 && l.socket.inode != 0;
    let wanted: std::collections::HashSet<u32> = listeners
        .iter()
        .filter(|l| busy(l))
        .map(|l| l.socket.inode)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Ok(owners) = read_owners("/proc", Some(&wanted)) else {
        return;
    };
    for l in listeners.iter_mut().filter(|l| busy(l)) {
        l.socket.processes = Some(owners.get(l.socket.inode));
    }
}

/// Reads the counters (for the probe, which brackets its connect with two reads).
pub fn read_now() -> Result<(Counters, Instant), DoctorError> {
    Ok((counters()?, Instant::now()))
}
