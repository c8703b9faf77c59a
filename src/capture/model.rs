//! Plain data of a capture: decoded TCP segments, flows with their handshake outcome, the
//! per-destination summary and libpcap's counters. No I/O, no formatting.

use std::net::SocketAddr;

use serde::Serialize;

use super::local::FlowLocal;

/// The TCP flags sockscope cares about, as the bits of the TCP header's flag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment, reduced to what the handshake tracker needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    /// TCP payload bytes in the captured part of the packet.
    pub payload_len: u32,
    /// For SYNs: a hash of what tells one transmission from another (the IPv4 ID or IPv6
    /// flow label, and the TCP header after the ack field: window, checksum, options with
    /// their timestamp). Equal only for copies of one packet, such as a capture on two
    /// devices sees; a retransmission differs. 0 for other segments.
    pub fingerprint: u64,
    /// The TCP header was cut short (by the snap length) inside its options: ports, numbers
    /// and flags come from its fixed 20 bytes, the options are lost.
    pub cut: bool,
}

/// How a flow ended (or stood when the capture stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Three-way handshake completed and the connection was still up at the end.
    Established,
    /// The SYN was answered by a RST: nothing listens there (or a firewall rejects).
    Refused,
    /// SYN (and its retransmissions) never answered: a firewall dropping, a dead host, a route.
    Unanswered,
    /// RST after the handshake: one side aborted the connection.
    Reset,
    /// Orderly teardown with FIN.
    Closed,
    /// SYN-ACK seen but the handshake never completed before the capture stopped.
    Open,
    /// The capture ended (or the flow was evicted) before an answer could arrive: one SYN,
    /// younger than the initial retransmission timeout (1 s), and no reply. Evidence of
    /// nothing, so it is kept out of `Unanswered` and its verdict.
    Pending,
    /// The client reset its own attempt before the handshake completed (a connect timeout
    /// or cancel, a half-open port scan): not a refusal, not a reset of a connection.
    Aborted,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Established,
        Outcome::Refused,
        Outcome::Unanswered,
        Outcome::Reset,
        Outcome::Closed,
        Outcome::Open,
        Outcome::Pending,
        Outcome::Aborted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Established => "established",
            Outcome::Refused => "refused",
            Outcome::Unanswered => "unanswered",
            Outcome::Reset => "reset",
            Outcome::Closed => "closed",
            Outcome::Open => "open",
            Outcome::Pending => "pending",
            Outcome::Aborted => "aborted",
        }
    }
}

/// Which end of a connection did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One connection attempt, from its first SYN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The side that sent the SYN.
    #[serde(serialize_with = "endpoint")]
    pub client: SocketAddr,
    #[serde(serialize_with = "endpoint")]
    pub server: SocketAddr,
    pub outcome: Outcome,
    /// SYNs sent: 1 plus retransmissions.
    pub syn_attempts: u32,
    /// Time of each SYN (microseconds since the epoch): the retransmit schedule.
    pub syn_times_us: SynTimes,
    /// First SYN time.
    pub start_us: u64,
    /// Time of the last segment seen for this flow.
    pub last_us: u64,
    /// Last SYN → SYN-ACK, microseconds: the network round trip (Karn: timed from the SYN
    /// the SYN-ACK can answer last, so retransmission timeouts are not in it).
    pub handshake_rtt_us: Option<u64>,
    /// First SYN → SYN-ACK, microseconds: the connect time the application felt, SYN
    /// retransmission timeouts included. Equal to `handshake_rtt_us` for one SYN.
    pub connect_us: Option<u64>,
    /// SYN-ACK → the client's ACK of exactly the SYN-ACK, microseconds (null when that ACK
    /// was not captured and later segments proved the handshake).
    pub ack_rtt_us: Option<u64>,
    /// The handshake is known complete from later segments (the client acknowledging the
    /// server's sequence space, or the server sending past its SYN) although no SYN-ACK was
    /// captured: a one-sided or lossy capture, not a silent server.
    pub synack_not_captured: bool,
    /// ACKs the server answered a SYN with that do not acknowledge it (a stale connection on
    /// the same four-tuple, RFC 9293 §3.10.7.3): the client resets that old connection and
    /// sends its SYN again, within this same attempt.
    pub challenge_acks: u32,
    /// Who sent the RST, for refused, reset and aborted flows.
    pub reset_by: Option<Side>,
    /// Who sent the first FIN, for closed flows.
    pub closed_by: Option<Side>,
    /// True when the flow was pushed out of a full flow table before it finished.
    pub evicted: bool,
}

/// The times of a flow's SYNs, kept inline so that a flow costs no allocation of its own: at
/// tens of thousands of connections a second, one small allocation per flow was a tenth of
/// the capture's CPU. The first [`SynTimes::CAPACITY`] times are kept (the kernel's default
/// `tcp_syn_retries` of 6 sends 7 SYNs); later ones still count in `Flow::syn_attempts`.
/// Serialises as a JSON array of microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynTimes {
    first: u64,
    /// Retransmissions as offsets from `first` (saturating at about 71 minutes).
    later_us: [u32; SynTimes::CAPACITY - 1],
    len: u8,
}

impl SynTimes {
    pub const CAPACITY: usize = 8;

    pub fn new(first_us: u64) -> SynTimes {
        SynTimes {
            first: first_us,
            later_us: [0; Self::CAPACITY - 1],
            len: 1,
        }
    }

    /// Records one more SYN; false when it is past the capacity (and not kept).
    pub fn push(&mut self, ts_us: u64) -> bool {
        let i = usize::from(self.len);
        if i >= Self::CAPACITY {
            return false;
        }
        let offset = ts_us.saturating_sub(self.first);
        self.later_us[i - 1] = u32::try_from(offset).unwrap_or(u32::MAX);
        self.len += 1;
        true
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never true: a flow begins with its first SYN.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn last(&self) -> u64 {
        self.iter().last().unwrap_or(self.first)
    }

    /// The times in order, microseconds since the epoch.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let later = &self.later_us[..self.len().saturating_sub(1)];
        std::iter::once(self.first).chain(later.iter().map(|&d| self.first + u64::from(d)))
    }

    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }

    /// For fixtures and tests: the times given, up to the capacity. None for an empty list.
    pub fn from_times(times: &[u64]) -> Option<SynTimes> {
        let (&first, rest) = times.split_first()?;
        let mut t = SynTimes::new(first);
        for &ts in rest {
            t.push(ts);
        }
        Some(t)
    }
}

impl Serialize for SynTimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Per-destination counts and handshake RTT percentiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestSummary {
    #[serde(serialize_with = "endpoint")]
    pub server: SocketAddr,
    /// Connection attempts (flows), not SYN packets.
    pub attempts: u64,
    pub established: u64,
    pub refused: u64,
    pub unanswered: u64,
    pub reset: u64,
    /// Of `reset`, those the server sent (the rest came from the client).
    pub reset_by_server: u64,
    pub closed: u64,
    pub open: u64,
    /// Attempts the capture ended on before an answer could arrive (see `Outcome::Pending`).
    pub pending: u64,
    /// Attempts the client reset before the handshake completed.
    pub aborted: u64,
    /// SYN retransmissions across all attempts.
    pub syn_retransmits: u64,
    pub rtt_min_us: Option<u64>,
    pub rtt_median_us: Option<u64>,
    pub rtt_p99_us: Option<u64>,
}

/// libpcap's counters plus sockscope's own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CaptureStats {
    /// Packets the kernel filter passed (libpcap `ps_recv`; packets read, for a file).
    pub received: u64,
    /// Packets dropped for lack of buffer space (libpcap `ps_drop`).
    pub dropped: u64,
    /// Packets dropped by the interface or driver (libpcap `ps_ifdrop`).
    pub if_dropped: u64,
    /// Packets decoded as TCP.
    pub tcp_segments: u64,
    /// Packets that were not TCP or could not be decoded (truncated, unknown link type).
    pub undecoded: u64,
    /// Of `tcp_segments`, those whose TCP header was cut inside its options (snap length):
    /// decoded from the fixed header, options lost.
    pub truncated: u64,
    /// Segments outside any tracked flow: connections begun before the capture (their SYN
    /// was not seen) or already finished (the last ACK after both FINs).
    pub midstream: u64,
    /// Flows pushed out of the full flow table (SYN flood protection).
    pub evicted: u64,
    /// Finished flows counted in the summary but not kept in the flow list (list cap).
    pub flows_omitted: u64,
    /// The input ended in an error (a damaged file): the report holds what came before it.
    pub partial: bool,
    /// That error, when `partial`.
    pub read_error: Option<String>,
    /// What broke off, when `partial` (it decides the exit code).
    #[serde(skip)]
    pub broke: Option<Broke>,
}

/// What ended a capture early, leaving a partial report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broke {
    /// The input file is damaged (`-r`): bad input.
    Input,
    /// Writing the `-w` file failed (a full disk, a bad path): the user's output.
    Write,
    /// Reading packets from the device failed (it went away, libpcap failed).
    Device,
}

/// An address in JSON as everywhere in sockscope: `{"addr": "10.0.0.9", "port": 443}`.
fn endpoint<S: serde::Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    crate::sockets::model::Endpoint {
        addr: a.ip(),
        port: a.port(),
    }
    .serialize(s)
}

/// What the counts of one destination mean, in the words of the symptom table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The rule that produced it (`V1`…; README "What it means" lists them).
    pub rule: &'static str,
    #[serde(serialize_with = "endpoint")]
    pub server: SocketAddr,
    /// The symptom id of `sockscope explain` (refused, timed-out, reset).
    pub symptom: &'static str,
    pub text: String,
}

/// What a capture produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureReport {
    pub flows: Vec<Flow>,
    pub summary: Vec<DestSummary>,
    /// Destinations with refused, unanswered or reset connections, explained.
    pub verdicts: Vec<Verdict>,
    pub stats: CaptureStats,
    /// The local ends of flows and their processes (live captures only; see
    /// [`super::local`]). In JSON, flattened into each flow.
    pub local: FlowLocals,
    /// Why flows could not be named (a failed dump), for stderr.
    pub local_notes: Vec<String>,
}

impl CaptureReport {
    /// A report without local processes (a file, a test).
    pub fn new(
        flows: Vec<Flow>,
        summary: Vec<DestSummary>,
        verdicts: Vec<Verdict>,
        stats: CaptureStats,
    ) -> CaptureReport {
        CaptureReport {
            flows,
            summary,
            verdicts,
            stats,
            local: FlowLocals::default(),
            local_notes: Vec::new(),
        }
    }
}

/// The local ends of a report's flows, by index in its `flows`. Flows share their few
/// distinct values (every TIME_WAIT client end is the same "client, no process"), so each
/// flow holds an index into them: a busy capture names ~100k flows at its end, and a
/// `FlowLocal` per flow (56 bytes, in a hashed map or a vector) was fresh memory to fault in
/// and walk while writing the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowLocals {
    /// Per flow: 0 for none, else 1 + its index in `distinct`.
    of_flow: Vec<u32>,
    distinct: Vec<FlowLocal>,
}

impl FlowLocals {
    /// What is known of flow `i`'s local ends (None: no end matched a socket).
    pub fn get(&self, i: usize) -> Option<&FlowLocal> {
        match *self.of_flow.get(i)? {
            0 => None,
            k => self.distinct.get(k as usize - 1),
        }
    }

    /// Adds a value flows can share; its handle for [`FlowLocals::set`].
    pub fn add(&mut self, local: FlowLocal) -> u32 {
        self.distinct.push(local);
        u32::try_from(self.distinct.len()).unwrap_or(u32::MAX)
    }

    /// Gives flow `i` the value of `handle` (from [`FlowLocals::add`]).
    pub fn set(&mut self, i: usize, handle: u32) {
        if self.of_flow.len() <= i {
            self.of_flow.resize(i + 1, 0);
        }
        self.of_flow[i] = handle;
    }
}

/// A flow with what is known of its local ends, as one JSON object.
#[derive(Serialize)]
pub struct FlowJson<'a> {
    #[serde(flatten)]
    pub flow: &'a Flow,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub local: Option<&'a FlowLocal>,
}

impl Serialize for CaptureReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Flows<'a>(&'a CaptureReport);
        impl Serialize for Flows<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.flows.iter().enumerate().map(|(i, flow)| FlowJson {
                    flow,
                    local: self.0.local.get(i),
                }))
            }
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            flows: Flows<'a>,
            summary: &'a [DestSummary],
            verdicts: &'a [Verdict],
            stats: &'a CaptureStats,
        }
        Doc {
            flows: Flows(self),
            summary: &self.summary,
            verdicts: &self.verdicts,
            stats: &self.stats,
        }
        .serialize(s)
    }
}
