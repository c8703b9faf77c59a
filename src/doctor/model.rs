//! The doctor's model: findings and the report that holds them. Plain data, no I/O.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

pub use super::table::Symptom;
use crate::scope::Where;
use crate::sockets::model::{Endpoint, ProcessRef, Socket};

/// How bad a finding is. `Warning` and worse make `doctor` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not a problem by itself (e.g. many TIME_WAIT with ports to spare).
    Info,
    /// Close to a limit, or a problem happening now at a small rate.
    Warning,
    /// At a limit: connections are failing now.
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One diagnosis: which table row (`symptom`), how bad, which rule gave it, and the numbers
/// measured on this host. The words (evidence, cause, fix) are written from these by
/// `render::doctor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The number of the rule that gave this verdict (see `checks::RULES`).
    pub rule: u16,
    pub symptom: Symptom,
    pub severity: Severity,
    pub data: Evidence,
    /// Where it lives on the node (`doctor --all-netns`); `None` for the namespace checked.
    pub place: Option<Where>,
}

/// An address and port (JSON `{addr, port}`); `dual_stack` marks a `[::]` socket that takes
/// IPv4 too (written `*` like ss does), `v6only` the listener's IPV6_V6ONLY where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Addr {
    pub addr: IpAddr,
    pub port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
}

impl Addr {
    pub fn of(e: &Endpoint) -> Addr {
        Addr {
            addr: e.addr,
            port: e.port,
            dual_stack: false,
            v6only: None,
        }
    }

    /// One end of a socket, marked dual-stack when the socket is.
    pub fn of_socket(s: &Socket, e: &Endpoint) -> Addr {
        Addr {
            dual_stack: s.dual_stack(),
            ..Addr::of(e)
        }
    }

    pub fn of_sockaddr(a: SocketAddr) -> Addr {
        Addr::of(&Endpoint {
            addr: a.ip(),
            port: a.port(),
        })
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.addr,
            port: self.port,
        }
    }
}

/// Counters that moved over an interval: full names (`TcpExt.ListenOverflows`) and deltas,
/// only those that moved, in the order the rule lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub counters: Vec<CounterMove>,
    pub interval_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterMove {
    pub name: String,
    pub delta: u64,
}

/// The numbers behind a finding, one shape per kind of rule (JSON `data`; the `symptom` and
/// `rule` say which shape it is).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    /// Rules 1, 2.
    AcceptQueue(QueueData),
    /// Rule 3: the overflow counters moved with no queue full at the dump.
    ListenDrops(ListenDropsData),
    /// Rule 4.
    UdpDrops(UdpDropsData),
    /// Rule 13.
    RecvQ(RecvQData),
    /// Rule 5.
    CloseWait(CloseWaitData),
    /// Rule 6.
    Ports(PortsData),
    /// Rule 7.
    TwBuckets(TwBucketsData),
    /// Rule 8.
    TimeWait(TimeWaitData),
    /// Rule 9.
    ProcessFds(ProcessFdsData),
    /// Rule 10.
    MoreProcesses(MoreProcessesData),
    /// Rule 11.
    FileTable(FileTableData),
    /// Rule 12.
    Resets(ResetsData),
    /// Rules 20-29.
    Probe(ProbeData),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueData {
    pub listener: Addr,
    pub queued: u32,
    pub backlog: u32,
    /// The processes holding the listener, when they could be read.
    pub owners: Vec<ProcessRef>,
    /// ListenOverflows/ListenDrops, when they moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflows: Option<Moved>,
    /// The share of the backlog from which a queue is a warning.
    pub warn_percent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenDropsData {
    pub overflows: Moved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UdpDropsData {
    /// UdpRcvbufErrors, Udp6RcvbufErrors (as `Udp.RcvbufErrors`, `Udp6.RcvbufErrors`).
    pub counters: Moved,
    /// The sockets that dropped, most first.
    pub sockets: Vec<UdpDropper>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UdpDropper {
    pub local: Addr,
    pub owners: Vec<ProcessRef>,
    pub dropped: u64,
    /// SO_RCVBUF in bytes, when read.
    pub rcvbuf: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecvQData {
    pub local: Addr,
    pub peer: Addr,
    pub owners: Vec<ProcessRef>,
    /// Recv-Q (bytes) at the first and the second reading.
    pub recv_q_before: u32,
    pub recv_q_after: u32,
    pub interval_us: u64,
    pub threshold_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseWaitData {
    pub close_wait: u64,
    pub threshold: u64,
    /// Who holds them, most first.
    pub holders: Vec<Holder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    pub name: String,
    pub sockets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortsData {
    pub peer: Addr,
    pub ports_used: u64,
    pub range_low: u16,
    pub range_high: u16,
    pub range_size: u64,
    pub percent: f64,
    /// TIME_WAIT towards this peer, and in all.
    pub time_wait_to_peer: u64,
    pub time_wait: u64,
    pub tcp_tw_reuse: Option<i64>,
    pub warn_percent: f64,
    pub critical_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwBucketsData {
    pub time_wait: u64,
    pub tcp_max_tw_buckets: i64,
    pub warn_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeWaitData {
    pub time_wait: u64,
    /// The busiest peer's share of the ephemeral range, when known.
    pub busiest_percent: Option<f64>,
    pub tcp_tw_reuse: Option<i64>,
    pub info_from: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessFdsData {
    pub pid: u32,
    pub name: String,
    pub fds: u64,
    pub soft_limit: u64,
    /// `None`: unlimited.
    pub hard_limit: Option<u64>,
    pub percent: f64,
    pub warn_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoreProcessesData {
    /// Processes above the threshold beyond those listed.
    pub more: u64,
    pub warn_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileTableData {
    pub in_use: u64,
    pub file_max: u64,
    pub percent: f64,
    pub warn_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetsData {
    /// The reset/abort counters that moved.
    pub counters: Moved,
    /// Tcp.OutRsts over the same interval.
    pub out_rsts: u64,
}

/// What the probe saw, with what the local socket table and the firewall said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeData {
    pub target: Addr,
    pub outcome: ProbeOutcome,
    pub errno: Option<String>,
    pub waited_us: u64,
    pub connect_us: Option<u64>,
    /// The listeners on the port (local targets); `None` when not checked (a remote target).
    pub listeners: Option<Vec<Addr>>,
    /// The firewall's rules that match the port with the verdict in question, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_rules: Option<Vec<FwRuleRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FwRuleRef {
    pub location: String,
    pub text: String,
}

/// An established socket whose receive queue stayed full across doctor's interval: the
/// owner is not reading it. `socket` is the second reading, with its owners when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckReader {
    pub socket: crate::sockets::model::Socket,
    /// Recv-Q at the first reading (bytes).
    pub before: u32,
}

/// What the connect probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// The handshake completed (and the peer did not reset it at once).
    Connected,
    /// The peer answered the SYN with RST: nothing listens there.
    Refused,
    /// No SYN-ACK within the timeout.
    TimedOut,
    /// The host or network is unreachable (ICMP error or no route).
    Unreachable,
    /// The handshake completed, then the peer sent RST.
    Reset,
}

impl ProbeOutcome {
    pub fn name(self) -> &'static str {
        match self {
            ProbeOutcome::Connected => "connected",
            ProbeOutcome::Refused => "refused",
            ProbeOutcome::TimedOut => "timed-out",
            ProbeOutcome::Unreachable => "unreachable",
            ProbeOutcome::Reset => "reset",
        }
    }
}

/// The probe's result: the target as resolved, the outcome and its timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    #[serde(serialize_with = "addr_json")]
    pub target: SocketAddr,
    /// The probe socket's own address (the client end of the flow a capture shows).
    #[serde(serialize_with = "opt_addr_json")]
    pub local: Option<SocketAddr>,
    pub outcome: ProbeOutcome,
    /// Time from connect() to the handshake's end (connected/reset), in microseconds.
    pub connect_us: Option<u64>,
    /// How long the probe waited in total, in microseconds.
    pub waited_us: u64,
    /// The errno name the kernel returned, if any (ECONNREFUSED, EHOSTUNREACH…).
    pub errno: Option<String>,
}

fn addr_json<S: serde::Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    Addr::of_sockaddr(*a).serialize(s)
}

fn opt_addr_json<S: serde::Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    a.map(Addr::of_sockaddr).serialize(s)
}

/// What a run covered, so "no problems found" is a statement with a scope (JSON `checked`,
/// written in words by `render::doctor`).
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    AcceptQueues {
        listeners: u64,
        interval_us: u64,
    },
    Sockets {
        total: u64,
        time_wait: u64,
        close_wait: u64,
        range: Option<(u16, u16)>,
    },
    RecvQ {
        interval_us: u64,
        threshold_bytes: u32,
    },
    Resets {
        interval_us: u64,
    },
    UdpDrops {
        interval_us: u64,
    },
    ProcessFds {
        readable: u64,
        unreadable: u64,
    },
    /// `None`: skipped (host-wide, not part of one namespace).
    FileTable(Option<(u64, u64)>),
    ListenersOnPort {
        port: u16,
        count: u64,
    },
    Connect {
        target: SocketAddr,
        timeout_ms: u64,
        outcome: ProbeOutcome,
        connect_us: Option<u64>,
    },
    Capture {
        device: String,
    },
    Firewall {
        read: Vec<&'static str>,
        rules: u64,
    },
    /// `--all-netns`: how many namespaces were checked.
    Namespaces {
        count: u64,
    },
    /// Plain `doctor`: the cheap look at the node's other namespaces.
    OtherNamespaces {
        count: u64,
    },
}

/// Findings elsewhere on the node, found by plain `doctor`'s cheap look (accept queues and
/// TIME_WAIT from one dump per namespace): counted for a hint, not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Elsewhere {
    pub findings: u64,
    pub namespaces: u64,
    /// The namespaces with findings (where to look with `--all-netns --netns`), most first.
    #[serde(rename = "where")]
    pub places: Vec<ElsewhereAt>,
}

/// One namespace of [`Elsewhere`] and how many findings it showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElsewhereAt {
    #[serde(flatten)]
    pub place: crate::scope::Where,
    pub findings: u64,
}

/// Everything `doctor` prints: the findings, worst first, and what was checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub checked: Vec<Checked>,
    pub probe: Option<ProbeResult>,
    /// With `--capture`: the probe's packets as the capture saw them.
    pub capture: Option<PacketTrace>,
    /// Plain `doctor` on the host: problems seen in other namespaces.
    pub elsewhere: Option<Elsewhere>,
}

/// The probe's own packets, from a live capture around it (`doctor --capture`): what backs
/// "timed out" with "SYN sent 3 times, no reply".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketTrace {
    /// The capture's verdict on the flow: established, refused, unanswered, reset, closed,
    /// open; `not-seen` when no packet of the probe was captured.
    pub outcome: String,
    pub syn_attempts: u32,
    /// When each SYN left, in µs after the first: the retransmission schedule.
    pub syn_at_us: Vec<u64>,
    /// SYN → SYN-ACK, in µs.
    pub handshake_rtt_us: Option<u64>,
    /// Who sent the RST (client or server), for refused and reset flows.
    pub reset_by: Option<String>,
    /// TCP segments the capture decoded in all (the probe's and any other on the port).
    pub tcp_segments: u64,
}

impl Report {
    /// Worst first, then by symptom id so output is stable.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.symptom.id().cmp(b.symptom.id()))
        });
    }

    /// True when a finding is a warning or worse (exit 1).
    pub fn has_problems(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity >= Severity::Warning)
    }
}
