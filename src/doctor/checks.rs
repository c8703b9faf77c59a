//! The doctor's rules: pure functions from measured evidence to typed findings (numbers, never
//! sentences: `render::doctor` writes the words). No I/O here, so each rule is tested on
//! hand-built values; the live tests check the collectors feed them right.

use super::counters::Counters;
use super::firewall::{Ruleset, Verdict};
use super::model::*;
use crate::procs::model::{FdUsage, SystemFds};
use crate::sockets::listeners::Listener;
use crate::sockets::model::{ProcessRef, Socket, TcpState};
use crate::sockets::states::{StateSummary, TimeWaitSettings};

/// A counter difference over a measured interval.
#[derive(Debug, Clone)]
pub struct CounterDelta {
    pub delta: Counters,
    pub seconds: f64,
}

/// Above this share of a limit a finding is a warning; at the limit it is critical.
const NEAR_LIMIT_PERCENT: f64 = 90.0;
/// A listener's accept queue at this share of its backlog is a warning.
const QUEUE_WARN_PERCENT: u64 = 80;
/// Ephemeral ports in use towards one peer: warning from here, critical from NEAR_LIMIT.
const PORTS_WARN_PERCENT: f64 = 50.0;
/// More TIME_WAIT than this is worth an info line even when ports are plentiful.
const TIME_WAIT_INFO: u64 = 1000;
/// CLOSE_WAIT sockets from this many on are a warning: a few are normal (the application is
/// about to close them), hundreds are a leak.
pub const CLOSE_WAIT_WARN: u64 = 100;
/// An established socket with this many unread bytes or more at both of doctor's readings
/// (and no fewer at the second) has a stuck reader. 64 KiB: more than a healthy reader leaves
/// between two reads, and a fair share of the default receive buffer (tcp_rmem 128 KiB).
pub const RECV_Q_STUCK: u32 = 64 * 1024;
/// At most this many per-process findings; the rest are summed up in one line.
const MAX_PROCESS_FINDINGS: usize = 10;

/// Every verdict doctor can give, numbered: a finding carries the number of the rule that
/// produced it (JSON `rule`), and `every_rule_is_exercised` checks each one fires in a test.
pub const RULES: &[(u16, &str)] = &[
    (
        1,
        "accept-queue: a listener's queue is past its backlog (critical)",
    ),
    (
        2,
        "accept-queue: a listener's queue is at 80% of its backlog or more (warning)",
    ),
    (
        3,
        "accept-queue: ListenOverflows/ListenDrops moved with no queue full at the dump",
    ),
    (4, "udp-drops: UDP receive-buffer drop counters moved"),
    (
        5,
        "close-wait: CLOSE_WAIT sockets at or above CLOSE_WAIT_WARN",
    ),
    (
        6,
        "time-wait: the busiest peer uses 50% (warning) / 90% (critical) of the ephemeral range",
    ),
    (7, "time-wait: TIME_WAIT near net.ipv4.tcp_max_tw_buckets"),
    (8, "time-wait: many TIME_WAIT with ports to spare (info)"),
    (9, "emfile: a process at 90% or more of its fd soft limit"),
    (10, "emfile: more such processes than are listed"),
    (
        11,
        "enfile: the system file table at 90% of fs.file-max or more",
    ),
    (12, "reset: reset/abort counters moved"),
    (
        13,
        "recv-q: an established socket's Recv-Q stayed at RECV_Q_STUCK or more (stuck reader)",
    ),
    (20, "refused: nothing listens on the port"),
    (
        21,
        "refused: a listener takes the probed address, so a firewall/policy sent the RST",
    ),
    (
        22,
        "refused: IPv4 probe, the only wildcard listener is [::] with IPV6_V6ONLY=1",
    ),
    (
        23,
        "refused: listeners on the port, none on the probed address (bind address)",
    ),
    (
        24,
        "refused: a remote target (no local socket table to consult)",
    ),
    (25, "timed-out: the listener's accept queue is full"),
    (
        26,
        "timed-out: a listener exists, so the SYN is dropped before it (firewall)",
    ),
    (27, "timed-out: no listener information"),
    (28, "unreachable: ICMP error or no route"),
    (
        29,
        "reset: the peer reset the connection right after the handshake",
    ),
];

fn finding(rule: u16, symptom: Symptom, severity: Severity, data: Evidence) -> Finding {
    Finding {
        rule,
        symptom,
        severity,
        data,
        place: None,
    }
}

/// Seconds as whole microseconds (JSON durations are `_us` integers).
pub fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round() as u64
}

/// The counters among `keys` that moved, in that order.
fn moved(c: &CounterDelta, keys: &[&str]) -> Option<Moved> {
    let counters: Vec<CounterMove> = keys
        .iter()
        .filter_map(|k| {
            let v = c.delta.get(k);
            (v > 0).then(|| CounterMove {
                name: k.to_string(),
                delta: v,
            })
        })
        .collect();
    (!counters.is_empty()).then(|| Moved {
        counters,
        interval_us: micros(c.seconds),
    })
}

fn owners(s: &Socket) -> Vec<ProcessRef> {
    s.processes.clone().unwrap_or_default()
}

/// The counters that count handshakes dropped for a full accept queue.
pub const LISTEN_OVERFLOW_COUNTERS: [&str; 2] = ["TcpExt.ListenOverflows", "TcpExt.ListenDrops"];

/// Listeners whose accept queue is at or past their backlog, and the kernel's count of
/// handshakes it dropped because a queue was full.
pub fn check_accept_queues(
    listeners: &[Listener],
    counters: Option<&CounterDelta>,
) -> Vec<Finding> {
    let overflows = counters.and_then(|c| moved(c, &LISTEN_OVERFLOW_COUNTERS));
    let mut out = Vec::new();
    for l in listeners {
        if l.socket.state != TcpState::Listening {
            continue;
        }
        let (Some(q), Some(b)) = (l.accept_queue, l.backlog) else {
            continue;
        };
        // The kernel refuses new connections once the queue holds more than the backlog.
        let severity = if l.overflowing() {
            Severity::Critical
        } else if q > 0 && u64::from(q) * 100 >= u64::from(b) * QUEUE_WARN_PERCENT {
            Severity::Warning
        } else {
            continue;
        };
        out.push(finding(
            if l.overflowing() { 1 } else { 2 },
            Symptom::AcceptQueue,
            severity,
            Evidence::AcceptQueue(QueueData {
                listener: Addr::of_socket(&l.socket, &l.socket.local),
                queued: q,
                backlog: b,
                owners: owners(&l.socket),
                overflows: overflows.clone(),
                warn_percent: QUEUE_WARN_PERCENT,
            }),
        ));
    }
    if out.is_empty() {
        if let Some(overflows) = overflows {
            out.push(finding(
                3,
                Symptom::AcceptQueue,
                Severity::Warning,
                Evidence::ListenDrops(ListenDropsData { overflows }),
            ));
        }
    }
    out
}

/// The counters of datagrams dropped because a UDP socket's receive buffer was full.
pub const UDP_DROP_COUNTERS: [&str; 2] = ["Udp.RcvbufErrors", "Udp6.RcvbufErrors"];

/// UDP datagrams dropped for a full receive buffer during the interval, naming the sockets
/// that dropped them (their own drop counters) and their owners.
pub fn check_udp_drops(c: &CounterDelta, dropping: &[(Socket, u64)]) -> Vec<Finding> {
    let Some(counters) = moved(c, &UDP_DROP_COUNTERS) else {
        return Vec::new();
    };
    let sockets = dropping
        .iter()
        .map(|(s, n)| UdpDropper {
            local: Addr::of_socket(s, &s.local),
            owners: owners(s),
            dropped: *n,
            rcvbuf: s.mem.map(|m| m.rcvbuf),
        })
        .collect();
    vec![finding(
        4,
        Symptom::UdpDrops,
        Severity::Warning,
        Evidence::UdpDrops(UdpDropsData { counters, sockets }),
    )]
}

/// Established sockets whose Recv-Q stayed at [`RECV_Q_STUCK`] or more across the interval:
/// data the application is not reading, named with the process that holds the socket.
pub fn check_recv_q(stuck: &[StuckReader], seconds: f64) -> Vec<Finding> {
    let mut v: Vec<&StuckReader> = stuck.iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.socket.recv_q));
    v.iter()
        .take(MAX_PROCESS_FINDINGS)
        .map(|st| {
            let s = &st.socket;
            finding(
                13,
                Symptom::RecvQ,
                Severity::Warning,
                Evidence::RecvQ(RecvQData {
                    local: Addr::of_socket(s, &s.local),
                    peer: Addr::of_socket(s, &s.peer),
                    owners: owners(s),
                    recv_q_before: st.before,
                    recv_q_after: s.recv_q,
                    interval_us: micros(seconds),
                    threshold_bytes: RECV_Q_STUCK,
                }),
            )
        })
        .collect()
}

/// Sockets the peer closed and this host never did, with the processes that hold them.
pub fn check_close_wait(s: &StateSummary, holders: &[(ProcessRef, u64)]) -> Vec<Finding> {
    let n = s.states.get(TcpState::CloseWait);
    if n < CLOSE_WAIT_WARN {
        return Vec::new();
    }
    vec![finding(
        5,
        Symptom::CloseWait,
        Severity::Warning,
        Evidence::CloseWait(CloseWaitData {
            close_wait: n,
            threshold: CLOSE_WAIT_WARN,
            holders: holders
                .iter()
                .map(|(p, sockets)| Holder {
                    pid: p.pid,
                    name: p.name.clone(),
                    sockets: *sockets,
                })
                .collect(),
        }),
    )]
}

/// TIME_WAIT totals and how much of the ephemeral port range the busiest peer uses.
/// Whether a namespace holding `sockets` TCP sockets (in use, both families, plus TIME_WAIT),
/// `time_wait` of them in TIME_WAIT, could give [`check_time_wait`] a warning or worse: the
/// ports used toward one peer can be no more than its sockets. The bound is doubled so
/// sockets the totals leave out (pending connections) cannot make a skipped look wrong.
pub fn time_wait_may_warn(
    sockets: u64,
    time_wait: u64,
    range: Option<(u16, u16)>,
    settings: &TimeWaitSettings,
) -> bool {
    let ports = range.is_some_and(|(lo, hi)| {
        let size = u64::from(hi - lo) + 1;
        (2 * sockets) as f64 * 100.0 / size as f64 >= PORTS_WARN_PERCENT
    });
    let buckets = settings.tcp_max_tw_buckets.is_some_and(|max| {
        max > 0 && (2 * time_wait) as f64 * 100.0 / max as f64 >= NEAR_LIMIT_PERCENT
    });
    ports || buckets
}

pub fn check_time_wait(s: &StateSummary) -> Vec<Finding> {
    let tw = s.states.get(TcpState::TimeWait);
    let reuse = s.settings.tcp_tw_reuse;
    let mut out = Vec::new();
    let mut ports_flagged = false;
    if let Some(e) = &s.ephemeral {
        if let Some(b) = &e.busiest {
            let severity = if b.percent >= NEAR_LIMIT_PERCENT {
                Some(Severity::Critical)
            } else if b.percent >= PORTS_WARN_PERCENT {
                Some(Severity::Warning)
            } else {
                None
            };
            if let Some(severity) = severity {
                ports_flagged = true;
                out.push(finding(
                    6,
                    Symptom::TimeWait,
                    severity,
                    Evidence::Ports(PortsData {
                        peer: Addr::of(&b.peer),
                        ports_used: b.ports_used,
                        range_low: e.low,
                        range_high: e.high,
                        range_size: u64::from(e.size),
                        percent: b.percent,
                        time_wait_to_peer: b.time_wait,
                        time_wait: tw,
                        tcp_tw_reuse: reuse,
                        warn_percent: PORTS_WARN_PERCENT,
                        critical_percent: NEAR_LIMIT_PERCENT,
                    }),
                ));
            }
        }
    }
    if let (Some(max), false) = (s.settings.tcp_max_tw_buckets, ports_flagged) {
        if max > 0 && tw as f64 * 100.0 / max as f64 >= NEAR_LIMIT_PERCENT {
            out.push(finding(
                7,
                Symptom::TimeWait,
                Severity::Warning,
                Evidence::TwBuckets(TwBucketsData {
                    time_wait: tw,
                    tcp_max_tw_buckets: max,
                    warn_percent: NEAR_LIMIT_PERCENT,
                }),
            ));
            ports_flagged = true;
        }
    }
    if !ports_flagged && tw >= TIME_WAIT_INFO {
        out.push(finding(
            8,
            Symptom::TimeWait,
            Severity::Info,
            Evidence::TimeWait(TimeWaitData {
                time_wait: tw,
                busiest_percent: s
                    .ephemeral
                    .as_ref()
                    .and_then(|e| e.busiest.as_ref())
                    .map(|b| b.percent),
                tcp_tw_reuse: reuse,
                info_from: TIME_WAIT_INFO,
            }),
        ));
    }
    out
}

/// Processes at or near their RLIMIT_NOFILE soft limit.
pub fn check_process_fds(procs: &[FdUsage]) -> Vec<Finding> {
    let mut hot: Vec<(&FdUsage, f64)> = procs
        .iter()
        .filter_map(|p| p.percent_used().map(|pc| (p, pc)))
        .filter(|(_, pc)| *pc >= NEAR_LIMIT_PERCENT)
        .collect();
    hot.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    let mut out = Vec::new();
    for (p, pc) in hot.iter().take(MAX_PROCESS_FINDINGS) {
        let (Some(n), Some(soft)) = (p.fds, p.soft_limit) else {
            continue;
        };
        let severity = if n >= soft {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push(finding(
            9,
            Symptom::Emfile,
            severity,
            Evidence::ProcessFds(ProcessFdsData {
                pid: p.pid,
                name: p.name.clone(),
                fds: n,
                soft_limit: soft,
                hard_limit: p.hard_limit,
                percent: *pc,
                warn_percent: NEAR_LIMIT_PERCENT,
            }),
        ));
    }
    if hot.len() > MAX_PROCESS_FINDINGS {
        out.push(finding(
            10,
            Symptom::Emfile,
            Severity::Warning,
            Evidence::MoreProcesses(MoreProcessesData {
                more: (hot.len() - MAX_PROCESS_FINDINGS) as u64,
                warn_percent: NEAR_LIMIT_PERCENT,
            }),
        ));
    }
    out
}

/// The system-wide file table against fs.file-max.
pub fn check_file_nr(sys: &SystemFds) -> Vec<Finding> {
    if sys.max == 0 {
        return Vec::new();
    }
    let in_use = sys.allocated.saturating_sub(sys.free);
    let pc = in_use as f64 * 100.0 / sys.max as f64;
    let severity = if in_use >= sys.max {
        Severity::Critical
    } else if pc >= NEAR_LIMIT_PERCENT {
        Severity::Warning
    } else {
        return Vec::new();
    };
    vec![finding(
        11,
        Symptom::Enfile,
        severity,
        Evidence::FileTable(FileTableData {
            in_use,
            file_max: sys.max,
            percent: pc,
            warn_percent: NEAR_LIMIT_PERCENT,
        }),
    )]
}

/// Counters that mean connections were torn down with RST during the interval.
pub const RESET_COUNTERS: &[&str] = &[
    "TcpExt.TCPAbortOnData",
    "TcpExt.TCPAbortOnClose",
    "TcpExt.TCPAbortOnTimeout",
    "TcpExt.TCPAbortOnMemory",
    "TcpExt.TCPAbortOnLinger",
    "TcpExt.TCPAbortFailed",
    "Tcp.EstabResets",
];

/// Resets and aborts that happened during the sampling interval.
pub fn check_resets(c: &CounterDelta) -> Vec<Finding> {
    let Some(counters) = moved(c, RESET_COUNTERS) else {
        return Vec::new();
    };
    vec![finding(
        12,
        Symptom::Reset,
        Severity::Warning,
        Evidence::Resets(ResetsData {
            counters,
            out_rsts: c.delta.get("Tcp.OutRsts"),
        }),
    )]
}

/// What the local socket table says about the probed port.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenCheck {
    /// The target is not local (or the check was not possible).
    NotChecked,
    /// Nothing listens on the port in this namespace.
    Nothing { port: u16 },
    /// These sockets listen on the port (both families).
    Listening { port: u16, listeners: Vec<Listener> },
}

impl ListenCheck {
    /// True when one of the listeners would take a connection to `ip` (same address, the
    /// family's wildcard, a dual-stack `[::]` for IPv4): a refused connect then did not come
    /// from a missing socket.
    pub fn takes(&self, ip: std::net::IpAddr) -> bool {
        match self {
            ListenCheck::Listening { listeners, .. } => {
                listeners.iter().any(|l| l.socket.takes_address(ip))
            }
            _ => false,
        }
    }

    /// True when a listener's accept queue is past its backlog (the kernel drops SYNs).
    pub fn full(&self) -> bool {
        match self {
            ListenCheck::Listening { listeners, .. } => listeners.iter().any(|l| l.overflowing()),
            _ => false,
        }
    }

    /// The listeners as addresses (`None`: not checked).
    fn addrs(&self) -> Option<Vec<Addr>> {
        match self {
            ListenCheck::NotChecked => None,
            ListenCheck::Nothing { .. } => Some(Vec::new()),
            ListenCheck::Listening { listeners, .. } => Some(
                listeners
                    .iter()
                    .map(|l| {
                        let s = &l.socket;
                        Addr {
                            v6only: s.v6only,
                            ..Addr::of_socket(s, &s.local)
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// The finding for a probe that did not connect cleanly (none when it did). `firewall` is the
/// ruleset when it was read (only for a refused or unanswered probe behind a listener).
pub fn check_probe(
    p: &ProbeResult,
    local: &ListenCheck,
    firewall: Option<&Ruleset>,
) -> Option<Finding> {
    let port = p.target.port();
    let ip = p.target.ip();
    let rules = |v: Verdict| {
        firewall.map(|fw| {
            fw.matching(port, v)
                .iter()
                .map(|r| FwRuleRef {
                    location: r.location.clone(),
                    text: r.text.clone(),
                })
                .collect::<Vec<_>>()
        })
    };
    let v6only_wildcard = |ls: &[Listener]| {
        ls.iter().any(|l| {
            l.socket.family == 6
                && l.socket.local.addr.is_unspecified()
                && l.socket.v6only == Some(true)
        })
    };
    let mut firewall_rules = None;
    // The local socket table (and the firewall's rules) sharpen the verdict.
    let (rule, symptom) = match (p.outcome, local) {
        (ProbeOutcome::Connected, _) => return None,
        (ProbeOutcome::Refused, ListenCheck::Nothing { .. }) => (20, Symptom::Refused),
        (ProbeOutcome::Refused, ListenCheck::Listening { .. }) if local.takes(ip) => {
            firewall_rules = rules(Verdict::Reject);
            (21, Symptom::Refused)
        }
        (ProbeOutcome::Refused, ListenCheck::Listening { listeners, .. })
            if ip.is_ipv4() && v6only_wildcard(listeners) =>
        {
            (22, Symptom::Refused)
        }
        (ProbeOutcome::Refused, ListenCheck::Listening { .. }) => (23, Symptom::Refused),
        (ProbeOutcome::Refused, ListenCheck::NotChecked) => (24, Symptom::Refused),
        (ProbeOutcome::TimedOut, ListenCheck::Listening { .. }) if local.full() => {
            (25, Symptom::TimedOut)
        }
        (ProbeOutcome::TimedOut, ListenCheck::Listening { .. }) => {
            firewall_rules = rules(Verdict::Drop);
            (26, Symptom::TimedOut)
        }
        (ProbeOutcome::TimedOut, _) => (27, Symptom::TimedOut),
        (ProbeOutcome::Unreachable, _) => (28, Symptom::Unreachable),
        (ProbeOutcome::Reset, _) => (29, Symptom::Reset),
    };
    Some(finding(
        rule,
        symptom,
        Severity::Critical,
        Evidence::Probe(ProbeData {
            target: Addr::of_sockaddr(p.target),
            outcome: p.outcome,
            errno: p.errno.clone(),
            waited_us: p.waited_us,
            connect_us: p.connect_us,
            listeners: local.addrs(),
            firewall_rules,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_wait_may_warn_only_when_the_totals_leave_room_for_a_warning() {
        let defaults = TimeWaitSettings {
            tcp_tw_reuse: Some(2),
            tcp_max_tw_buckets: Some(1000),
        };
        let range = Some((20000, 20999));
        // 1000 ports: a warning needs 500 toward one peer; the doubled bound looks from 250.
        assert!(!time_wait_may_warn(249, 0, range, &defaults));
        assert!(time_wait_may_warn(250, 0, range, &defaults));
        // No range read: only the bucket limit can warn (90% of 1000, doubled: from 450).
        assert!(!time_wait_may_warn(10_000, 449, None, &defaults));
        assert!(time_wait_may_warn(10_000, 450, None, &defaults));
        let unlimited = TimeWaitSettings {
            tcp_max_tw_buckets: Some(0),
            ..defaults
        };
        assert!(!time_wait_may_warn(10_000, 10_000, None, &unlimited));
    }
    use crate::render::doctor::{words, Words};
    use crate::sockets::listeners::to_listener;
    use crate::sockets::model::{Endpoint, ProcessRef, Proto, Socket};
    use crate::sockets::states::{StateCounter, TimeWaitSettings};

    /// The finding in words, as `render::doctor` writes it.
    fn w(f: &Finding) -> Words {
        words(f, None)
    }

    fn sock(state: TcpState, lport: u16, peer: &str, pport: u16, rq: u32, sq: u32) -> Socket {
        Socket {
            proto: Proto::Tcp,
            family: 4,
            state,
            local: Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port: lport,
            },
            peer: Endpoint {
                addr: peer.parse().unwrap(),
                port: pport,
            },
            recv_q: rq,
            send_q: sq,
            uid: 0,
            inode: 1,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: None,
        }
    }

    fn delta(pairs: &[(&str, u64)], seconds: f64) -> CounterDelta {
        CounterDelta {
            delta: Counters(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
            seconds,
        }
    }

    #[test]
    fn a_full_accept_queue_is_critical_with_the_overflow_count() {
        let ls = vec![
            to_listener(sock(TcpState::Listening, 8003, "0.0.0.0", 0, 5, 4)),
            to_listener(sock(TcpState::Listening, 8001, "0.0.0.0", 0, 0, 128)),
        ];
        let d = delta(
            &[("TcpExt.ListenOverflows", 57), ("TcpExt.ListenDrops", 57)],
            2.0,
        );
        let f = check_accept_queues(&ls, Some(&d));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].symptom.id(), "accept-queue");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            w(&f[0]).evidence,
            "accept queue 5/4 on 127.0.0.1:8003; ListenOverflows +57, ListenDrops +57 in 2 s"
        );
        assert!(w(&f[0]).fix.contains("sockscope listeners --port 8003"));

        // With its owners known, the finding names them instead.
        let mut owned = ls;
        owned[0].socket.processes = Some(vec![
            ProcessRef {
                pid: 812,
                name: "nginx".into(),
            },
            ProcessRef {
                pid: 813,
                name: "nginx".into(),
            },
        ]);
        let f = check_accept_queues(&owned, None);
        assert_eq!(
            w(&f[0]).evidence,
            "accept queue 5/4 on 127.0.0.1:8003 held by nginx(812),nginx(813)"
        );
        assert!(
            w(&f[0])
                .fix
                .starts_with("nginx(812),nginx(813) is not accepting fast enough; accept faster"),
            "{}",
            w(&f[0]).fix
        );
    }

    #[test]
    fn queue_thresholds_and_overflow_without_a_full_queue() {
        let warn = vec![to_listener(sock(
            TcpState::Listening,
            80,
            "0.0.0.0",
            0,
            4,
            5,
        ))];
        assert_eq!(
            check_accept_queues(&warn, None)[0].severity,
            Severity::Warning
        );
        let ok = vec![to_listener(sock(
            TcpState::Listening,
            80,
            "0.0.0.0",
            0,
            3,
            5,
        ))];
        assert!(check_accept_queues(&ok, None).is_empty());
        let d = delta(&[("TcpExt.ListenOverflows", 3)], 0.5);
        let f = check_accept_queues(&ok, Some(&d));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            w(&f[0]).evidence.starts_with("ListenOverflows +3 in 0.5 s"),
            "{}",
            w(&f[0]).evidence
        );
        assert!(check_accept_queues(&ok, Some(&delta(&[], 2.0))).is_empty());
    }

    #[test]
    fn udp_drops_name_the_dropping_socket_and_its_owner() {
        assert!(check_udp_drops(&delta(&[("Udp.InErrors", 5)], 2.0), &[]).is_empty());
        let mut s = sock(TcpState::Unconn, 5353, "0.0.0.0", 0, 8448, 0);
        s.proto = Proto::Udp;
        s.processes = Some(vec![ProcessRef {
            pid: 42,
            name: "dnsd".into(),
        }]);
        s.mem = Some(crate::sockets::model::SockMem {
            rcvbuf: 8192,
            ..Default::default()
        });
        let d = delta(&[("Udp.RcvbufErrors", 500), ("Udp6.RcvbufErrors", 7)], 2.0);
        let f = check_udp_drops(&d, &[(s, 498)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].symptom.id(), "udp-drops");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            w(&f[0]).evidence,
            "UdpRcvbufErrors +500, Udp6RcvbufErrors +7 in 2 s (datagrams dropped: receive buffer \
             full); by socket: 127.0.0.1:5353 (dnsd(42)) 498 dropped (receive buffer 8192 bytes)"
        );
        assert!(w(&f[0])
            .fix
            .starts_with("dnsd(42) reads 127.0.0.1:5353 too slowly: read faster"));
        // Without a socket to name, the table's fix as it is.
        let f = check_udp_drops(&d, &[]);
        assert!(w(&f[0])
            .evidence
            .ends_with("(datagrams dropped: receive buffer full)"));
        assert!(w(&f[0]).fix.starts_with("read faster"));
    }

    fn close_waits(n: u16) -> StateSummary {
        let mut c = StateCounter::new(Some((20000, 20999)));
        for i in 0..n {
            c.add(&sock(
                TcpState::CloseWait,
                8080,
                "10.0.0.5",
                40000 + i,
                0,
                0,
            ));
        }
        c.finish(5, TimeWaitSettings::default())
    }

    #[test]
    fn close_wait_pile_up_names_who_holds_it() {
        let p = |pid, name: &str| ProcessRef {
            pid,
            name: name.into(),
        };
        let holders = vec![
            (p(1234, "api"), 120),
            (p(77, "worker"), 20),
            (p(78, "worker"), 5),
            (p(79, "cron"), 5),
        ];
        assert!(check_close_wait(&close_waits(99), &holders).is_empty());
        let f = check_close_wait(&close_waits(150), &holders);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].symptom.id(), "close-wait");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            w(&f[0]).evidence,
            "150 TCP sockets in CLOSE_WAIT (closed by the peer, never closed here); held by \
             api(1234): 120 sockets, worker(77): 20 sockets, worker(78): 5 sockets and 1 more process(es)"
        );
        assert!(
            w(&f[0])
                .fix
                .starts_with("api(1234) does not close() connections its peers have closed: find"),
            "{}",
            w(&f[0]).fix
        );
        let f = check_close_wait(&close_waits(100), &[]);
        assert!(w(&f[0])
            .evidence
            .ends_with("; their owners could not be read"));
        assert!(w(&f[0])
            .fix
            .starts_with("find the owner (sockscope sockets --state close-wait -p)"));
    }

    fn summary(n_tw: u16, n_est: u16, range: (u16, u16), max_tw: i64) -> StateSummary {
        let mut c = StateCounter::new(Some(range));
        for i in 0..n_tw {
            c.add(&sock(
                TcpState::TimeWait,
                range.0 + i,
                "10.0.0.9",
                443,
                0,
                0,
            ));
        }
        for i in 0..n_est {
            c.add(&sock(
                TcpState::Established,
                range.0 + n_tw + i,
                "10.0.0.9",
                443,
                0,
                0,
            ));
        }
        c.finish(
            5,
            TimeWaitSettings {
                tcp_tw_reuse: Some(0),
                tcp_max_tw_buckets: Some(max_tw),
            },
        )
    }

    #[test]
    fn port_exhaustion_towards_one_peer() {
        let f = check_time_wait(&summary(900, 20, (20000, 20999), 262144));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            w(&f[0]).evidence,
            "920 of 1000 ephemeral ports (20000-20999) in use towards 10.0.0.9:443 (900 in \
             TIME_WAIT; 900 TIME_WAIT in all; tcp_tw_reuse=0)"
        );
        let f = check_time_wait(&summary(500, 0, (20000, 20999), 262144));
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(check_time_wait(&summary(400, 0, (20000, 20999), 262144)).is_empty());
        // Plenty of ports: many TIME_WAIT is worth a line, not an alarm.
        let f = check_time_wait(&summary(1200, 0, (10000, 60999), 262144));
        assert_eq!(f[0].severity, Severity::Info);
        // Near tcp_max_tw_buckets.
        let f = check_time_wait(&summary(1200, 0, (10000, 60999), 1300));
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(w(&f[0]).evidence.contains("tcp_max_tw_buckets=1300"));
    }

    fn usage(pid: u32, fds: u64, soft: Option<u64>) -> FdUsage {
        FdUsage {
            pid,
            name: format!("p\x1b{pid}"),
            fds: Some(fds),
            soft_limit: soft,
            hard_limit: Some(4096),
            sockets: None,
            kinds: None,
        }
    }

    #[test]
    fn processes_at_their_fd_limit() {
        let f = check_process_fds(&[
            usage(10, 64, Some(64)),
            usage(11, 58, Some(64)),
            usage(12, 10, Some(64)),
            usage(13, 1_000_000, None),
        ]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            w(&f[0]).evidence,
            "pid 10 (p\\x1b10) holds 64 fds, soft limit 64 (100%), hard limit 4096"
        );
        assert_eq!(f[1].severity, Severity::Warning);
        let many: Vec<FdUsage> = (0..15).map(|i| usage(i, 64, Some(64))).collect();
        let f = check_process_fds(&many);
        assert_eq!(f.len(), 11);
        assert!(w(&f[10]).evidence.starts_with("5 more processes"));
    }

    #[test]
    fn file_nr_fixtures() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/doctor");
        let read = |name: &str| {
            crate::procs::usage::parse_system(
                &std::fs::read_to_string(format!("{dir}/{name}")).unwrap(),
                None,
            )
            .unwrap()
        };
        let full = check_file_nr(&read("file-nr-full"));
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].symptom.id(), "enfile");
        assert_eq!(full[0].severity, Severity::Critical);
        assert_eq!(
            w(&full[0]).evidence,
            "9223 file handles in use of fs.file-max 9223 (100.0%, /proc/sys/fs/file-nr)"
        );
        let near = check_file_nr(&read("file-nr-near"));
        assert_eq!(near[0].severity, Severity::Warning);
        assert!(check_file_nr(&read("file-nr-healthy")).is_empty());
    }

    #[test]
    fn resets_name_the_side_that_aborted() {
        assert!(check_resets(&delta(&[("Tcp.OutRsts", 5)], 2.0)).is_empty());
        let f = check_resets(&delta(
            &[("TcpExt.TCPAbortOnData", 3), ("Tcp.OutRsts", 3)],
            2.0,
        ));
        assert_eq!(f[0].symptom.id(), "reset");
        assert_eq!(w(&f[0]).evidence, "TCPAbortOnData +3 in 2 s (RSTs sent: 3)");
        assert!(w(&f[0]).cause.contains("SO_LINGER 0"));
    }

    fn listening(addr: &str, port: u16, v6only: Option<bool>, rq: u32, sq: u32) -> Listener {
        let mut s = sock(TcpState::Listening, port, "0.0.0.0", 0, rq, sq);
        s.local.addr = addr.parse().unwrap();
        if s.local.addr.is_ipv6() {
            s.family = 6;
            s.peer.addr = "::".parse().unwrap();
        }
        s.v6only = v6only;
        to_listener(s)
    }

    fn probe_result(target: &str, outcome: ProbeOutcome, errno: Option<&str>) -> ProbeResult {
        ProbeResult {
            target: target.parse().unwrap(),
            local: None,
            outcome,
            connect_us: Some(250),
            waited_us: 250,
            errno: errno.map(str::to_string),
        }
    }

    /// Every probe rule on the evidence that selects it; returns the findings.
    fn probe_rule_cases() -> Vec<Finding> {
        let refused = |t: &str| probe_result(t, ProbeOutcome::Refused, Some("ECONNREFUSED"));
        let on = |port, ls: Vec<Listener>| ListenCheck::Listening {
            port,
            listeners: ls,
        };
        let fw = Ruleset {
            rules: crate::doctor::firewall::parse_nft_json(
                r#"{"nftables": [{"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9004}}, {"reject": {"type": "tcp reset"}}]}}, {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"drop": null}]}}]}"#,
            )
            .unwrap(),
            read: vec!["nft"],
        };
        let v = vec![
            check_probe(
                &refused("127.0.0.1:9"),
                &ListenCheck::Nothing { port: 9 },
                None,
            ),
            // 21, with and without the rule read.
            check_probe(
                &refused("127.0.0.1:9004"),
                &on(9004, vec![listening("127.0.0.1", 9004, None, 0, 128)]),
                Some(&fw),
            ),
            check_probe(
                &refused("127.0.0.1:9004"),
                &on(9004, vec![listening("0.0.0.0", 9004, None, 0, 128)]),
                None,
            ),
            check_probe(
                &refused("127.0.0.1:6301"),
                &on(6301, vec![listening("::", 6301, Some(true), 0, 128)]),
                None,
            ),
            check_probe(
                &refused("127.0.0.1:9004"),
                &on(9004, vec![listening("127.0.0.2", 9004, None, 0, 128)]),
                None,
            ),
            check_probe(&refused("10.0.0.1:80"), &ListenCheck::NotChecked, None),
            check_probe(
                &probe_result("127.0.0.1:8003", ProbeOutcome::TimedOut, None),
                &on(8003, vec![listening("127.0.0.1", 8003, None, 5, 4)]),
                None,
            ),
            check_probe(
                &probe_result("127.0.0.1:8080", ProbeOutcome::TimedOut, None),
                &on(8080, vec![listening("127.0.0.1", 8080, None, 0, 128)]),
                Some(&fw),
            ),
            check_probe(
                &probe_result("10.0.0.1:80", ProbeOutcome::TimedOut, None),
                &ListenCheck::NotChecked,
                None,
            ),
            check_probe(
                &probe_result(
                    "10.0.0.1:80",
                    ProbeOutcome::Unreachable,
                    Some("ENETUNREACH"),
                ),
                &ListenCheck::NotChecked,
                None,
            ),
            check_probe(
                &probe_result("127.0.0.1:9", ProbeOutcome::Reset, Some("ECONNRESET")),
                &ListenCheck::NotChecked,
                None,
            ),
        ];
        v.into_iter().map(|f| f.expect("a finding")).collect()
    }

    #[test]
    fn probe_outcomes_map_to_rules() {
        assert!(check_probe(
            &probe_result("127.0.0.1:9", ProbeOutcome::Connected, None),
            &ListenCheck::NotChecked,
            None
        )
        .is_none());
        let f = probe_rule_cases();
        let rules: Vec<(u16, &str)> = f.iter().map(|f| (f.rule, f.symptom.id())).collect();
        assert_eq!(
            rules,
            [
                (20, "refused"),
                (21, "refused"),
                (21, "refused"),
                (22, "refused"),
                (23, "refused"),
                (24, "refused"),
                (25, "timed-out"),
                (26, "timed-out"),
                (27, "timed-out"),
                (28, "unreachable"),
                (29, "reset"),
            ]
        );
        assert_eq!(
            w(&f[0]).evidence,
            "connect to 127.0.0.1:9 answered with RST (ECONNREFUSED) after 0.250 ms; nothing \
             listens on port 9 here (kernel socket table)"
        );
        // The listener is on the very address probed: the firewall, and its rule.
        assert!(w(&f[1])
            .cause
            .starts_with("a listener takes 127.0.0.1:9004, so the RST did not come"));
        assert!(
            w(&f[1]).cause.ends_with(
                "; the rule: nft table inet t chain input handle 2: tcp dport 9004 reject with \
                 tcp reset"
            ),
            "{}",
            w(&f[1]).cause
        );
        assert!(!w(&f[1]).cause.contains("listens only on"));
        assert!(w(&f[2]).fix.contains("nft -a list ruleset, iptables -S"));
        assert!(!w(&f[2]).cause.contains("the rule:"));
        assert_eq!(
            w(&f[3]).evidence,
            "connect to 127.0.0.1:6301 answered with RST (ECONNREFUSED) after 0.250 ms; port \
             6301 has a listener on [::]:6301 (IPV6_V6ONLY)"
        );
        assert!(
            w(&f[3]).cause.contains("IPV6_V6ONLY=1"),
            "{}",
            w(&f[3]).cause
        );
        assert_eq!(
            w(&f[4]).cause,
            "the service listens only on 127.0.0.2:9004, not on the address probed (127.0.0.1)"
        );
        // Bound to another address: the fix is the bind address, not a crash hunt.
        assert!(w(&f[4])
            .fix
            .starts_with("make the service listen on the address clients use"));
        assert!(!w(&f[4]).fix.contains("crash"), "{}", w(&f[4]).fix);
        assert!(w(&f[6])
            .cause
            .starts_with("the listener's accept queue is full"));
        assert!(w(&f[7]).cause.contains("firewall"));
        assert!(w(&f[7])
            .cause
            .ends_with("; the rule: nft table inet t chain input handle 3: tcp dport 8080 drop"));
        // A dual-stack listener takes IPv4: refused there is the firewall too.
        let f = check_probe(
            &probe_result(
                "127.0.0.1:6300",
                ProbeOutcome::Refused,
                Some("ECONNREFUSED"),
            ),
            &ListenCheck::Listening {
                port: 6300,
                listeners: vec![listening("::", 6300, Some(false), 0, 128)],
            },
            None,
        )
        .unwrap();
        assert_eq!(f.rule, 21);
        assert!(
            w(&f)
                .evidence
                .ends_with("port 6300 has a listener on *:6300"),
            "{}",
            w(&f).evidence
        );
    }

    fn stuck_reader_findings() -> Vec<Finding> {
        let mut s = sock(TcpState::Established, 7000, "127.0.0.1", 45678, 200_000, 0);
        s.processes = Some(vec![ProcessRef {
            pid: 42,
            name: "ssc-stuck".into(),
        }]);
        let stuck = vec![StuckReader {
            socket: s,
            before: 150_000,
        }];
        check_recv_q(&stuck, 1.0)
    }

    #[test]
    fn a_stuck_reader_is_named() {
        let f = stuck_reader_findings();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].rule, f[0].symptom), (13, Symptom::RecvQ));
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            w(&f[0]).evidence,
            "Recv-Q 200000 bytes on 127.0.0.1:7000 (peer 127.0.0.1:45678) held by ssc-stuck(42): \
             150000 at the first reading, 200000 after 1 s (data received and not read)"
        );
        assert!(w(&f[0])
            .fix
            .starts_with("ssc-stuck(42) does not read 127.0.0.1:7000: "));
        assert!(check_recv_q(&[], 1.0).is_empty());
    }

    /// Each numbered rule fires on some evidence in this module's tests, and only listed
    /// numbers are ever given.
    #[test]
    fn every_rule_is_exercised() {
        let mut seen: Vec<u16> = probe_rule_cases().iter().map(|f| f.rule).collect();
        let ls = vec![
            to_listener(sock(TcpState::Listening, 8003, "0.0.0.0", 0, 5, 4)),
            to_listener(sock(TcpState::Listening, 8004, "0.0.0.0", 0, 4, 5)),
        ];
        seen.extend(check_accept_queues(&ls, None).iter().map(|f| f.rule));
        let d = delta(&[("TcpExt.ListenOverflows", 3)], 1.0);
        seen.extend(check_accept_queues(&[], Some(&d)).iter().map(|f| f.rule));
        let d = delta(&[("Udp.RcvbufErrors", 3)], 1.0);
        seen.extend(check_udp_drops(&d, &[]).iter().map(|f| f.rule));
        seen.extend(
            check_close_wait(&close_waits(100), &[])
                .iter()
                .map(|f| f.rule),
        );
        seen.extend(
            check_time_wait(&summary(900, 20, (20000, 20999), 262144))
                .iter()
                .map(|f| f.rule),
        );
        seen.extend(
            check_time_wait(&summary(1200, 0, (10000, 60999), 1300))
                .iter()
                .map(|f| f.rule),
        );
        seen.extend(
            check_time_wait(&summary(1200, 0, (10000, 60999), 262144))
                .iter()
                .map(|f| f.rule),
        );
        let many: Vec<FdUsage> = (0..11).map(|i| usage(i, 64, Some(64))).collect();
        seen.extend(check_process_fds(&many).iter().map(|f| f.rule));
        seen.extend(
            check_file_nr(&SystemFds {
                allocated: 100,
                free: 0,
                max: 100,
                nr_open: None,
            })
            .iter()
            .map(|f| f.rule),
        );
        let d = delta(&[("Tcp.EstabResets", 1)], 1.0);
        seen.extend(check_resets(&d).iter().map(|f| f.rule));
        seen.extend(stuck_reader_findings().iter().map(|f| f.rule));
        seen.sort_unstable();
        seen.dedup();
        let all: Vec<u16> = RULES.iter().map(|r| r.0).collect();
        assert_eq!(seen, all);
    }
}
