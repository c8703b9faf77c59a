//! `sockscope summary`: the socket totals of one namespace on one screen (what `ss -s` shows,
//! and the limits each total runs into). The totals come from the kernel's own counters
//! (sockstat), which cost one small read whatever the socket count; per-state counts need a
//! sock_diag dump and are asked for separately ([`StateTally`]).

pub mod sockstat;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::procs::model::SystemFds;
use crate::sockets::model::{Proto, Socket, TcpState};
use sockstat::{HostLimits, Sockstat};

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Every socket of any kind (TCP, UDP, UNIX, netlink…) open in this namespace.
    pub sockets_used: u64,
    /// `ss -s`'s transport table: sockets in use per protocol and family.
    pub transports: Vec<Transport>,
    pub tcp: TcpTotals,
    pub udp: UdpTotals,
    pub frag: FragTotals,
    /// The host's file table (fs.file-nr against fs.file-max); `null` when unreadable.
    pub files: Option<Files>,
    /// Sockets per state and family from a sock_diag dump (`--states`); `null` otherwise.
    pub states: Option<StateTally>,
}

/// One row of the transport table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transport {
    /// raw, udp, udplite, tcp, inet (raw + udp + tcp, as ss counts it) or frag.
    pub transport: &'static str,
    pub total: u64,
    pub ipv4: u64,
    pub ipv6: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpTotals {
    /// `ss -s`'s TCP total: allocated plus TIME_WAIT.
    pub total: u64,
    /// ESTABLISHED plus CLOSE-WAIT (the kernel's Tcp CurrEstab), this namespace.
    pub established: u64,
    /// `ss -s`'s "closed": allocated minus those hashed (in use, not TIME_WAIT). Mixes the
    /// host's allocated count with this namespace's in-use count, as ss does.
    pub closed: u64,
    /// Closed by the application but still in the kernel (FIN-WAIT, LAST-ACK…): the host's.
    pub orphaned: u64,
    /// TIME_WAIT sockets in this namespace.
    pub time_wait: u64,
    /// TCP sockets allocated on the whole host (every namespace).
    pub allocated: u64,
    /// net.ipv4.tcp_max_orphans (host); beyond it orphans are reset ("too many orphaned
    /// sockets").
    pub max_orphans: Option<u64>,
    /// net.ipv4.tcp_max_tw_buckets (this namespace); beyond it TIME_WAIT is skipped.
    pub max_tw_buckets: Option<u64>,
    pub memory: Memory,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpTotals {
    pub memory: Memory,
}

/// Socket buffer memory of one protocol, as the kernel accounts it for the whole host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memory {
    pub pages: u64,
    pub bytes: u64,
    /// tcp_mem / udp_mem in pages: above `pressure` the kernel trims buffers; at `max` new
    /// allocations fail ("TCP: out of memory"). `null` when unreadable.
    pub limit_pages: Option<MemLimit>,
    /// `pages` as a percentage of `max`.
    pub percent_of_max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemLimit {
    pub min: u64,
    pub pressure: u64,
    pub max: u64,
}

/// IP fragments waiting for reassembly, this namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FragTotals {
    pub queued: u64,
    pub memory_bytes: u64,
}

/// The host's file handles (ENFILE comes when `allocated` reaches `max`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Files {
    pub allocated: u64,
    pub max: u64,
    pub percent_used: f64,
}

/// Everything [`summarize`] needs, as read.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub sockstat: Sockstat,
    pub curr_estab: u64,
    pub limits: HostLimits,
    pub max_tw_buckets: Option<u64>,
    pub files: Option<SystemFds>,
    pub states: Option<StateTally>,
}

/// Builds the summary (pure): ss's derived numbers with ss's formulas, so the two agree.
pub fn summarize(i: Inputs) -> Summary {
    let s = &i.sockstat;
    let row = |transport, v4: u64, v6: u64| Transport {
        transport,
        total: v4 + v6,
        ipv4: v4,
        ipv6: v6,
    };
    let (raw4, raw6) = (s.get("RAW.inuse"), s.get("RAW6.inuse"));
    let (udp4, udp6) = (s.get("UDP.inuse"), s.get("UDP6.inuse"));
    let (tcp4, tcp6) = (s.get("TCP.inuse"), s.get("TCP6.inuse"));
    let (frag4, frag6) = (s.get("FRAG.inuse"), s.get("FRAG6.inuse"));
    let transports = vec![
        row("raw", raw4, raw6),
        row("udp", udp4, udp6),
        row("udplite", s.get("UDPLITE.inuse"), s.get("UDPLITE6.inuse")),
        row("tcp", tcp4, tcp6),
        row("inet", raw4 + udp4 + tcp4, raw6 + udp6 + tcp6),
        row("frag", frag4, frag6),
    ];
    let (alloc, tw) = (s.get("TCP.alloc"), s.get("TCP.tw"));
    let page = i.limits.page_size;
    let memory = |pages: u64, limit: Option<[u64; 3]>| Memory {
        pages,
        bytes: pages * page,
        limit_pages: limit.map(|[min, pressure, max]| MemLimit { min, pressure, max }),
        percent_of_max: limit
            .filter(|l| l[2] > 0)
            .map(|l| pages as f64 * 100.0 / l[2] as f64),
    };
    Summary {
        sockets_used: s.get("sockets.used"),
        transports,
        tcp: TcpTotals {
            total: alloc + tw,
            established: i.curr_estab,
            closed: alloc.saturating_sub((tcp4 + tcp6).saturating_sub(tw)),
            orphaned: s.get("TCP.orphan"),
            time_wait: tw,
            allocated: alloc,
            max_orphans: i.limits.tcp_max_orphans,
            max_tw_buckets: i.max_tw_buckets,
            memory: memory(s.get("TCP.mem"), i.limits.tcp_mem),
        },
        udp: UdpTotals {
            memory: memory(s.get("UDP.mem"), i.limits.udp_mem),
        },
        frag: FragTotals {
            queued: frag4 + frag6,
            memory_bytes: s.get("FRAG.memory") + s.get("FRAG6.memory"),
        },
        files: i.files.map(|f| Files {
            allocated: f.allocated,
            max: f.max,
            percent_used: if f.max > 0 {
                f.allocated as f64 * 100.0 / f.max as f64
            } else {
                0.0
            },
        }),
        states: i.states,
    }
}

/// Sockets per protocol, state and family, counted as a dump streams by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateTally {
    /// [proto: tcp, udp][state slot][family: 4, 6]
    counts: [[[u64; 2]; 14]; 2],
}

/// The states each protocol is shown with, in the kernel's order.
pub const UDP_STATES: [TcpState; 2] = [TcpState::Established, TcpState::Unconn];

/// One state's count per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FamilyCount {
    pub total: u64,
    pub ipv4: u64,
    pub ipv6: u64,
}

impl StateTally {
    pub fn add(&mut self, s: &Socket) {
        let p = usize::from(s.proto == Proto::Udp);
        let f = usize::from(s.family == 6);
        self.counts[p][s.state as usize][f] += 1;
    }

    pub fn get(&self, proto: Proto, state: TcpState) -> FamilyCount {
        let [v4, v6] = self.counts[usize::from(proto == Proto::Udp)][state as usize];
        FamilyCount {
            total: v4 + v6,
            ipv4: v4,
            ipv6: v6,
        }
    }

    /// The states shown for a protocol: every TCP state; UDP's connected and unconnected
    /// (plus anything unexpected the kernel reported).
    pub fn states_of(&self, proto: Proto) -> Vec<TcpState> {
        let mut v: Vec<TcpState> = match proto {
            Proto::Tcp => TcpState::ALL.to_vec(),
            Proto::Udp => UDP_STATES.to_vec(),
        };
        let extra = TcpState::ALL
            .into_iter()
            .chain([TcpState::Unconn, TcpState::Unknown])
            .filter(|s| !v.contains(s) && self.get(proto, *s).total > 0)
            .collect::<Vec<_>>();
        v.extend(extra);
        v
    }

    /// Every socket of one protocol.
    pub fn total(&self, proto: Proto) -> FamilyCount {
        let [mut v4, mut v6] = [0, 0];
        for [a, b] in self.counts[usize::from(proto == Proto::Udp)] {
            v4 += a;
            v6 += b;
        }
        FamilyCount {
            total: v4 + v6,
            ipv4: v4,
            ipv6: v6,
        }
    }
}

/// `{"tcp": {"established": {"total", "ipv4", "ipv6"}, …, "all": {…}}, "udp": {…}}`.
impl Serialize for StateTally {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a StateTally, Proto);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let states = self.0.states_of(self.1);
                let mut m = ser.serialize_map(Some(states.len() + 1))?;
                for s in states {
                    m.serialize_entry(s.name(), &self.0.get(self.1, s))?;
                }
                m.serialize_entry("all", &self.0.total(self.1))?;
                m.end()
            }
        }
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("tcp", &One(self, Proto::Tcp))?;
        m.serialize_entry("udp", &One(self, Proto::Udp))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::sockstat::parse_sockstat;
    use super::*;

    fn inputs(text: &str) -> Inputs {
        Inputs {
            sockstat: parse_sockstat(text),
            curr_estab: 2,
            limits: HostLimits {
                tcp_mem: Some([100, 200, 400]),
                udp_mem: None,
                tcp_max_orphans: Some(4096),
                page_size: 4096,
            },
            max_tw_buckets: Some(262144),
            files: Some(SystemFds {
                allocated: 500,
                free: 0,
                max: 1000,
                nr_open: None,
            }),
            states: None,
        }
    }

    /// The numbers `ss -s` printed for these files: "TCP: 10 (estab 2, closed 3, orphaned
    /// 1, timewait 3)" and the transport table.
    #[test]
    fn derived_numbers_follow_ss() {
        let s = summarize(inputs(
            "sockets: used 18\nTCP: inuse 6 orphan 1 tw 3 alloc 7 mem 100\nUDP: inuse 3 mem 4\n\
             RAW: inuse 1\nFRAG: inuse 0 memory 0\nTCP6: inuse 1\nUDP6: inuse 2\nRAW6: inuse 0\n\
             FRAG6: inuse 0 memory 0\n",
        ));
        assert_eq!(s.sockets_used, 18);
        assert_eq!(s.tcp.total, 10);
        assert_eq!(s.tcp.established, 2);
        // 7 allocated - (6 + 1 hashed - 3 time-wait)
        assert_eq!(s.tcp.closed, 3);
        assert_eq!(s.tcp.orphaned, 1);
        assert_eq!(s.tcp.time_wait, 3);
        assert_eq!(s.tcp.memory.bytes, 100 * 4096);
        assert_eq!(s.tcp.memory.percent_of_max, Some(25.0));
        assert_eq!(s.udp.memory.percent_of_max, None);
        let inet = s.transports.iter().find(|t| t.transport == "inet").unwrap();
        assert_eq!((inet.total, inet.ipv4, inet.ipv6), (13, 10, 3));
        assert_eq!(s.files.unwrap().percent_used, 50.0);
    }

    #[test]
    fn closed_never_underflows() {
        let s = summarize(inputs("TCP: inuse 9 orphan 0 tw 0 alloc 2 mem 0\n"));
        assert_eq!(s.tcp.closed, 0);
    }
}
