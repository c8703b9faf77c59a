//! The doctor's model: findings and the report that holds them. Plain data, no I/O.

use serde::Serialize;

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

/// One diagnosis: which table row (`symptom`, a stable id), how bad, the numbers measured on
/// this host, and the row's cause and fix made concrete for what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The number of the rule that gave this verdict (see `checks::RULES`).
    pub rule: u16,
    pub symptom: &'static str,
    pub severity: Severity,
    /// The measurement, with its numbers ("accept queue 5/4 on 127.0.0.1:8003").
    pub evidence: String,
    pub cause: String,
    pub fix: String,
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
    pub target: std::net::SocketAddr,
    /// The probe socket's own address (the client end of the flow a capture shows).
    pub local: Option<std::net::SocketAddr>,
    pub outcome: ProbeOutcome,
    /// Time from connect() to the handshake's end (connected/reset), in milliseconds.
    pub connect_ms: Option<f64>,
    /// How long the probe waited in total, in milliseconds.
    pub waited_ms: f64,
    /// The errno name the kernel returned, if any (ECONNREFUSED, EHOSTUNREACH…).
    pub errno: Option<String>,
}

/// Everything `doctor` prints: the findings, worst first, and what was checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub checked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
    /// With `--capture`: the probe's packets as the capture saw them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PacketTrace>,
}

/// The probe's own packets, from a live capture around it (`doctor --capture`): what backs
/// "timed out" with "SYN sent 3 times, no reply".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketTrace {
    /// The capture's verdict on the flow: established, refused, unanswered, reset, closed,
    /// open; `not-seen` when no packet of the probe was captured.
    pub outcome: String,
    pub syn_attempts: u32,
    /// When each SYN left, in ms after the first: the retransmission schedule.
    pub syn_at_ms: Vec<f64>,
    /// SYN → SYN-ACK.
    pub handshake_rtt_ms: Option<f64>,
    /// Who sent the RST (client or server), for refused and reset flows.
    pub reset_by: Option<String>,
    /// TCP segments the capture decoded in all (the probe's and any other on the port).
    pub tcp_segments: u64,
    /// The same in words, as appended to the finding.
    pub summary: String,
}

impl Report {
    /// Worst first, then by symptom id so output is stable.
    pub fn sort(&mut self) {
        self.findings
            .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.symptom.cmp(b.symptom)));
    }

    /// True when a finding is a warning or worse (exit 1).
    pub fn has_problems(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity >= Severity::Warning)
    }
}
