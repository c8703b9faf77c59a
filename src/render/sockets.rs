//! The `sockets` tables: TCP/UDP and UNIX (`-x`); their JSON is the sockets themselves,
//! through [`crate::report::Listing`].

use std::fmt::Write;
use std::net::IpAddr;

use super::{container_label, escape};
use crate::report::{Cells, Column, Rows};
use crate::scope::Where;
use crate::sockets::model::{Endpoint, ProcessRef, Socket, Timer};
use crate::sockets::placed::{Owner, Placed};
use crate::sockets::unix::UnixSocket;
use crate::sockets::watch::ProcessRate;

#[derive(Clone)]
pub struct SocketsView {
    pub processes: bool,
    pub info: bool,
    pub memory: bool,
    /// Uid and inode columns (`-e`).
    pub extended: bool,
    /// The timer column (`-o`); `-i` shows it already.
    pub timer: bool,
    /// Netns and Container columns (`--all-netns`).
    pub place: bool,
    /// The address families dumped (4, 6): how wide an endpoint can get.
    pub families: Vec<u8>,
}

/// The widest endpoint of a family as printed: `255.255.255.255:65535`, or eight full IPv6
/// groups in brackets with a port.
pub fn widest_endpoint(families: &[u8]) -> usize {
    if families.contains(&6) {
        47
    } else {
        21
    }
}

impl Rows for SocketsView {
    type Record<'r> = Placed<'r, Socket>;

    fn columns(&self) -> Vec<Column> {
        let mut c = Vec::new();
        if self.place {
            c.extend([Column::left("Netns"), Column::left("Container")]);
        }
        let addr = widest_endpoint(&self.families);
        c.extend([
            Column::left("Proto"),
            Column::left("State").widest(11),
            Column::right("Recv-Q"),
            Column::right("Send-Q"),
            Column::left("Local").widest(addr),
            Column::left("Peer").widest(addr),
        ]);
        if self.processes {
            c.push(Column::left("Process"));
        }
        let timer_alone = self.timer && !self.info;
        if timer_alone {
            c.push(Column::left("Timer"));
        }
        if self.extended {
            c.extend([Column::right("Uid"), Column::right("Inode")]);
        }
        if self.info {
            c.extend(
                [
                    "RTT ms",
                    "RTTvar",
                    "Retrans",
                    "Cwnd",
                    "Unacked",
                    "Lost",
                    "LastSnd ms",
                    "LastRcv ms",
                ]
                .map(Column::right),
            );
            c.push(Column::left("Timer"));
        }
        if self.memory {
            c.extend(["Rmem", "Rcvbuf", "Wmem", "Sndbuf", "Drops"].map(Column::right));
        }
        c
    }

    fn cells(&self, row: &Placed<'_, Socket>, cells: &mut Cells) {
        let s = row.item;
        if self.place {
            place_cells(row.place, cells);
        }
        // Written into reused buffers: this runs once per socket of a 100k-row table.
        cells.push(s.proto.name());
        cells.push(s.state.name());
        push_num(cells.cell(), u64::from(s.recv_q));
        push_num(cells.cell(), u64::from(s.send_q));
        write_endpoint(cells.cell(), s, &s.local);
        write_endpoint(cells.cell(), s, &s.peer);
        if self.processes {
            cells.push(&owners_cell(row.owners, s.processes.as_deref()));
        }
        if self.timer && !self.info {
            cells.push(&timer_cell(s));
        }
        if self.extended {
            let _ = write!(cells.cell(), "{}", s.uid);
            let _ = write!(cells.cell(), "{}", s.inode);
        }
        if self.info {
            info_cells(s).iter().for_each(|c| cells.push(c));
        }
        if self.memory {
            memory_cells(s).iter().for_each(|c| cells.push(c));
        }
    }
}

/// [`socket_endpoint`] written into `out` (no allocation): `addr:port`, IPv6 in brackets,
/// port 0 as `*`, a dual-stack `[::]` as `*`.
pub fn write_endpoint(out: &mut String, s: &Socket, e: &Endpoint) {
    // Digits by itoa, not `fmt`: these run for two cells of every row of a 100k-row table.
    match e.addr {
        _ if s.dual_stack() && e.addr.is_unspecified() => out.push('*'),
        IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_num(out, u64::from(o));
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "[{a}]");
        }
    }
    match e.port {
        0 => out.push_str(":*"),
        p => {
            out.push(':');
            push_num(out, u64::from(p));
        }
    }
}

/// A number's digits appended to `out`.
fn push_num(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// The `sockets -x` table: ss -x's columns, the peer by inode, and with -p both ends' owners.
pub struct UnixView {
    pub processes: bool,
    /// Netns and Container columns (`--all-netns`).
    pub place: bool,
}

impl Rows for UnixView {
    type Record<'r> = Placed<'r, UnixSocket>;

    fn columns(&self) -> Vec<Column> {
        let mut c = Vec::new();
        if self.place {
            c.extend([Column::left("Netns"), Column::left("Container")]);
        }
        c.extend([
            Column::left("Type"),
            Column::left("State").widest(11),
            Column::right("Recv-Q"),
            Column::right("Send-Q"),
            Column::left("Path"),
            Column::right("Inode").widest(10),
            Column::right("Peer").widest(10),
        ]);
        if self.processes {
            c.push(Column::left("Process"));
        }
        c
    }

    fn cells(&self, row: &Placed<'_, UnixSocket>, cells: &mut Cells) {
        let s = row.item;
        if self.place {
            place_cells(row.place, cells);
        }
        cells.push(s.kind.netid());
        cells.push(s.state.name());
        let _ = write!(cells.cell(), "{}", s.recv_q);
        let _ = write!(cells.cell(), "{}", s.send_q);
        cells.push(&s.path.as_deref().map_or_else(|| "*".to_string(), escape));
        let _ = write!(cells.cell(), "{}", s.inode);
        match s.peer_inode {
            0 => cells.push("*"),
            p => {
                let _ = write!(cells.cell(), "{p}");
            }
        }
        if self.processes {
            let mine = owners_cell(row.owners, s.processes.as_deref());
            cells.push(&match &s.peer_processes {
                // `nginx(12) ⇄ php-fpm(40)`: who talks to whom over the connection.
                Some(peer) => format!("{mine} ⇄ {}", processes_cell(peer)),
                None => mine,
            });
        }
    }
}

/// The Netns and Container cells of a node-wide row.
pub fn place_cells(place: Option<&Where>, cells: &mut Cells) {
    match place {
        Some(p) => {
            cells.push(&escape(&p.netns.label()));
            cells.push(
                &p.container
                    .as_ref()
                    .map_or_else(|| "-".to_string(), container_label),
            );
        }
        None => {
            cells.push("-");
            cells.push("-");
        }
    }
}

/// The Process cell: the node-wide owners when known, else the socket's own.
pub fn owners_cell(owners: Option<&[Owner]>, processes: Option<&[ProcessRef]>) -> String {
    match owners {
        Some(o) if !o.is_empty() => o
            .iter()
            .map(|p| format!("{}({})", escape(&p.name), p.pid))
            .collect::<Vec<_>>()
            .join(","),
        Some(_) => "-".into(),
        None => processes_cell(processes.unwrap_or(&[])),
    }
}

/// `nginx(812),nginx(813)`, names escaped.
pub fn processes_cell(p: &[ProcessRef]) -> String {
    if p.is_empty() {
        return "-".into();
    }
    p.iter()
        .map(|p| format!("{}({})", escape(&p.name), p.pid))
        .collect::<Vec<_>>()
        .join(",")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn ms(us: Option<u32>) -> String {
    us.map(|us| format!("{}.{:03}", us / 1000, us % 1000))
        .unwrap_or_else(|| "-".into())
}

/// rmem/rcvbuf, wmem/sndbuf and drops; dashes when the kernel sent no memory info.
fn memory_cells(s: &Socket) -> Vec<String> {
    match &s.mem {
        Some(m) => vec![
            m.rmem_alloc.to_string(),
            m.rcvbuf.to_string(),
            m.wmem_alloc.to_string(),
            m.sndbuf.to_string(),
            opt(m.drops),
        ],
        None => vec!["-".into(); 5],
    }
}

fn info_cells(s: &Socket) -> Vec<String> {
    let timer = timer_cell(s);
    match &s.info {
        None => {
            let mut v = vec!["-".to_string(); 8];
            v.push(timer);
            v
        }
        Some(i) => vec![
            ms(i.rtt_us),
            ms(i.rttvar_us),
            format!("{}/{}", opt(i.retrans), opt(i.total_retrans)),
            opt(i.cwnd),
            opt(i.unacked),
            opt(i.lost),
            opt(i.last_data_sent_ms),
            opt(i.last_data_recv_ms),
            timer,
        ],
    }
}

/// `retrans(200ms,1)`, `keepalive(…)`, `time-wait(…)`, `probe(…)` or `-`.
fn timer_cell(s: &Socket) -> String {
    match &s.timer {
        None => "-".to_string(),
        Some(Timer::Retransmit {
            expires_ms,
            retransmits,
        }) => format!("retrans({expires_ms}ms,{retransmits})"),
        Some(Timer::Keepalive { expires_ms }) => format!("keepalive({expires_ms}ms)"),
        Some(Timer::TimeWait { expires_ms }) => format!("time-wait({expires_ms}ms)"),
        Some(Timer::Probe { expires_ms }) => format!("probe({expires_ms}ms)"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::render::socket_endpoint;
    use crate::sockets::model::{Proto, TcpState};

    #[test]
    fn written_endpoints_read_like_socket_endpoint() {
        let mut s = Socket {
            proto: Proto::Tcp,
            family: 6,
            state: TcpState::Listening,
            local: Endpoint {
                addr: "::".parse().unwrap(),
                port: 6300,
            },
            peer: Endpoint {
                addr: "::".parse().unwrap(),
                port: 0,
            },
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 0,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: Some(true),
        };
        for (v6only, local) in [(Some(true), "[::]:6300"), (Some(false), "*:6300")] {
            s.v6only = v6only;
            for e in [s.local, s.peer] {
                let mut out = String::new();
                write_endpoint(&mut out, &s, &e);
                assert_eq!(out, socket_endpoint(&s, &e));
            }
            let mut out = String::new();
            write_endpoint(&mut out, &s, &s.local);
            assert_eq!(out, local);
        }
        s.local.addr = "127.0.0.1".parse().unwrap();
        let mut out = String::new();
        write_endpoint(&mut out, &s, &s.local);
        assert_eq!(out, "127.0.0.1:6300");
    }

    pub(crate) fn sock(proto: Proto, state: TcpState, local: &str, peer: &str) -> Socket {
        let l: std::net::SocketAddr = local.parse().unwrap();
        let p: std::net::SocketAddr = peer.parse().unwrap();
        Socket {
            proto,
            family: if l.is_ipv6() { 6 } else { 4 },
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
            uid: 1000,
            inode: 4242,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: l.is_ipv6().then_some(true),
        }
    }

    pub(crate) fn place() -> Where {
        Where {
            netns: crate::scope::NetnsRef {
                inode: 4026532281,
                name: Some("web".into()),
                host: false,
            },
            container: Some(crate::procs::container::Container {
                runtime: crate::procs::cgroup::Runtime::Podman,
                id: "0123456789abcdef0123".into(),
                name: Some("api".into()),
                pod: None,
                pod_namespace: None,
            }),
        }
    }

    /// Renders records through the streamed table writer, as `sockets` does.
    pub(crate) fn table<V: Rows>(view: V, rows: &[V::Record<'_>]) -> String {
        let mut out = Vec::new();
        let mut l =
            crate::report::Listing::new(&mut out, &crate::report::Output::table(), "sockets", view);
        for r in rows {
            l.push(r).unwrap();
        }
        l.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn population() -> Vec<Socket> {
        let mut listen = sock(
            Proto::Tcp,
            TcpState::Listening,
            "127.0.0.1:8080",
            "0.0.0.0:0",
        );
        listen.send_q = 128;
        listen.recv_q = 3;
        listen.processes = Some(vec![ProcessRef {
            pid: 4242,
            name: "api".into(),
        }]);
        let mut dual = sock(Proto::Tcp, TcpState::Listening, "[::]:443", "[::]:0");
        dual.v6only = Some(false);
        let mut est = sock(
            Proto::Tcp,
            TcpState::Established,
            "10.0.0.5:51234",
            "10.0.0.9:5432",
        );
        est.send_q = 1448;
        est.timer = Some(Timer::Retransmit {
            expires_ms: 204,
            retransmits: 2,
        });
        est.info = Some(crate::sockets::model::TcpInfo {
            rtt_us: Some(1250),
            rttvar_us: Some(500),
            retrans: Some(1),
            cwnd: Some(10),
            unacked: Some(1),
            lost: Some(0),
            last_data_sent_ms: Some(12),
            last_data_recv_ms: Some(40),
            ..Default::default()
        });
        est.mem = Some(crate::sockets::model::SockMem {
            rmem_alloc: 0,
            rcvbuf: 131072,
            wmem_alloc: 1448,
            sndbuf: 87040,
            drops: Some(0),
            ..Default::default()
        });
        est.processes = Some(vec![ProcessRef {
            pid: 77,
            name: "worker\x1b[31m".into(),
        }]);
        let mut tw = sock(
            Proto::Tcp,
            TcpState::TimeWait,
            "[2001:db8::1]:40000",
            "[2001:db8::2]:80",
        );
        tw.v6only = None;
        tw.timer = Some(Timer::TimeWait { expires_ms: 59000 });
        let udp = sock(Proto::Udp, TcpState::Unconn, "0.0.0.0:5353", "0.0.0.0:0");
        vec![listen, dual, est, tw, udp]
    }

    fn view(all: bool) -> SocketsView {
        SocketsView {
            processes: all,
            info: all,
            memory: all,
            extended: all,
            timer: all,
            place: false,
            families: vec![4, 6],
        }
    }

    #[test]
    fn sockets_tables() {
        let socks = population();
        let rows: Vec<Placed<Socket>> = socks.iter().map(Placed::bare).collect();
        insta::assert_snapshot!("sockets_plain", table(view(false), &rows));
        insta::assert_snapshot!("sockets_p_i_m_e", table(view(true), &rows));
        let place = place();
        let owners = vec![Owner {
            pid: 4242,
            name: "api".into(),
            container: place.container.clone(),
        }];
        let rows: Vec<Placed<Socket>> = socks
            .iter()
            .map(|s| Placed {
                item: s,
                place: Some(&place),
                owners: Some(&owners),
            })
            .collect();
        let v = SocketsView {
            place: true,
            processes: true,
            ..view(false)
        };
        insta::assert_snapshot!("sockets_all_netns", table(v, &rows));
    }

    #[test]
    fn unix_table() {
        let unix = |kind, state, path: Option<&str>, inode, peer| UnixSocket {
            proto: "unix",
            kind,
            state,
            path: path.map(String::from),
            recv_q: 0,
            send_q: 0,
            inode,
            peer_inode: peer,
            processes: Some(vec![ProcessRef {
                pid: 11479,
                name: "php-fpm".into(),
            }]),
            peer_processes: None,
        };
        use crate::sockets::unix::UnixKind;
        let mut conn = unix(
            UnixKind::Stream,
            TcpState::Established,
            Some("/tmp/app/l.sock"),
            1189523,
            1188539,
        );
        conn.recv_q = 5;
        conn.peer_processes = Some(vec![ProcessRef {
            pid: 11552,
            name: "nginx".into(),
        }]);
        let socks = [
            unix(
                UnixKind::Stream,
                TcpState::Listening,
                Some("/tmp/app/l.sock"),
                1188000,
                0,
            ),
            conn,
            unix(UnixKind::Dgram, TcpState::Unconn, Some("@abstract"), 7, 0),
            unix(UnixKind::Seqpacket, TcpState::Unconn, None, 8, 0),
        ];
        let rows: Vec<Placed<UnixSocket>> = socks.iter().map(Placed::bare).collect();
        let v = UnixView {
            processes: true,
            place: false,
        };
        insta::assert_snapshot!("sockets_unix", table(v, &rows));
    }
}

/// `sockets --watch --rate`: the sockets table with each connection's throughput.
pub struct RatedView(pub SocketsView);

impl Rows for RatedView {
    type Record<'r> = Placed<'r, crate::sockets::watch::Rated>;

    fn columns(&self) -> Vec<Column> {
        let mut c = self.0.columns();
        c.extend([Column::right("Sent/s"), Column::right("Recv/s")]);
        c
    }

    fn cells(&self, record: &Self::Record<'_>, cells: &mut Cells) {
        let r = record.item;
        self.0.cells(
            &Placed {
                item: &r.socket,
                place: record.place,
                owners: record.owners,
            },
            cells,
        );
        match r.rate {
            Some(rate) => {
                cells.push(&per_second(rate.sent));
                cells.push(&per_second(rate.received));
            }
            None => {
                cells.push("-");
                cells.push("-");
            }
        }
    }
}

/// Bytes per second, in binary units: `0 B/s`, `512 B/s`, `12.5 KiB/s`, `3.0 MiB/s`.
pub fn per_second(b: f64) -> String {
    const UNITS: [&str; 4] = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let mut v = b.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The per-process sums of `--rate -p`, under the table.
pub fn process_rates(out: &mut dyn std::io::Write, rates: &[ProcessRate]) -> std::io::Result<()> {
    if rates.is_empty() {
        return Ok(());
    }
    let mut t = super::new_table(&["Process", "Conns", "Sent/s", "Recv/s"], &[1, 2, 3]);
    for r in rates {
        t.add_row(vec![
            format!("{}({})", super::escape(&r.name), r.pid),
            r.connections.to_string(),
            per_second(r.sent),
            per_second(r.received),
        ]);
    }
    writeln!(out)?;
    super::write_table(out, &t)
}

#[cfg(test)]
mod rate_tests {
    use super::per_second;

    #[test]
    fn rates_in_binary_units() {
        assert_eq!(per_second(0.0), "0 B/s");
        assert_eq!(per_second(512.0), "512 B/s");
        assert_eq!(per_second(12.5 * 1024.0), "12.5 KiB/s");
        assert_eq!(per_second(3.0 * 1024.0 * 1024.0), "3.0 MiB/s");
    }
}
