//! The per-flow handshake state machine: segments in, flow outcomes out. Pure (no clock, no
//! I/O: time comes from the segments), so captures from files and fixtures replay exactly.
//!
//! Memory is bounded: at most `max_flows` flows in progress (the oldest is evicted, counted and
//! reported as it stood) and at most `max_flows` finished flows kept for the flow list; the
//! per-destination summary still counts every flow.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use super::model::{Flow, Outcome, Segment, Side, SynTimes};
use super::summary::SummaryBuilder;

/// Two SYNs are one packet captured twice (on two devices) only when they are byte-identical
/// where a retransmission differs (see `Segment::fingerprint`) and this close in time; a
/// retransmission, however soon, counts as an attempt.
const DUPLICATE_WINDOW_US: u64 = 100_000;

/// The initial retransmission timeout (RFC 6298, Linux's `TCP_TIMEOUT_INIT`). A lone SYN
/// younger than this when tracking ends could still be answered: `pending`, not `unanswered`.
/// One retransmission is the client's own word that no answer came within its timeout, so a
/// flow with more than one SYN is `unanswered` however young its last SYN (the next timeout
/// is not predictable from outside: Linux ≥ 6.5 keeps the first `tcp_syn_linear_timeouts`
/// (4) at 1 s instead of doubling them).
pub const INITIAL_RTO_US: u64 = 1_000_000;

/// Default cap on flows in progress (and on finished flows kept for the list).
pub const DEFAULT_MAX_FLOWS: usize = 100_000;

/// What one segment meant, for the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A SYN; `attempt` > 1 is a retransmission (the peer has not answered yet).
    Syn { attempt: u32 },
    /// The server's SYN-ACK; `rtt_us` from the SYN it answers. `repeat` for retransmissions.
    SynAck { rtt_us: u64, repeat: bool },
    /// The handshake completed: the client's ACK of the SYN-ACK (`ack_rtt_us` when it acks
    /// exactly the SYN-ACK), or a later segment that proves it (`synack_captured` false when
    /// no SYN-ACK was seen at all).
    Established {
        ack_rtt_us: Option<u64>,
        synack_captured: bool,
    },
    /// The server answered the SYN with an ACK that does not acknowledge it: a stale
    /// connection on the same four-tuple (a challenge ACK).
    ChallengeAck,
    /// The client's RST answering that challenge ACK; the attempt goes on.
    ChallengeRst,
    /// The SYN was answered by RST.
    Refused,
    /// The client reset its own attempt before the handshake completed.
    Aborted,
    /// RST after (or during) the handshake.
    Reset { by: Side },
    /// A FIN; `closed` when both sides have now sent theirs.
    Fin { by: Side, closed: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SynSent,
    SynReceived,
    Established,
    /// At least one FIN seen.
    Closing,
}

struct Active {
    flow: Flow,
    state: State,
    generation: u64,
    syn_seq: u32,
    /// `Segment::fingerprint` of the last SYN, to tell copies from retransmissions.
    syn_fingerprint: u64,
    /// Time of the last SYN (`SynTimes` stops keeping them after its capacity).
    last_syn_us: u64,
    /// The ack number of the last challenge ACK: the client's RST answering it carries it
    /// as its sequence number.
    challenge_ack: u32,
    synack_seq: u32,
    synack_us: u64,
    fin_client: bool,
    fin_server: bool,
}

/// Both directions of a connection share one key (lower endpoint first), so each segment
/// costs one hash lookup; the flow itself remembers which end is the client. Addresses are
/// packed into integers (IPv4 as IPv4-mapped IPv6): 48 bytes instead of two `SocketAddr`s' 64 and
/// hashed in five multiplications instead of a byte-slice walk per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    lo: Endpoint,
    hi: Endpoint,
}

/// The address's high and low 64 bits, then the port (u128 would align the key to 16 bytes).
type Endpoint = (u64, u64, u16);

fn endpoint(a: SocketAddr) -> Endpoint {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    };
    ((ip >> 64) as u64, ip as u64, a.port())
}

fn key_of(a: SocketAddr, b: SocketAddr) -> Key {
    let (a, b) = (endpoint(a), endpoint(b));
    if a <= b {
        Key { lo: a, hi: b }
    } else {
        Key { lo: b, hi: a }
    }
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.lo.0);
        h.write_u64(self.lo.1);
        h.write_u64(self.hi.0);
        h.write_u64(self.hi.1);
        h.write_u64(u64::from(self.lo.2) << 16 | u64::from(self.hi.2));
    }
}

pub use crate::fxhash::FxHasher;

type FlowMap = HashMap<Key, Active, BuildHasherDefault<FxHasher>>;

pub struct Tracker {
    max_flows: usize,
    active: FlowMap,
    /// Insertion order of active flows, for O(1) eviction of the oldest; entries whose
    /// generation no longer matches are stale and skipped.
    order: VecDeque<(Key, u64)>,
    next_generation: u64,
    finished: Vec<Flow>,
    summary: SummaryBuilder,
    /// The latest segment time seen: where a capture with no other end time ended.
    last_ts: u64,
    pub midstream: u64,
    pub evicted: u64,
    pub flows_omitted: u64,
    /// Finished flows are handed out ([`Tracker::take_finished`]), not kept: no list cap.
    stream: bool,
}

/// Everything the tracker learned, once the capture is over.
pub struct TrackerResult {
    pub flows: Vec<Flow>,
    pub summary: Vec<super::model::DestSummary>,
    pub midstream: u64,
    pub evicted: u64,
    pub flows_omitted: u64,
}

impl Tracker {
    pub fn new(max_flows: usize) -> Tracker {
        Tracker {
            max_flows: max_flows.max(1),
            active: FlowMap::default(),
            order: VecDeque::new(),
            next_generation: 0,
            finished: Vec::new(),
            summary: SummaryBuilder::default(),
            last_ts: 0,
            midstream: 0,
            evicted: 0,
            flows_omitted: 0,
            stream: false,
        }
    }

    /// See [`super::pipeline::Pipeline::stream_flows`].
    pub fn stream_flows(&mut self) {
        self.stream = true;
    }

    /// The flows finished since the last call, in the order they finished.
    pub fn take_finished(&mut self) -> Vec<Flow> {
        std::mem::take(&mut self.finished)
    }

    /// Flows begun so far (each first SYN of a connection attempt).
    pub fn flows_started(&self) -> u64 {
        self.next_generation
    }

    /// Flows in progress right now.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Feeds one segment; returns what it meant, or None for segments that change nothing
    /// (data ACKs, segments of connections that began before the capture).
    pub fn feed(&mut self, s: &Segment) -> Option<Event> {
        self.last_ts = self.last_ts.max(s.ts_us);
        let f = s.flags;
        if f.syn() && !f.ack() {
            return self.syn(s);
        }
        let key = key_of(s.src, s.dst);
        let Some(a) = self.active.get_mut(&key) else {
            self.midstream += 1;
            return None;
        };
        let side = if s.src == a.flow.client {
            Side::Client
        } else {
            Side::Server
        };
        a.flow.last_us = s.ts_us;
        if f.rst() {
            // The client's answer to a challenge ACK carries the sequence number that ACK
            // acknowledged; the client stays in SYN-SENT and sends its SYN again (RFC 9293
            // §3.10.7.3), so the attempt goes on.
            if side == Side::Client
                && a.state == State::SynSent
                && a.flow.challenge_acks > 0
                && s.seq == a.challenge_ack
            {
                return Some(Event::ChallengeRst);
            }
            let outcome = match (a.state, side) {
                (State::SynSent, Side::Server) => Outcome::Refused,
                (State::SynSent | State::SynReceived, Side::Client) => Outcome::Aborted,
                _ => Outcome::Reset,
            };
            a.flow.reset_by = Some(side);
            self.finish_flow(&key, outcome, false);
            return Some(match outcome {
                Outcome::Refused => Event::Refused,
                Outcome::Aborted => Event::Aborted,
                _ => Event::Reset { by: side },
            });
        }
        if f.syn() {
            // SYN-ACK.
            if side != Side::Server {
                return None;
            }
            return match a.state {
                State::SynSent => {
                    a.state = State::SynReceived;
                    Some(a.synack(s))
                }
                State::SynReceived => Some(Event::SynAck {
                    rtt_us: a.flow.handshake_rtt_us.unwrap_or(0),
                    repeat: true,
                }),
                // Reordered: the handshake was proved by later segments first.
                _ if a.flow.synack_not_captured => {
                    a.flow.synack_not_captured = false;
                    Some(a.synack(s))
                }
                _ => None,
            };
        }
        let mut event = None;
        let synack_captured = !matches!(a.state, State::SynSent);
        let completes = match (a.state, side) {
            // In SYN-SENT a client sends nothing but SYNs and RSTs: any ACK from it
            // acknowledges a SYN-ACK the capture missed. A server segment acknowledging the
            // SYN without SYN flag comes only from an established connection; any other
            // ACK is a challenge ACK of a stale connection.
            (State::SynSent, Side::Client) => f.ack(),
            (State::SynSent, Side::Server) if f.ack() => {
                if s.ack != a.syn_seq.wrapping_add(1) {
                    a.flow.challenge_acks += 1;
                    a.challenge_ack = s.ack;
                    return Some(Event::ChallengeAck);
                }
                true
            }
            // Any ACK of the SYN-ACK completes it, also one that acknowledges server data
            // too (TCP Fast Open, or a lost pure ACK followed by data).
            (State::SynReceived, Side::Client) => f.ack() && after(s.ack, a.synack_seq),
            // The server sends past its SYN (data, FIN, ACKs of data) only once established.
            (State::SynReceived, Side::Server) => after(s.seq, a.synack_seq),
            _ => false,
        };
        if completes {
            let exact =
                side == Side::Client && synack_captured && s.ack == a.synack_seq.wrapping_add(1);
            let ack_rtt = exact.then(|| s.ts_us.saturating_sub(a.synack_us));
            a.flow.ack_rtt_us = ack_rtt;
            a.flow.synack_not_captured = !synack_captured;
            a.state = State::Established;
            event = Some(Event::Established {
                ack_rtt_us: ack_rtt,
                synack_captured,
            });
        }
        if f.fin() && matches!(a.state, State::Established | State::Closing) {
            let first = !(a.fin_client || a.fin_server);
            match side {
                Side::Client => a.fin_client = true,
                Side::Server => a.fin_server = true,
            }
            if first {
                a.flow.closed_by = Some(side);
            }
            a.state = State::Closing;
            let closed = a.fin_client && a.fin_server;
            if closed {
                self.finish_flow(&key, Outcome::Closed, false);
            }
            // A FIN that also completes the handshake reports the FIN; the RTT is kept.
            return Some(Event::Fin { by: side, closed });
        }
        event
    }

    fn syn(&mut self, s: &Segment) -> Option<Event> {
        let key = key_of(s.src, s.dst);
        if let Some(a) = self.active.get_mut(&key).filter(|a| a.flow.client == s.src) {
            let last_syn = a.last_syn_us;
            if a.syn_seq == s.seq
                && a.syn_fingerprint == s.fingerprint
                && s.ts_us.saturating_sub(last_syn) < DUPLICATE_WINDOW_US
            {
                // The same SYN seen twice (`-i any` on a host with bridges and veths sees a
                // packet on each device): not a retransmission.
                return None;
            }
            let same_attempt =
                a.syn_seq == s.seq && matches!(a.state, State::SynSent | State::SynReceived);
            if same_attempt {
                a.syn_fingerprint = s.fingerprint;
                a.last_syn_us = s.ts_us;
                a.flow.syn_attempts += 1;
                a.flow.syn_times_us.push(s.ts_us);
                a.flow.last_us = s.ts_us;
                return Some(Event::Syn {
                    attempt: a.flow.syn_attempts,
                });
            }
        }
        // A new connection on the same four-tuple (or a SYN from the other end): the old one
        // is over.
        if let Some(outcome) = self.active.get(&key).map(|a| a.outcome_at(s.ts_us)) {
            self.finish_flow(&key, outcome, false);
        }
        while self.active.len() >= self.max_flows {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            let current = self
                .active
                .get(&old)
                .map(|a| (a.generation, a.outcome_at(s.ts_us)));
            if let Some((g, outcome)) = current {
                if g == generation {
                    self.evicted += 1;
                    self.finish_flow(&old, outcome, true);
                }
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.order.push_back((key, generation));
        self.active.insert(
            key,
            Active {
                flow: Flow {
                    client: s.src,
                    server: s.dst,
                    outcome: Outcome::Unanswered,
                    syn_attempts: 1,
                    syn_times_us: SynTimes::new(s.ts_us),
                    start_us: s.ts_us,
                    last_us: s.ts_us,
                    handshake_rtt_us: None,
                    connect_us: None,
                    ack_rtt_us: None,
                    synack_not_captured: false,
                    challenge_acks: 0,
                    reset_by: None,
                    closed_by: None,
                    evicted: false,
                },
                state: State::SynSent,
                generation,
                syn_seq: s.seq,
                syn_fingerprint: s.fingerprint,
                last_syn_us: s.ts_us,
                challenge_ack: 0,
                synack_seq: 0,
                synack_us: 0,
                fin_client: false,
                fin_server: false,
            },
        );
        Some(Event::Syn { attempt: 1 })
    }

    fn finish_flow(&mut self, key: &Key, outcome: Outcome, evicted: bool) {
        let Some(a) = self.active.remove(key) else {
            return;
        };
        let mut flow = a.flow;
        flow.outcome = outcome;
        flow.evicted = evicted;
        self.summary.add(&flow);
        if self.stream || self.finished.len() < self.max_flows {
            if !self.stream && self.finished.capacity() == 0 {
                // The list is bounded by max_flows: room for all of it at once (see
                // reserve_huge: faulting it in 4 KiB pages was an eighth of a busy capture).
                crate::mem::reserve_huge(&mut self.finished, self.max_flows);
            }
            self.finished.push(flow);
        } else {
            self.flows_omitted += 1;
        }
        // Keep the order queue near the size of the active table when flows finish on their
        // own: dropping stale entries costs O(1) amortised per flow, and a queue that grew to
        // the cap first would fault in megabytes of fresh pages during a busy capture.
        if self.order.len() > 2 * self.active.len() + 1024 {
            let active = &self.active;
            self.order
                .retain(|(k, g)| active.get(k).is_some_and(|a| a.generation == *g));
        }
    }

    /// Ends the capture at its last segment (a file, or a live capture stopped by `-c`).
    pub fn finish(self) -> TrackerResult {
        let end_us = self.last_ts;
        self.finish_at(end_us)
    }

    /// Ends the capture at `end_us` (a live capture's stop time; never before its last
    /// segment): flows still in progress take the outcome of where they stand then.
    pub fn finish_at(mut self, end_us: u64) -> TrackerResult {
        let end_us = end_us.max(self.last_ts);
        let keys: Vec<(Key, u64)> = self.order.drain(..).collect();
        for (key, generation) in keys {
            let outcome = match self.active.get(&key) {
                Some(a) if a.generation == generation => a.outcome_at(end_us),
                _ => continue,
            };
            self.finish_flow(&key, outcome, false);
        }
        let mut flows = self.finished;
        flows.sort_by_key(|f| (f.start_us, f.client, f.server));
        TrackerResult {
            flows,
            summary: self.summary.finish(),
            midstream: self.midstream,
            evicted: self.evicted,
            flows_omitted: self.flows_omitted,
        }
    }
}

impl Active {
    /// The outcome of this flow if tracking stops at `now_us` where it stands.
    fn outcome_at(&self, now_us: u64) -> Outcome {
        match self.state {
            State::SynSent if is_pending(&self.flow, now_us) => Outcome::Pending,
            State::SynSent => Outcome::Unanswered,
            State::SynReceived => Outcome::Open,
            State::Established => Outcome::Established,
            State::Closing => Outcome::Closed,
        }
    }

    /// Takes the server's SYN-ACK `s`: the RTT from the last SYN, the connect time from the
    /// first.
    fn synack(&mut self, s: &Segment) -> Event {
        let rtt = s.ts_us.saturating_sub(self.last_syn_us);
        self.synack_seq = s.seq;
        self.synack_us = s.ts_us;
        self.flow.handshake_rtt_us = Some(rtt);
        self.flow.connect_us = Some(s.ts_us.saturating_sub(self.flow.start_us));
        Event::SynAck {
            rtt_us: rtt,
            repeat: false,
        }
    }
}

/// An unanswered flow whose only SYN is younger than the initial RTO at `now_us`: the
/// answer may still have been on its way.
pub fn is_pending(f: &Flow, now_us: u64) -> bool {
    f.syn_attempts == 1 && now_us.saturating_sub(f.syn_times_us.last()) < INITIAL_RTO_US
}

/// `a` comes after `b` in sequence space (RFC 9293 §3.4, modulo 2^32).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::model::TcpFlags;

    const C: &str = "10.0.0.5:51234";
    const S: &str = "10.0.0.9:443";

    fn seg(ts: u64, from: &str, to: &str, flags: u8, seq: u32, ack: u32) -> Segment {
        Segment {
            ts_us: ts,
            src: from.parse().unwrap(),
            dst: to.parse().unwrap(),
            flags: TcpFlags(flags),
            seq,
            ack,
            payload_len: 0,
            // Copies of one SYN unless a test says otherwise (`fp`).
            fingerprint: u64::from(flags & TcpFlags::SYN != 0),
            cut: false,
        }
    }

    /// The segment with this SYN fingerprint (a distinct transmission).
    fn fp(mut s: Segment, fingerprint: u64) -> Segment {
        s.fingerprint = fingerprint;
        s
    }
    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const RSTACK: u8 = TcpFlags::RST | TcpFlags::ACK;
    const FINACK: u8 = TcpFlags::FIN | TcpFlags::ACK;

    fn run(segs: &[Segment], cap: usize) -> TrackerResult {
        let mut t = Tracker::new(cap);
        for s in segs {
            t.feed(s);
        }
        t.finish()
    }

    #[test]
    fn handshake_then_fin_teardown_is_closed_with_rtts() {
        let r = run(
            &[
                seg(1000, C, S, SYN, 100, 0),
                seg(1300, S, C, SYNACK, 900, 101),
                seg(1350, C, S, ACK, 101, 901),
                seg(5000, C, S, FINACK, 101, 901),
                seg(5100, S, C, FINACK, 901, 102),
                seg(5150, C, S, ACK, 102, 902),
            ],
            10,
        );
        assert_eq!(r.flows.len(), 1);
        let f = &r.flows[0];
        assert_eq!(f.outcome, Outcome::Closed);
        assert_eq!(f.handshake_rtt_us, Some(300));
        assert_eq!(f.ack_rtt_us, Some(50));
        assert_eq!(f.closed_by, Some(Side::Client));
        assert_eq!(r.summary[0].closed, 1);
        assert_eq!(r.summary[0].rtt_min_us, Some(300));
    }

    #[test]
    fn rst_answering_syn_is_refused() {
        let mut t = Tracker::new(10);
        assert_eq!(
            t.feed(&seg(0, C, S, SYN, 7, 0)),
            Some(Event::Syn { attempt: 1 })
        );
        assert_eq!(t.feed(&seg(20, S, C, RSTACK, 0, 8)), Some(Event::Refused));
        let r = t.finish();
        assert_eq!(r.flows[0].outcome, Outcome::Refused);
        assert_eq!(r.flows[0].reset_by, Some(Side::Server));
        assert_eq!(r.summary[0].refused, 1);
    }

    #[test]
    fn syn_retransmissions_without_reply_are_unanswered() {
        let mut t = Tracker::new(10);
        for (i, ts) in [0u64, 1_000_000, 3_000_000].into_iter().enumerate() {
            assert_eq!(
                t.feed(&seg(ts, C, S, SYN, 7, 0)),
                Some(Event::Syn {
                    attempt: i as u32 + 1
                })
            );
        }
        let r = t.finish();
        assert_eq!(r.flows[0].outcome, Outcome::Unanswered);
        assert_eq!(r.flows[0].syn_attempts, 3);
        assert_eq!(
            r.flows[0].syn_times_us.to_vec(),
            vec![0, 1_000_000, 3_000_000]
        );
        assert_eq!(r.summary[0].syn_retransmits, 2);
    }

    #[test]
    fn the_same_syn_seen_on_two_devices_is_not_a_retransmission() {
        let mut t = Tracker::new(10);
        assert_eq!(
            t.feed(&seg(0, C, S, SYN, 7, 0)),
            Some(Event::Syn { attempt: 1 })
        );
        assert_eq!(t.feed(&seg(30, C, S, SYN, 7, 0)), None);
        assert_eq!(
            t.feed(&seg(1_000_000, C, S, SYN, 7, 0)),
            Some(Event::Syn { attempt: 2 })
        );
        let r = t.finish();
        assert_eq!(r.flows[0].syn_attempts, 2);
    }

    #[test]
    fn rst_after_handshake_is_reset_by_that_side() {
        let r = run(
            &[
                seg(0, C, S, SYN, 1, 0),
                seg(10, S, C, SYNACK, 50, 2),
                seg(20, C, S, ACK, 2, 51),
                seg(90, S, C, RSTACK, 51, 2),
            ],
            10,
        );
        assert_eq!(r.flows[0].outcome, Outcome::Reset);
        assert_eq!(r.flows[0].reset_by, Some(Side::Server));
    }

    #[test]
    fn still_up_at_the_end_is_established_and_half_handshake_is_open() {
        let r = run(
            &[
                seg(0, C, S, SYN, 1, 0),
                seg(10, S, C, SYNACK, 50, 2),
                seg(20, C, S, ACK, 2, 51),
                seg(30, "10.0.0.5:60000", S, SYN, 1, 0),
                seg(40, S, "10.0.0.5:60000", SYNACK, 9, 2),
            ],
            10,
        );
        let outcomes: Vec<Outcome> = r.flows.iter().map(|f| f.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Established, Outcome::Open]);
    }

    #[test]
    fn segments_of_older_connections_are_midstream() {
        let r = run(&[seg(0, C, S, ACK, 1, 1), seg(1, S, C, FINACK, 1, 1)], 10);
        assert!(r.flows.is_empty());
        assert_eq!(r.midstream, 2);
    }

    #[test]
    fn new_isn_on_same_tuple_starts_a_new_flow() {
        let r = run(
            &[
                seg(0, C, S, SYN, 1, 0),
                seg(5_000_000, C, S, SYN, 999, 0),
                seg(5_000_100, S, C, RSTACK, 0, 1000),
            ],
            10,
        );
        let outcomes: Vec<Outcome> = r.flows.iter().map(|f| f.outcome).collect();
        assert_eq!(outcomes, vec![Outcome::Unanswered, Outcome::Refused]);
    }

    #[test]
    fn syn_times_past_the_capacity_are_counted_not_kept() {
        let mut t = Tracker::new(10);
        for i in 0..12u64 {
            t.feed(&seg(i * 1_000_000, C, S, SYN, 7, 0));
        }
        let r = t.finish();
        let f = &r.flows[0];
        assert_eq!(f.syn_attempts, 12);
        assert_eq!(
            f.syn_times_us.to_vec(),
            (0..SynTimes::CAPACITY as u64)
                .map(|i| i * 1_000_000)
                .collect::<Vec<_>>()
        );
        assert_eq!(r.summary[0].syn_retransmits, 11);
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["syn_times_us"][1], 1_000_000);
    }

    #[test]
    fn ipv6_and_ipv4_flows_and_both_directions_share_nothing_but_their_own_key() {
        let c6 = "[2001:db8::5]:51234";
        let s6 = "[2001:db8::9]:443";
        let r = run(
            &[
                seg(0, C, S, SYN, 1, 0),
                seg(1, c6, s6, SYN, 1, 0),
                // The same ports on other addresses: a third flow, refused.
                seg(2, "10.0.0.6:51234", S, SYN, 1, 0),
                seg(3, S, "10.0.0.6:51234", RSTACK, 0, 2),
                seg(10, s6, c6, SYNACK, 50, 2),
                seg(20, S, C, SYNACK, 50, 2),
                seg(30, c6, s6, ACK, 2, 51),
            ],
            10,
        );
        let by_client = |c: &str| {
            let c: SocketAddr = c.parse().unwrap();
            r.flows.iter().find(|f| f.client == c).unwrap().clone()
        };
        assert_eq!(by_client(C).outcome, Outcome::Open);
        assert_eq!(by_client(C).handshake_rtt_us, Some(20));
        assert_eq!(by_client(c6).outcome, Outcome::Established);
        assert_eq!(by_client(c6).handshake_rtt_us, Some(9));
        assert_eq!(by_client("10.0.0.6:51234").outcome, Outcome::Refused);
        // Summary rows come out in address order whatever order flows finished in.
        let servers: Vec<String> = r.summary.iter().map(|d| d.server.to_string()).collect();
        assert_eq!(servers, vec![S.to_string(), s6.to_string()]);
        assert_eq!(r.summary[0].attempts, 2);
        assert_eq!(r.summary[1].established, 1);
    }

    #[test]
    fn the_eviction_queue_stays_small_when_flows_finish_on_their_own() {
        let mut t = Tracker::new(100_000);
        for i in 0..20_000u32 {
            let c = format!("10.2.{}.{}:{}", i / 250, i % 250, 1024 + i % 60_000);
            let ts = u64::from(i) * 100;
            t.feed(&seg(ts, &c, S, SYN, i, 0));
            t.feed(&seg(ts + 1, S, &c, RSTACK, 0, i + 1));
        }
        assert_eq!(t.active_len(), 0);
        assert!(t.order.len() <= 1025, "queue grew to {}", t.order.len());
        let r = t.finish();
        assert_eq!(r.summary[0].refused, 20_000);
        assert_eq!(r.flows.len(), 20_000);
    }

    #[test]
    fn syn_flood_is_bounded_and_evictions_counted() {
        let mut t = Tracker::new(100);
        for port in 0..10_000u32 {
            let c = format!(
                "10.1.{}.{}:{}",
                port / 250,
                port % 250,
                1000 + port % 50_000
            );
            t.feed(&seg(port as u64, &c, S, SYN, port, 0));
            assert!(t.active_len() <= 100);
        }
        let r = t.finish();
        assert_eq!(r.evicted, 9_900);
        assert_eq!(r.flows.len(), 100);
        assert_eq!(r.flows_omitted, 9_900);
        assert_eq!(r.summary[0].attempts, 10_000);
        // Evicted (and ended) within a millisecond of their SYN: not evidence of a drop.
        assert_eq!(r.summary[0].pending, 10_000);
        assert_eq!(r.summary[0].unanswered, 0);
    }

    // ---- issue 9: verdicts at the edges ----------------------------------------------

    #[test]
    fn a_lone_syn_younger_than_one_rto_at_the_end_is_pending() {
        // Item 1: `capture -c 1` ends right after the SYN.
        let r = run(&[seg(5_000_000, C, S, SYN, 7, 0)], 10);
        assert_eq!(r.flows[0].outcome, Outcome::Pending);
        assert_eq!(r.summary[0].pending, 1);
        assert_eq!(r.summary[0].unanswered, 0);
        // The same SYN with the capture running one RTO longer is unanswered.
        let mut t = Tracker::new(10);
        t.feed(&seg(5_000_000, C, S, SYN, 7, 0));
        let r = t.finish_at(5_000_000 + INITIAL_RTO_US);
        assert_eq!(r.flows[0].outcome, Outcome::Unanswered);
        // A retransmission is the client's own timeout: unanswered however young.
        let r = run(
            &[seg(0, C, S, SYN, 7, 0), seg(1_000_000, C, S, SYN, 7, 0)],
            10,
        );
        assert_eq!(r.flows[0].outcome, Outcome::Unanswered);
    }

    #[test]
    fn a_client_acknowledging_the_server_proves_a_missed_synack() {
        // Item 9: only the client's direction was captured.
        let r = run(
            &[
                seg(0, C, S, SYN, 100, 0),
                seg(300, C, S, ACK, 101, 901),
                seg(5000, C, S, FINACK, 150, 1400),
                seg(5200, C, S, ACK, 151, 1401),
            ],
            10,
        );
        let f = &r.flows[0];
        assert_eq!(f.outcome, Outcome::Closed);
        assert!(f.synack_not_captured);
        assert_eq!(f.closed_by, Some(Side::Client));
        assert_eq!(
            (f.handshake_rtt_us, f.connect_us, f.ack_rtt_us),
            (None, None, None)
        );
        assert_eq!(r.summary[0].unanswered, 0);
        // Reordered: the SYN-ACK comes after the client's ACK; its RTTs are taken.
        let r = run(
            &[
                seg(0, C, S, SYN, 100, 0),
                seg(300, C, S, ACK, 101, 901),
                seg(250, S, C, SYNACK, 900, 101),
            ],
            10,
        );
        assert_eq!(r.flows[0].outcome, Outcome::Established);
        assert!(!r.flows[0].synack_not_captured);
        assert_eq!(r.flows[0].handshake_rtt_us, Some(250));
    }

    #[test]
    fn an_ack_past_the_synack_completes_the_handshake() {
        // Item 10: the client's first captured ACK also acknowledges 500 bytes of server data
        // (TCP Fast Open); both sides then close.
        let mut t = Tracker::new(10);
        t.feed(&seg(0, C, S, SYN, 100, 0));
        t.feed(&seg(100, S, C, SYNACK, 900, 101));
        assert_eq!(
            t.feed(&seg(200, C, S, ACK, 101, 1401)),
            Some(Event::Established {
                ack_rtt_us: None,
                synack_captured: true
            })
        );
        t.feed(&seg(300, S, C, FINACK, 1401, 101));
        t.feed(&seg(400, C, S, FINACK, 101, 1402));
        let r = t.finish();
        assert_eq!(r.flows[0].outcome, Outcome::Closed);
        assert_eq!(r.flows[0].ack_rtt_us, None);
        // The server sending past its SYN proves it too (the client's ACK filtered out).
        let r = run(
            &[
                seg(0, C, S, SYN, 100, 0),
                seg(100, S, C, SYNACK, 900, 101),
                seg(300, S, C, FINACK, 1401, 160),
            ],
            10,
        );
        assert_eq!(r.flows[0].outcome, Outcome::Closed);
        assert_eq!(r.flows[0].closed_by, Some(Side::Server));
    }

    #[test]
    fn a_challenge_ack_and_the_clients_rst_stay_in_one_attempt() {
        // Item 11: the SYN meets a stale connection; the client resets it and retries.
        let mut t = Tracker::new(10);
        t.feed(&seg(0, C, S, SYN, 100, 0));
        assert_eq!(
            t.feed(&seg(50, S, C, ACK, 77_000, 55_555)),
            Some(Event::ChallengeAck)
        );
        assert_eq!(
            t.feed(&seg(60, C, S, TcpFlags::RST, 55_555, 0)),
            Some(Event::ChallengeRst)
        );
        assert_eq!(
            t.feed(&seg(3_000_000, C, S, SYN, 100, 0)),
            Some(Event::Syn { attempt: 2 })
        );
        t.feed(&seg(3_000_100, S, C, SYNACK, 900, 101));
        t.feed(&seg(3_000_200, C, S, ACK, 101, 901));
        let r = t.finish();
        assert_eq!(r.flows.len(), 1);
        let f = &r.flows[0];
        assert_eq!(f.outcome, Outcome::Established);
        assert_eq!((f.syn_attempts, f.challenge_acks), (2, 1));
        assert_eq!(f.reset_by, None);
        assert_eq!(r.summary[0].reset, 0);
    }

    #[test]
    fn syn_retransmissions_however_close_all_count_and_only_copies_collapse() {
        // Item 12: 11 SYNs 50 ms apart, each captured twice (two devices, 20 µs apart).
        let mut t = Tracker::new(10);
        for i in 0..11u64 {
            let ts = i * 50_000;
            t.feed(&fp(seg(ts, C, S, SYN, 7, 0), 100 + i));
            assert_eq!(t.feed(&fp(seg(ts + 20, C, S, SYN, 7, 0), 100 + i)), None);
        }
        let r = t.finish();
        assert_eq!(r.flows[0].syn_attempts, 11);
        assert_eq!(r.summary[0].syn_retransmits, 10);
    }

    #[test]
    fn connect_time_counts_from_the_first_syn_and_rtt_from_the_last() {
        // Item 15.
        let r = run(
            &[
                seg(0, C, S, SYN, 7, 0),
                seg(1_000_000, C, S, SYN, 7, 0),
                seg(1_000_400, S, C, SYNACK, 900, 8),
                seg(1_000_450, C, S, ACK, 8, 901),
            ],
            10,
        );
        let f = &r.flows[0];
        assert_eq!(f.handshake_rtt_us, Some(400));
        assert_eq!(f.connect_us, Some(1_000_400));
        assert_eq!(f.ack_rtt_us, Some(50));
    }

    #[test]
    fn a_client_resetting_its_own_attempt_is_aborted_not_reset() {
        // Item 15: before any answer, and after the SYN-ACK (a half-open scan).
        let r = run(
            &[
                seg(0, C, S, SYN, 7, 0),
                seg(500_000, C, S, TcpFlags::RST, 8, 0),
                seg(0, "10.0.0.5:40000", S, SYN, 1, 0),
                seg(10, S, "10.0.0.5:40000", SYNACK, 50, 2),
                seg(20, "10.0.0.5:40000", S, TcpFlags::RST, 2, 0),
            ],
            10,
        );
        assert!(r.flows.iter().all(|f| f.outcome == Outcome::Aborted));
        assert!(r.flows.iter().all(|f| f.reset_by == Some(Side::Client)));
        assert_eq!((r.summary[0].aborted, r.summary[0].reset), (2, 0));
    }
}
