//! Which ends of the captured flows are sockets on this host, and whose: the flows' 4-tuples
//! matched against sock_diag dumps of the capture's namespace (its listeners when the capture
//! starts, every TCP socket when it ends), then the matched inodes joined with their owners
//! (one fd walk) and containers.
//!
//! Kept beside the flows, not in them: a `Flow` costs no allocation on the hot path, and
//! naming happens once, after the capture.
//!
//! A socket gone before the end dump (a connection that opened and closed in between) or
//! held by no process (TIME_WAIT, a connection not yet accepted) leaves its end unnamed; a
//! server end falls back to the listener on its address, which is the process that serves it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::model::Flow;
use super::pairmap::{prefetched, PairMap, Sides};
use crate::fxhash::FxMap;
use crate::host::Host;
use crate::procs::container::{Attributor, Container};
use crate::procs::owners::Owners;
use crate::sockets::model::{Proto, Socket, TcpState};

/// A process holding one end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalProcess {
    pub pid: u32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// Which end of a flow is a socket on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalEnd {
    Client,
    Server,
    /// Both: a connection inside the namespace (loopback).
    Both,
}

/// What is known of a flow's local ends. In JSON, flattened into the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowLocal {
    pub local: LocalEnd,
    /// The processes holding the client's socket (empty: the end is local but held by no
    /// process that could be read, e.g. in TIME_WAIT).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_processes: Vec<LocalProcess>,
    /// The processes holding the server's socket, or its listener.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_processes: Vec<LocalProcess>,
}

/// The inodes of a flow's ends found in the dumps (0: found, but held by no fd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ends {
    pub client: Option<u32>,
    pub server: Option<u32>,
}

/// The TCP sockets of a namespace, indexed by what a flow can be matched with.
#[derive(Debug, Default, Clone)]
pub struct SocketIndex {
    /// A connection's two ends → the inode of each end's socket found in the dumps, for
    /// connected sockets of every state but LISTEN; IPv4 pairs and IPv6 ones apart (see
    /// [`Pair`]). One entry for both ends, so a flow's ends are one lookup: the end dump
    /// after a busy capture holds ~100k TIME_WAIT sockets, and each lookup is a cache miss
    /// (two per flow were a fifth of naming's time).
    by_pair4: PairMap<[u32; 3]>,
    by_pair6: PairMap<Pair6>,
    /// Local address → inode of a listener (the address may be a wildcard).
    listeners: FxMap<SocketAddr, u32>,
    /// The inode of the namespace dumped: its processes are walked first.
    netns: Option<u64>,
}

impl SocketIndex {
    /// Adds one socket of a dump. A later dump's socket on the same tuple replaces an earlier
    /// one only when it has an owner (the end dump's TIME_WAIT must not hide the start
    /// dump's owned socket). One socket at a time, for tests: dumps go through a `Batch`.
    #[cfg(test)]
    pub fn add(&mut self, s: &Socket) {
        let mut batch = Batch::default();
        batch.push(self, s);
        batch.commit(self);
    }

    /// Records a connected socket's inode on its side of `pair` (see [`SocketIndex::add`]).
    fn set_side(sides: &mut Sides, pair_is_one_end: bool, side: usize, inode: u32) {
        // A socket connected to itself is both ends.
        let which: &[usize] = if pair_is_one_end { &[0, 1] } else { &[side] };
        for &i in which {
            match sides[i] {
                None | Some(0) => sides[i] = Some(inode),
                Some(_) => {}
            }
        }
    }

    /// The listener that takes connections to `server`: on its exact address, else on the
    /// wildcard of its family (a dual-stack `[::]` listener also takes IPv4).
    pub fn listener(&self, server: SocketAddr) -> Option<u32> {
        let server = plain(server);
        let port = server.port();
        let any4 = SocketAddr::new(IpAddr::from([0u8; 4]), port);
        let any6 = SocketAddr::new(IpAddr::from([0u16; 8]), port);
        let tries: &[SocketAddr] = if server.is_ipv4() {
            &[server, any4, any6]
        } else {
            &[server, any6]
        };
        tries.iter().find_map(|a| self.listeners.get(a).copied())
    }

    /// Matches a flow's ends. The server end is its accepted socket when a process holds it,
    /// else the listener on its address.
    /// One flow at a time, for tests: a report's flows go through [`match_flows`].
    #[cfg(test)]
    pub fn ends(&self, client: SocketAddr, server: SocketAddr) -> Ends {
        let (pair, side) = Pair::of(client, server);
        self.ends_of(pair, pair.hash(), side, || self.listener(server))
    }

    /// Asks for the cache line of `pair`'s entry (hash `h`) ahead of [`SocketIndex::ends_of`].
    fn prefetch(&self, pair: &Pair, h: u64) {
        match pair {
            Pair::V4(_) => self.by_pair4.prefetch(h),
            Pair::V6(_) => self.by_pair6.prefetch(h),
        }
    }

    /// [`SocketIndex::ends`] of a flow's pair (hash `h`), its client being side `side`;
    /// `listener` is asked only when the server's accepted socket is unknown or has no owner.
    fn ends_of(
        &self,
        pair: Pair,
        h: u64,
        side: usize,
        listener: impl FnOnce() -> Option<u32>,
    ) -> Ends {
        let sides = match pair {
            Pair::V4(k) => self.by_pair4.get(h, &k),
            Pair::V6(k) => self.by_pair6.get(h, &k),
        };
        let sides = sides.copied().unwrap_or_default();
        let (c, accepted) = (sides[side], sides[1 - side]);
        let s = match accepted {
            Some(inode) if inode != 0 => Some(inode),
            _ => listener().or(accepted),
        };
        Ends {
            client: c,
            server: s,
        }
    }

    /// The inodes of the listeners (for an owner walk naming them).
    pub fn listener_inodes(&self) -> HashSet<u32> {
        self.listeners
            .values()
            .copied()
            .filter(|&i| i != 0)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pair4.is_empty() && self.by_pair6.is_empty() && self.listeners.is_empty()
    }
}

/// The connected sockets of a dump, queued in order and indexed together once the dump is
/// read: the table is then sized once for all of them. A busy capture's end dump holds tens
/// of thousands of TIME_WAIT sockets; growing the table for them (each rehash touching every
/// entry) cost more than the kernel's walk.
#[derive(Default)]
struct Batch {
    v4: Vec<Queued<[u32; 3]>>,
    v6: Vec<Queued<Pair6>>,
}

/// A connected socket waiting in a [`Batch`].
struct Queued<K> {
    pair: K,
    side: u8,
    /// Connected to itself: both ends.
    one_end: bool,
    inode: u32,
}

impl Batch {
    /// Queues a connected socket; a listener goes straight into `index` (a listener's entry
    /// without an owner takes a later one's inode).
    fn push(&mut self, index: &mut SocketIndex, s: &Socket) {
        if s.proto != Proto::Tcp {
            return;
        }
        let local = SocketAddr::new(s.local.addr, s.local.port);
        if s.state == TcpState::Listening {
            let e = index.listeners.entry(plain(local)).or_insert(s.inode);
            if *e == 0 {
                *e = s.inode;
            }
            return;
        }
        let peer = SocketAddr::new(s.peer.addr, s.peer.port);
        let (pair, side) = Pair::of(local, peer);
        let (side, one_end, inode) = (side as u8, pair.is_one_end(), s.inode);
        match pair {
            Pair::V4(pair) => self.v4.push(Queued {
                pair,
                side,
                one_end,
                inode,
            }),
            Pair::V6(pair) => self.v6.push(Queued {
                pair,
                side,
                one_end,
                inode,
            }),
        }
    }

    /// Indexes the queued sockets, in the order they came.
    fn commit(self, index: &mut SocketIndex) {
        fn commit<K: Copy + Eq + std::hash::Hash>(map: &mut PairMap<K>, queued: Vec<Queued<K>>) {
            map.reserve(queued.len());
            let map = std::cell::RefCell::new(map);
            prefetched(
                queued.into_iter().map(|q| (PairMap::hash(&q.pair), q)),
                |(h, _)| map.borrow().prefetch(*h),
                |(h, q)| {
                    let mut map = map.borrow_mut();
                    let sides = map.entry(h, q.pair);
                    SocketIndex::set_side(sides, q.one_end, usize::from(q.side), q.inode);
                },
            );
        }
        commit(&mut index.by_pair4, self.v4);
        commit(&mut index.by_pair6, self.v6);
    }
}

/// Which TCP sockets of a namespace a dump reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// Listeners only: the kernel skips its walk of established connections, which costs
    /// ~3 ms even in an empty namespace (the hash is the host's) and grows with the host's
    /// connections.
    Listeners,
    /// Every state.
    Every,
}

/// Adds the TCP sockets of the calling thread's network namespace (both families; `what`
/// says which states) to `index`.
pub fn dump_namespace(
    host: &dyn Host,
    index: &mut SocketIndex,
    what: Dump,
) -> Result<(), crate::sockets::diag::DiagError> {
    index.netns = host
        .stat(&format!("{}/thread-self/ns/net", crate::host::PROC))
        .ok()
        .map(|m| m.ino);
    // One kernel walk for both families where the kernel offers it (for_each_socket).
    let mut batch = Batch::default();
    let mut selection = crate::sockets::filter::Selection::every_tcp();
    if what == Dump::Listeners {
        selection.states = TcpState::Listening.mask_bit();
    }
    let read = crate::sockets::for_each_socket(
        host,
        &selection,
        crate::sockets::Extras::default(),
        &mut |s| batch.push(index, &s),
    );
    // What was read before a failure still names flows.
    batch.commit(index);
    read
}

/// The owners of `want` among the processes with a thread in the dumped namespace: in a
/// container's namespace a few fd tables, where the whole host may hold hundreds of thousands
/// of fds (a walk of seconds). A socket held only by processes with no thread left in the
/// namespace (made by a thread that left it) stays unnamed.
fn owners_of(host: &dyn Host, index: &SocketIndex, want: &HashSet<u32>) -> std::io::Result<Owners> {
    use crate::procs::owners::read_owners_of;
    if want.is_empty() {
        return Ok(Owners::default());
    }
    let proc = crate::host::PROC;
    let all = crate::procs::fdwalk::list_pids(host, proc)?;
    let Some(netns) = index.netns else {
        return Ok(read_owners_of(host, proc, &all, Some(want)));
    };
    let inside: Vec<u32> = all
        .into_iter()
        .filter(|&pid| has_thread_in(host, pid, netns))
        .collect();
    Ok(read_owners_of(host, proc, &inside, Some(want)))
}

/// Whether a thread of `pid` is in the network namespace `netns` (a process may have moved
/// one thread only, with setns).
fn has_thread_in(host: &dyn Host, pid: u32, netns: u64) -> bool {
    crate::procs::namespaces::netns_of(host, crate::host::PROC, pid).contains_key(&netns)
}

/// Names the flows of a finished live capture: matched against `index` (the dumps), their
/// owners read with one fd walk (only when some end matched a socket with an owner to find).
pub fn name_report(host: &dyn Host, report: &mut super::model::CaptureReport, index: &SocketIndex) {
    let matched = match_flows(&report.flows, index);
    if matched.is_empty() {
        return;
    }
    let want = wanted(&matched);
    let owners = match owners_of(host, index, &want) {
        Ok(o) => o,
        Err(e) => {
            report.local_notes.push(format!(
                "local processes of the flows not named: /proc: {e}"
            ));
            Owners::default()
        }
    };
    let mut attributor = Attributor::new(host, "/");
    report.local = name_flows(
        &matched,
        &owners,
        &mut container_reader(host, &mut attributor),
    );
    report.local_notes.append(&mut attributor.notes);
}

/// The processes of a namespace's listeners when a capture started, for its live lines: a SYN
/// is named by the listener it goes to, without waiting for the capture's end.
#[derive(Debug, Default)]
pub struct ListenerNames {
    index: SocketIndex,
    by_inode: HashMap<u32, Vec<LocalProcess>>,
}

impl ListenerNames {
    /// One fd walk for the listeners' inodes, and their processes' containers. Nothing is
    /// named when the walk fails (the report still names what it can).
    pub fn read(host: &dyn Host, index: SocketIndex) -> ListenerNames {
        let want = index.listener_inodes();
        if want.is_empty() {
            return ListenerNames::default();
        }
        let Ok(owners) = owners_of(host, &index, &want) else {
            return ListenerNames::default();
        };
        let mut attributor = Attributor::new(host, "/");
        let mut container_of = container_reader(host, &mut attributor);
        let by_inode = owners
            .by_inode
            .iter()
            .map(|(&inode, held)| {
                let procs = held
                    .iter()
                    .map(|p| LocalProcess {
                        pid: p.pid,
                        name: p.name.clone(),
                        container: container_of(p.pid),
                    })
                    .collect();
                (inode, procs)
            })
            .collect();
        ListenerNames { index, by_inode }
    }

    /// The processes of the listener that takes connections to `server` (empty: none known).
    pub fn server(&self, server: SocketAddr) -> &[LocalProcess] {
        self.index
            .listener(server)
            .and_then(|i| self.by_inode.get(&i))
            .map_or(&[], |v| &v[..])
    }
}

/// A connection's two ends as plain integers, the smaller end first, an IPv4-mapped IPv6
/// address (a dual-stack socket's view of an IPv4 peer) as its IPv4 address: a few words to
/// hash and compare instead of `SocketAddr` enums. IPv4 pairs have their own map of 28-byte
/// entries: the end dump of a busy capture indexes tens of thousands of TIME_WAIT sockets and
/// each flow's lookup is a cache miss, so the table's size is its cost (with 128-bit
/// addresses for every pair, 64-byte entries made indexing and matching 100k flows about
/// twice as slow in a micro-benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pair {
    /// a, b, then a's port in the high half and b's in the low.
    V4([u32; 3]),
    V6(Pair6),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pair6 {
    a: u128,
    b: u128,
    ports: u32,
}

impl Pair {
    /// The pair of `x` and `y`, and which side of it `x` is (0: a, 1: b).
    fn of(x: SocketAddr, y: SocketAddr) -> (Pair, usize) {
        let (x, y) = (plain(x), plain(y));
        let order = |x: (u128, u16), y: (u128, u16)| {
            let ((a, pa), (b, pb), side) = if x <= y { (x, y, 0) } else { (y, x, 1) };
            (a, b, u32::from(pa) << 16 | u32::from(pb), side)
        };
        match (x.ip(), y.ip()) {
            (IpAddr::V4(p), IpAddr::V4(q)) => {
                let (a, b, ports, side) = order(
                    (u128::from(p.to_bits()), x.port()),
                    (u128::from(q.to_bits()), y.port()),
                );
                // Both came from u32s.
                (Pair::V4([a as u32, b as u32, ports]), side)
            }
            (p, q) => {
                let bits = |a: IpAddr| match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
                    IpAddr::V6(v6) => v6.to_bits(),
                };
                let (a, b, ports, side) = order((bits(p), x.port()), (bits(q), y.port()));
                (Pair::V6(Pair6 { a, b, ports }), side)
            }
        }
    }

    fn hash(&self) -> u64 {
        match self {
            Pair::V4(k) => PairMap::hash(k),
            Pair::V6(k) => PairMap::hash(k),
        }
    }

    fn is_one_end(&self) -> bool {
        let ports = match self {
            Pair::V4([a, b, ports]) if a == b => *ports,
            Pair::V6(p) if p.a == p.b => p.ports,
            _ => return false,
        };
        ports >> 16 == ports & 0xffff
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as the IPv4
/// address the packets carry.
fn plain(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// The ends of each flow (by index in `flows`) that matched a socket; flows with no local end
/// are left out.
pub fn match_flows(flows: &[Flow], index: &SocketIndex) -> Vec<(usize, Ends)> {
    // Flows come in runs to one server: its listener is looked up once per run (three
    // hashed lookups of a `SocketAddr` per flow otherwise).
    let mut last: Option<(SocketAddr, Option<u32>)> = None;
    let mut listener = |server: SocketAddr| match last {
        Some((a, l)) if a == server => l,
        _ => {
            let l = index.listener(server);
            last = Some((server, l));
            l
        }
    };
    // Most flows of a busy capture match (their TIME_WAIT end): no regrowth.
    let mut matched = Vec::with_capacity(flows.len());
    prefetched(
        flows.iter().enumerate().map(|(i, f)| {
            let (pair, side) = Pair::of(f.client, f.server);
            (i, f.server, pair, pair.hash(), side)
        }),
        |(_, _, pair, h, _)| index.prefetch(pair, *h),
        |(i, server, pair, h, side)| {
            let e = index.ends_of(pair, h, side, || listener(server));
            if e.client.is_some() || e.server.is_some() {
                matched.push((i, e));
            }
        },
    );
    matched
}

/// The inodes an owner walk must look for (nonzero ones).
pub fn wanted(matched: &[(usize, Ends)]) -> HashSet<u32> {
    matched
        .iter()
        .flat_map(|(_, e)| [e.client, e.server])
        .flatten()
        .filter(|&i| i != 0)
        .collect()
}

/// Joins matched ends with their owners and containers. `container_of` reads a pid's
/// container (None: not in one, or unreadable).
pub fn name_flows(
    matched: &[(usize, Ends)],
    owners: &Owners,
    container_of: &mut dyn FnMut(u32) -> Option<Container>,
) -> super::model::FlowLocals {
    let mut containers: HashMap<u32, Option<Container>> = HashMap::new();
    let mut procs = |inode: Option<u32>| -> Vec<LocalProcess> {
        let Some(held) = inode
            .filter(|&i| i != 0)
            .and_then(|i| owners.by_inode.get(&i))
        else {
            return Vec::new();
        };
        held.iter()
            .map(|p| LocalProcess {
                pid: p.pid,
                name: p.name.clone(),
                container: containers
                    .entry(p.pid)
                    .or_insert_with(|| container_of(p.pid))
                    .clone(),
            })
            .collect()
    };
    // Flows with the same local end and the same owned sockets share one value; an inode
    // no process holds names nobody, like a missing one.
    let owned = |inode: Option<u32>| inode.filter(|i| owners.by_inode.contains_key(i));
    let mut handles: FxMap<(LocalEnd, Option<u32>, Option<u32>), u32> = FxMap::default();
    let mut all = super::model::FlowLocals::default();
    for &(i, e) in matched {
        let local = match (e.client.is_some(), e.server.is_some()) {
            (true, true) => LocalEnd::Both,
            (true, false) => LocalEnd::Client,
            _ => LocalEnd::Server,
        };
        let key = (local, owned(e.client), owned(e.server));
        let handle = match handles.get(&key) {
            Some(&h) => h,
            None => {
                let h = all.add(FlowLocal {
                    local,
                    client_processes: procs(key.1),
                    server_processes: procs(key.2),
                });
                handles.insert(key, h);
                h
            }
        };
        all.set(i, handle);
    }
    all
}

/// The container of a live process, from `/proc/PID/cgroup`.
pub fn container_reader<'a, 'h: 'a>(
    host: &'a dyn Host,
    attributor: &'a mut Attributor<'h>,
) -> impl FnMut(u32) -> Option<Container> + use<'a, 'h> {
    move |pid| {
        crate::host::proc_text(host, &format!("{pid}/cgroup"))
            .ok()
            .and_then(|text| attributor.of_cgroup(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::model::{Outcome, SynTimes};
    use crate::sockets::model::{Endpoint, ProcessRef};

    fn sock(state: TcpState, local: &str, peer: &str, inode: u32) -> Socket {
        let (l, p): (SocketAddr, SocketAddr) = (local.parse().unwrap(), peer.parse().unwrap());
        Socket {
            proto: Proto::Tcp,
            family: if l.is_ipv4() { 4 } else { 6 },
            state,
            local: Endpoint {
                addr: l.ip(),
                port: l.port(),
            },
            peer: Endpoint {
                addr: p.ip(),
                port: p.port(),
            },
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: None,
        }
    }

    fn flow(client: &str, server: &str) -> Flow {
        Flow {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            outcome: Outcome::Established,
            syn_attempts: 1,
            syn_times_us: SynTimes::new(1),
            start_us: 1,
            last_us: 1,
            handshake_rtt_us: None,
            connect_us: None,
            ack_rtt_us: None,
            synack_not_captured: false,
            challenge_acks: 0,
            reset_by: None,
            closed_by: None,
            evicted: false,
        }
    }

    #[test]
    fn both_ends_of_a_loopback_flow_and_fallbacks() {
        let mut ix = SocketIndex::default();
        for s in [
            sock(TcpState::Listening, "0.0.0.0:80", "0.0.0.0:0", 10),
            sock(TcpState::Established, "127.0.0.1:5000", "127.0.0.1:80", 11),
            // Accepted by the server process.
            sock(TcpState::Established, "127.0.0.1:80", "127.0.0.1:5000", 12),
            // Not yet accepted (no fd): the listener stands for the server.
            sock(TcpState::Established, "127.0.0.1:80", "127.0.0.1:5001", 0),
            sock(TcpState::Established, "127.0.0.1:5001", "127.0.0.1:80", 13),
            // A dual-stack listener and its accepted IPv4 connection, seen as mapped.
            sock(TcpState::Listening, "[::]:443", "[::]:0", 20),
            sock(
                TcpState::Established,
                "[::ffff:10.0.0.1]:443",
                "[::ffff:10.9.9.9]:7000",
                21,
            ),
            // A client end gone to TIME_WAIT: local, held by nobody.
            sock(TcpState::TimeWait, "127.0.0.1:5002", "127.0.0.1:9", 0),
            sock(
                TcpState::Established,
                "127.0.0.1:6000",
                "127.0.0.1:6000",
                30,
            ),
        ] {
            ix.add(&s);
        }
        // The end dump sees the TIME_WAIT of a socket the start dump saw owned: kept owned.
        ix.add(&sock(
            TcpState::TimeWait,
            "127.0.0.1:5000",
            "127.0.0.1:80",
            0,
        ));
        let flows = [
            flow("127.0.0.1:5000", "127.0.0.1:80"),
            flow("127.0.0.1:5001", "127.0.0.1:80"),
            flow("10.9.9.9:7000", "10.0.0.1:443"),
            flow("127.0.0.1:5002", "127.0.0.1:9"),
            // A remote connection through this host: no end here.
            flow("192.0.2.1:1", "192.0.2.2:2"),
            // A socket connected to itself (TCP simultaneous open): both ends.
            flow("127.0.0.1:6000", "127.0.0.1:6000"),
            // Back to the first server after others: its listener, not the last one asked.
            flow("127.0.0.1:5003", "127.0.0.1:80"),
        ];
        let m = match_flows(&flows, &ix);
        let e = |client, server| Ends { client, server };
        assert_eq!(
            m,
            vec![
                (0, e(Some(11), Some(12))),
                (1, e(Some(13), Some(10))),
                (2, e(None, Some(21))),
                (3, e(Some(0), None)),
                (5, e(Some(30), Some(30))),
                (6, e(None, Some(10))),
            ]
        );
        assert_eq!(wanted(&m), HashSet::from([10, 11, 12, 13, 21, 30]));

        let mut owners = Owners::default();
        let p = |pid, name: &str| ProcessRef {
            pid,
            name: name.into(),
        };
        owners.by_inode.insert(10, vec![p(100, "srv")]);
        owners
            .by_inode
            .insert(12, vec![p(100, "srv"), p(101, "srv-worker")]);
        owners.by_inode.insert(11, vec![p(200, "cli")]);
        owners.by_inode.insert(21, vec![p(300, "tls")]);
        let mut asked = Vec::new();
        let named = name_flows(&m, &owners, &mut |pid| {
            asked.push(pid);
            None
        });
        asked.sort_unstable();
        // One container lookup per process.
        assert_eq!(asked, vec![100, 101, 200, 300]);
        let lp = |pid, name: &str| LocalProcess {
            pid,
            name: name.into(),
            container: None,
        };
        assert_eq!(named.get(0).unwrap().local, LocalEnd::Both);
        assert_eq!(named.get(0).unwrap().client_processes, vec![lp(200, "cli")]);
        assert_eq!(
            named.get(0).unwrap().server_processes,
            vec![lp(100, "srv"), lp(101, "srv-worker")]
        );
        assert_eq!(named.get(1).unwrap().client_processes, vec![]);
        assert_eq!(named.get(1).unwrap().server_processes, vec![lp(100, "srv")]);
        assert_eq!(named.get(2).unwrap().local, LocalEnd::Server);
        assert_eq!(named.get(2).unwrap().server_processes, vec![lp(300, "tls")]);
        assert_eq!(named.get(3).unwrap().local, LocalEnd::Client);
        assert!(named.get(3).unwrap().client_processes.is_empty());
        assert!(named.get(4).is_none());
        // Flows with the same ends share one value, read back for each.
        assert_eq!(named.get(6).unwrap().local, LocalEnd::Server);
        assert_eq!(named.get(6).unwrap().server_processes, vec![lp(100, "srv")]);
        assert!(named.get(7).is_none());
    }

    /// A whole dump is indexed at once: within it, as across dumps, the first owned socket of
    /// a pair stays; IPv6 pairs are indexed apart from IPv4 ones, mapped IPv4 with IPv4.
    #[test]
    fn a_dump_indexed_at_once_keeps_the_first_owned_socket() {
        let mut ix = SocketIndex::default();
        let mut batch = Batch::default();
        for s in [
            sock(TcpState::TimeWait, "127.0.0.1:5000", "127.0.0.1:80", 0),
            sock(TcpState::Established, "127.0.0.1:5000", "127.0.0.1:80", 11),
            sock(TcpState::TimeWait, "127.0.0.1:5000", "127.0.0.1:80", 0),
            sock(
                TcpState::Established,
                "[2001:db8::1]:80",
                "[2001:db8::2]:7",
                12,
            ),
            sock(
                TcpState::Established,
                "[::ffff:10.0.0.1]:80",
                "[::ffff:10.0.0.2]:7",
                13,
            ),
            sock(TcpState::Listening, "[::]:80", "[::]:0", 0),
            sock(TcpState::Listening, "[::]:80", "[::]:0", 14),
        ] {
            batch.push(&mut ix, &s);
        }
        batch.commit(&mut ix);
        let e = |client, server| Ends { client, server };
        let ends = |c: &str, s: &str| ix.ends(c.parse().unwrap(), s.parse().unwrap());
        assert_eq!(
            ends("127.0.0.1:5000", "127.0.0.1:80"),
            e(Some(11), Some(14))
        );
        assert_eq!(
            ends("[2001:db8::2]:7", "[2001:db8::1]:80"),
            e(None, Some(12))
        );
        assert_eq!(ends("10.0.0.2:7", "10.0.0.1:80"), e(None, Some(13)));
        assert_eq!(ends("10.0.0.3:7", "10.0.0.1:80"), e(None, Some(14)));
    }

    /// Matching many flows at once (their lookups prefetched, in runs longer than the
    /// lookahead) answers as matching each alone, both families mixed, ends found or not.
    #[test]
    fn matching_many_flows_at_once_answers_as_one_by_one() {
        let mut ix = SocketIndex::default();
        let mut batch = Batch::default();
        batch.push(
            &mut ix,
            &sock(TcpState::Listening, "0.0.0.0:80", "0.0.0.0:0", 7),
        );
        for i in 0..400u32 {
            let (c, s) = (format!("127.0.0.1:{}", 10_000 + i), "127.0.0.1:80");
            batch.push(&mut ix, &sock(TcpState::TimeWait, &c, s, 0));
            if i % 3 == 0 {
                batch.push(&mut ix, &sock(TcpState::Established, s, &c, 1000 + i));
            }
            let c6 = format!("[2001:db8::2]:{}", 20_000 + i);
            batch.push(
                &mut ix,
                &sock(TcpState::Established, &c6, "[2001:db8::1]:443", 5000 + i),
            );
        }
        batch.commit(&mut ix);
        let flows: Vec<Flow> = (0..1000u32)
            .map(|i| match i % 3 {
                0 => flow(&format!("127.0.0.1:{}", 10_000 + i / 2), "127.0.0.1:80"),
                1 => flow(
                    &format!("[2001:db8::2]:{}", 20_000 + i / 2),
                    "[2001:db8::1]:443",
                ),
                _ => flow(&format!("192.0.2.1:{i}"), "192.0.2.2:81"),
            })
            .collect();
        let one_by_one: Vec<(usize, Ends)> = flows
            .iter()
            .enumerate()
            .map(|(i, f)| (i, ix.ends(f.client, f.server)))
            .filter(|(_, e)| e.client.is_some() || e.server.is_some())
            .collect();
        assert!(
            one_by_one.len() > 300 && one_by_one.len() < 700,
            "{}",
            one_by_one.len()
        );
        assert_eq!(match_flows(&flows, &ix), one_by_one);
    }

    #[test]
    fn listener_on_an_exact_address_before_the_wildcard() {
        let mut ix = SocketIndex::default();
        ix.add(&sock(TcpState::Listening, "0.0.0.0:80", "0.0.0.0:0", 1));
        ix.add(&sock(TcpState::Listening, "127.0.0.2:80", "0.0.0.0:0", 2));
        assert_eq!(ix.listener("127.0.0.2:80".parse().unwrap()), Some(2));
        assert_eq!(ix.listener("127.0.0.1:80".parse().unwrap()), Some(1));
        assert_eq!(ix.listener("[::1]:80".parse().unwrap()), None);
    }
}
