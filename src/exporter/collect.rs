//! Every reading the exporter serves, gathered in one function ([`Collector::collect`]) from
//! sockscope's own collectors. Per network namespace (the exporter's, `--netns`'s, or with
//! `--all-netns` every one on the node, each read from inside it): one TCP dump (states,
//! listeners, TIME_WAIT and ephemeral ports per peer, high Recv-Q), one UDP dump (counts), the
//! kernel counters, one stat per process (fds against limits) and the doctor's checks over
//! all of it; once per scrape, the system file table. Returns plain data, which `metrics.rs`
//! renders.
//!
//! Doctor findings that need two readings use the previous scrape as the first one (kept per
//! namespace): a counter finding (resets, overflows, UDP drops) is about the time since the
//! last scrape, and a stuck reader is an established socket whose Recv-Q was at doctor's
//! threshold at the last scrape and has not shrunk since. The first scrape after start (or
//! after a namespace appears) has neither. Findings that need no interval (accept queues,
//! TIME_WAIT, CLOSE_WAIT, fd limits, file-nr) are there from the first scrape.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use super::owner_cache::OwnerCache;
use crate::doctor::checks::{check_file_nr, CounterDelta, CLOSE_WAIT_WARN, RECV_Q_STUCK};
use crate::doctor::collect::{current_netns_inode, HostEvidence};
use crate::doctor::counters::{read_counters, Counters};
use crate::doctor::diagnose::diagnose_host;
use crate::doctor::model::{Finding, StuckReader};
use crate::host::Host;
use crate::procs::container::{Attributor, Container};
use crate::procs::discover::Roots;
use crate::procs::model::{FdUsage, SystemFds};
use crate::procs::usage::{read_system, scan_counts, ProcScan, ProcSelect};
use crate::scope::for_each_netns;
use crate::sockets::diag::DiagError;
use crate::sockets::filter::Selection;
use crate::sockets::for_each_socket;
use crate::sockets::listeners::{is_listener, to_listener, Listener};
use crate::sockets::model::{Endpoint, ProcessRef, Proto, Socket, TcpState};
use crate::sockets::states::{StateCounter, StateSummary};
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};

/// What to collect.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `netns` label of the one namespace watched: the `--netns` spec as typed, or "host".
    pub netns: String,
    /// Only processes in this network namespace (`--netns`); every process when `None`.
    pub netns_inode: Option<u64>,
    /// `--all-netns`: every namespace on the node, found anew at each scrape, from these roots.
    pub all_netns: Option<Roots>,
    /// How many peers and processes get their own series (`--top`), per namespace.
    pub top: usize,
    /// `/proc`, except in tests.
    pub proc_root: String,
    /// Where the container runtimes' metadata lives (`/` live).
    pub fs_root: PathBuf,
    /// Leave this process out: its main thread entered the watched namespace to read it
    /// (`--textfile --netns`), so it is the observer there, not one of the observed. When
    /// only a collecting thread entered (serving, `--all-netns`), `/proc/PID/ns/net` still
    /// names the namespace it was started in, where it is a real process (its HTTP socket
    /// is there, and a cache that left it out would never find that socket's owner and
    /// walk every fd table again every 30 s).
    pub skip_self: bool,
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

/// One collection: the node-wide parts and one [`NsSample`] per namespace read.
#[derive(Debug, Default)]
pub struct Sample {
    /// The `netns` label of node-wide series (file-nr, scrape duration): the plan's label,
    /// or "host" with `--all-netns`.
    pub node: String,
    pub namespaces: Vec<NsSample>,
    pub system: Option<SystemFds>,
    /// Findings about the node as a whole (the system file table): (symptom, severity).
    pub node_findings: Vec<(&'static str, &'static str)>,
    /// Node-wide collectors that failed this time, with the error.
    pub errors: Vec<(&'static str, String)>,
    /// What the node-wide scan could not see (a namespace gone mid-scan, unreadable container
    /// metadata): logged, not served.
    pub notes: Vec<String>,
    pub duration_seconds: f64,
}

/// One namespace's readings. Absent parts (`None`, empty) could not be read; `errors` says
/// which.
#[derive(Debug, Default)]
pub struct NsSample {
    /// The `netns` label: "host", an `ip netns` name, `net:[INODE]`, or the `--netns` spec.
    pub netns: String,
    /// The `container` label of the namespace (the container holding most of its
    /// processes); "" for none (the label is left out).
    pub container: String,
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
    /// The `top` processes by share of their soft limit, each with its own container label
    /// (a pod's containers share one namespace).
    pub processes: Vec<(FdUsage, String)>,
    pub unreadable_processes: usize,
    /// Doctor findings: (symptom, severity), one per pair.
    pub findings: Vec<(&'static str, &'static str)>,
    /// Collectors that failed this time, with the error.
    pub errors: Vec<(&'static str, String)>,
    /// fd tables walked for owners (0 on a warm scrape of an unchanged host).
    pub owner_walks: usize,
    /// Seconds spent in each part of the collection, in order (where a slow scrape's time
    /// goes: `sockscope_scrape_phase_seconds`).
    pub phases: Vec<(&'static str, f64)>,
}

/// Times the parts of one collection.
struct Lap(Instant);

impl Lap {
    fn mark(&mut self, s: &mut NsSample, phase: &'static str) {
        let now = Instant::now();
        s.phases
            .push((phase, now.duration_since(self.0).as_secs_f64()));
        self.0 = now;
    }
}

/// At most this many sockets with a high Recv-Q are remembered per namespace for the next
/// scrape's stuck-reader check (memory stays bounded when a whole host stops reading).
const MAX_RECV_Q_KEPT: usize = 4096;

/// A socket, as told apart between two scrapes.
type SocketKey = (u32, Endpoint, Endpoint);

/// What one namespace keeps between scrapes.
#[derive(Debug, Default)]
struct NsState {
    owners: OwnerCache,
    /// The previous scrape's counters, and when they were read.
    previous: Option<(Counters, Instant)>,
    /// The previous scrape's established sockets at or past RECV_Q_STUCK, with their Recv-Q.
    recv_q_high: HashMap<SocketKey, u32>,
}

/// The state kept between scrapes: per namespace (by inode; 0 for the one-namespace case),
/// the owner cache, the previous counters and high Recv-Q sockets; and the running error
/// counts.
#[derive(Debug, Default)]
pub struct Collector {
    states: Mutex<HashMap<u64, NsState>>,
    /// Errors per (collector, netns label) since start (`sockscope_scrape_errors_total`).
    pub errors_total: HashMap<(&'static str, String), u64>,
    /// Notes already logged (each once; cleared when it grows past a bound).
    logged: HashSet<String>,
}

/// What one TCP dump keeps.
struct Tcp {
    summary: StateSummary,
    listeners: Vec<Listener>,
    close_wait: Vec<u32>,
    ephemeral_in_use: u64,
    peers: HashMap<Endpoint, (u64, u64)>,
    recv_q_high: Vec<Socket>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// One collection: never fails as a whole; what could not be read is in `errors`.
    pub fn collect(&mut self, host: &dyn Host, plan: &Plan) -> Sample {
        let t0 = Instant::now();
        let mut s = Sample {
            node: if plan.all_netns.is_some() {
                "host".into()
            } else {
                plan.netns.clone()
            },
            ..Default::default()
        };
        s.system = match read_system(host, &plan.proc_root) {
            Ok(sys) => Some(sys),
            Err(e) => {
                s.errors.push(("file-nr", e.to_string()));
                None
            }
        };
        if let Some(sys) = &s.system {
            s.node_findings = dedup(&check_file_nr(sys));
        }
        match &plan.all_netns {
            None => {
                let state = self.states.get_mut().unwrap_or_else(|p| p.into_inner());
                let st = state.entry(0).or_default();
                let mut ns = collect_ns(host, st, plan, plan.netns_inode);
                ns.netns = plan.netns.clone();
                s.namespaces.push(ns);
            }
            Some(roots) => {
                let states = &self.states;
                let run = for_each_netns(host, roots, || {
                    let inode = current_netns_inode(host)?;
                    let mut st = lock(states).remove(&inode).unwrap_or_default();
                    let ns = collect_ns(host, &mut st, plan, Some(inode));
                    lock(states).insert(inode, st);
                    Ok((inode, ns))
                });
                match run {
                    Ok(run) => {
                        let seen: HashSet<u64> = run.found.iter().map(|f| f.value.0).collect();
                        lock(states).retain(|i, _| seen.contains(i));
                        for f in run.found {
                            let (_, mut ns) = f.value;
                            ns.netns = f.place.netns.label();
                            ns.container = f
                                .place
                                .container
                                .as_ref()
                                .map(container_name)
                                .unwrap_or_default();
                            s.namespaces.push(ns);
                        }
                        s.notes = run.notes;
                    }
                    Err(e) => s.errors.push(("netns", e.to_string())),
                }
            }
        }
        // Each process's own container: a pod's containers share one namespace.
        let mut attributor = Attributor::new(host, &plan.fs_root);
        for ns in &mut s.namespaces {
            for (p, container) in &mut ns.processes {
                let path = format!("{}/{}/cgroup", plan.proc_root, p.pid);
                if let Ok(text) = host.read_file(&path) {
                    if let Some(c) = attributor.of_cgroup(&String::from_utf8_lossy(&text)) {
                        *container = container_name(&c);
                    }
                }
            }
        }
        s.notes.append(&mut attributor.notes);
        for (what, _) in &s.errors {
            *self.errors_total.entry((what, s.node.clone())).or_default() += 1;
        }
        for ns in &s.namespaces {
            for (what, _) in &ns.errors {
                *self
                    .errors_total
                    .entry((what, ns.netns.clone()))
                    .or_default() += 1;
            }
        }
        if self.logged.len() > 1000 {
            self.logged.clear();
        }
        s.notes.retain(|n| self.logged.insert(n.clone()));
        s.duration_seconds = t0.elapsed().as_secs_f64();
        s
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `container` label: how people name it (`k8s/NAMESPACE/POD/CONTAINER`,
/// `podman/NAME`), the runtime and short id when it has no name. Names, not ids, so a
/// restarted container keeps its series.
pub fn container_name(c: &Container) -> String {
    match (&c.pod_namespace, &c.pod) {
        (Some(ns), Some(pod)) => format!(
            "k8s/{ns}/{pod}{}",
            c.name.as_ref().map(|n| format!("/{n}")).unwrap_or_default()
        ),
        _ => format!(
            "{}/{}",
            c.runtime.name(),
            c.name.as_deref().unwrap_or(c.short_id())
        ),
    }
}

/// One (symptom, severity) per pair, in the report's order.
fn dedup(findings: &[Finding]) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for f in findings {
        let k = (f.symptom.id(), f.severity.name());
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// One namespace, from the calling thread (which sits in it). `netns_inode`: only the
/// processes in that namespace.
fn collect_ns(
    host: &dyn Host,
    st: &mut NsState,
    plan: &Plan,
    netns_inode: Option<u64>,
) -> NsSample {
    let mut s = NsSample::default();
    let mut lap = Lap(Instant::now());
    // The process scan (a few stats per process: path walks in /proc, all kernel time) needs
    // nothing from the socket dumps, so it runs beside them on a helper thread; its phase is
    // its own time. Without a thread to be had, it runs here, after them.
    let (scanned, (tcp, counters, dumped)) = std::thread::scope(|sc| {
        let helper = std::thread::Builder::new()
            .name("proc-scan".into())
            .spawn_scoped(sc, || scan_procs(host, plan, netns_inode));
        let socks = dump_ns(host, &mut s, &mut lap);
        let scanned = match helper.map(|h| h.join()) {
            Ok(Ok(r)) => r,
            _ => scan_procs(host, plan, netns_inode),
        };
        (scanned, socks)
    });
    let (scan, took) = scanned;
    let mut scan = match scan {
        Ok(p) => p,
        Err(e) => {
            s.errors.push(("proc", e.to_string()));
            ProcScan::default()
        }
    };
    s.phases.push(("proc", took));
    lap.0 = Instant::now();
    s.unreadable_processes = scan.unreadable;
    st.owners.refresh(host, &scan.processes, &plan.proc_root);
    lap.mark(&mut s, "owners");
    let (delta, seconds) = match (&st.previous, &counters) {
        (Some((before, t)), Some(now)) => {
            (before.delta(now), dumped.duration_since(*t).as_secs_f64())
        }
        _ => (Counters::default(), 0.0),
    };
    if let Some(tcp) = tcp {
        let Tcp {
            summary,
            mut listeners,
            mut close_wait,
            ephemeral_in_use,
            peers,
            recv_q_high,
        } = tcp;
        if (close_wait.len() as u64) < CLOSE_WAIT_WARN {
            close_wait.clear();
        }
        // Stuck readers: high at the last scrape, still high and not shrinking now.
        let mut stuck: Vec<StuckReader> = recv_q_high
            .iter()
            .filter_map(|sk| {
                let was = *st.recv_q_high.get(&(sk.inode, sk.local, sk.peer))?;
                (sk.recv_q >= was).then(|| StuckReader {
                    socket: sk.clone(),
                    before: was,
                })
            })
            .collect();
        st.recv_q_high = recv_q_high
            .iter()
            .take(MAX_RECV_Q_KEPT)
            .map(|sk| ((sk.inode, sk.local, sk.peer), sk.recv_q))
            .collect();
        let mut wanted: HashSet<u32> = listeners
            .iter()
            .map(|l| l.socket.inode)
            .chain(stuck.iter().map(|r| r.socket.inode))
            .filter(|&i| i != 0)
            .collect();
        wanted.extend(&close_wait);
        let owners = st
            .owners
            .owners(host, &wanted, &scan.processes, &plan.proc_root);
        for l in &mut listeners {
            l.socket.processes = owners.get(&l.socket.inode).cloned();
        }
        for r in &mut stuck {
            r.socket.processes = owners.get(&r.socket.inode).cloned();
        }
        lap.mark(&mut s, "owners");
        let close_wait_holders = holders(&close_wait, &owners);
        s.sockets.extend(
            TcpState::ALL
                .iter()
                .map(|&state| (Proto::Tcp, state, summary.states.get(state))),
        );
        s.listeners = listener_rows(&listeners);
        s.ephemeral_in_use = ephemeral_in_use;
        s.peer_ports = top_peers(peers, plan.top);
        let ev = HostEvidence {
            listeners,
            states: summary,
            counters: CounterDelta { delta, seconds },
            processes: std::mem::take(&mut scan),
            // The file table is the node's: checked once, in `collect`.
            system: None,
            close_wait_holders,
            udp_dropping: Vec::new(),
            stuck_readers: stuck,
        };
        s.findings = dedup(&diagnose_host(&ev).findings);
        scan = ev.processes;
        lap.mark(&mut s, "doctor");
    }
    s.owner_walks = st.owners.last_walks;
    // Counted fds but unreadable links (no CAP_SYS_PTRACE): their sockets go unnamed.
    s.unreadable_processes += st.owners.denied();
    s.processes = top_processes(scan.processes, plan.top)
        .into_iter()
        .map(|p| (p, String::new()))
        .collect();
    if let Some(c) = &counters {
        st.previous = Some((c.clone(), dumped));
    }
    s.counters = counters;
    s
}

/// The TCP and UDP dumps and the kernel counters of the calling thread's namespace, each
/// timed: the TCP reading, the counters, and when the TCP dump ended (the counters' instant).
fn dump_ns(
    host: &dyn Host,
    s: &mut NsSample,
    lap: &mut Lap,
) -> (Option<Tcp>, Option<Counters>, Instant) {
    let range = read_port_range(host);
    s.port_range = range;
    let tcp = match dump_tcp(host, range) {
        Ok(t) => Some(t),
        Err(e) => {
            s.errors.push(("tcp", e.to_string()));
            None
        }
    };
    let dumped = Instant::now();
    lap.mark(s, "tcp");
    match count_udp(host) {
        Ok(c) => s.sockets.extend(c),
        Err(e) => s.errors.push(("udp", e.to_string())),
    }
    lap.mark(s, "udp");
    let counters = match read_counters(host) {
        Ok(c) => Some(c),
        Err(e) => {
            s.errors.push(("netstat", e.to_string()));
            None
        }
    };
    lap.mark(s, "netstat");
    (tcp, counters, dumped)
}

/// The fd count and limits of every process (in `netns_inode` when given), and the seconds
/// it took.
fn scan_procs(
    host: &dyn Host,
    plan: &Plan,
    netns_inode: Option<u64>,
) -> (std::io::Result<ProcScan>, f64) {
    let t0 = Instant::now();
    let mut scan = scan_counts(
        host,
        &plan.proc_root,
        &ProcSelect {
            netns_inode,
            ..Default::default()
        },
    );
    if let (Ok(scan), true) = (&mut scan, plan.skip_self) {
        let me = std::process::id();
        scan.processes.retain(|p| p.pid != me);
    }
    (scan, t0.elapsed().as_secs_f64())
}

/// One dump of every TCP socket, counted as it streams (nothing but listeners, CLOSE_WAIT
/// inodes and high Recv-Q sockets is kept, so memory follows the number of peers, not of
/// sockets).
///
/// Both families in one [`for_each_socket`] call over [`Selection::every_tcp`]: the kernel's
/// walk of the established hash, not sockscope, is most of a scrape on a big host (perf:
/// `tcp_diag_dump`, `inet_sk_diag_fill`), and each per-family dump walks the whole hash (every
/// namespace's sockets) to keep its family's; a collector that dumps both families in one walk
/// serves this call with one.
fn dump_tcp(host: &dyn Host, range: Option<(u16, u16)>) -> Result<Tcp, DiagError> {
    let settings = read_time_wait_settings(host);
    let mut t = TcpCount {
        range,
        counter: StateCounter::new(range),
        listeners: Vec::new(),
        close_wait: Vec::new(),
        ephemeral_in_use: 0,
        peers: HashMap::new(),
        recv_q_high: Vec::new(),
    };
    for_each_socket(
        host,
        &Selection::every_tcp(),
        Default::default(),
        &mut |s| t.add(s),
    )?;
    Ok(Tcp {
        summary: t.counter.finish(5, settings),
        listeners: t.listeners,
        close_wait: t.close_wait,
        ephemeral_in_use: t.ephemeral_in_use,
        peers: t.peers,
        recv_q_high: t.recv_q_high,
    })
}

/// The running counts of one TCP dump.
struct TcpCount {
    range: Option<(u16, u16)>,
    counter: StateCounter,
    listeners: Vec<Listener>,
    close_wait: Vec<u32>,
    ephemeral_in_use: u64,
    peers: HashMap<Endpoint, (u64, u64)>,
    recv_q_high: Vec<Socket>,
}

impl TcpCount {
    fn add(&mut self, s: Socket) {
        self.counter.add(&s);
        match s.state {
            TcpState::Listening => {
                if is_listener(&s) {
                    self.listeners.push(to_listener(s));
                }
                return;
            }
            TcpState::CloseWait if s.inode != 0 => self.close_wait.push(s.inode),
            TcpState::Established if s.recv_q >= RECV_Q_STUCK => self.recv_q_high.push(s.clone()),
            TcpState::Close => return,
            _ => {}
        }
        // The same rule as `states`: each (local addr, peer addr, peer port) can use each
        // ephemeral port once, so use is counted per remote service.
        if let Some((lo, hi)) = self.range {
            if s.peer.port != 0 && (lo..=hi).contains(&s.local.port) {
                self.ephemeral_in_use += 1;
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
                let e = self.peers.entry(peer).or_default();
                e.0 += 1;
                e.1 += (s.state == TcpState::TimeWait) as u64;
            }
        }
    }
}

/// UDP sockets per state (unconnected ones read "close", connected ones "established"). A
/// kernel without udp_diag has none to count, which is not an error.
fn count_udp(host: &dyn Host) -> Result<Vec<(Proto, TcpState, u64)>, DiagError> {
    let sel = Selection {
        protos: vec![Proto::Udp],
        families: vec![4, 6],
        states: 0,
        user: Default::default(),
    };
    let mut counts: HashMap<TcpState, u64> = HashMap::new();
    match for_each_socket(host, &sel, Default::default(), &mut |s| {
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
