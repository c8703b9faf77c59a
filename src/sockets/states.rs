//! Counting sockets per state and per peer as they stream by, without keeping the sockets:
//! memory grows with the number of distinct peers, never with the number of sockets.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::model::{Endpoint, Socket, TcpState};

/// Counts per TCP state, in the kernel's order, serialized as `{"established": n, …}`.
/// Indexed by the state's number (14 slots: UDP's `Unconn` sits past the kernel's states).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u64; 14]);

impl StateCounts {
    pub fn get(&self, s: TcpState) -> u64 {
        self.0[s as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(TcpState::ALL.len()))?;
        for s in TcpState::ALL {
            m.serialize_entry(s.name(), &self.get(s))?;
        }
        if self.get(TcpState::Unknown) > 0 {
            m.serialize_entry("unknown", &self.get(TcpState::Unknown))?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerCount {
    pub addr: IpAddr,
    /// Connections with this peer in any state but listening/close.
    pub total: u64,
    pub time_wait: u64,
}

/// The busiest user of the ephemeral port range: one remote service (address and port) that
/// many local ephemeral ports point at. Each (local addr, remote addr, remote port) can use
/// each ephemeral port once, so this is what runs out first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EphemeralUse {
    pub peer: Endpoint,
    pub ports_used: u64,
    pub time_wait: u64,
    /// `ports_used` as a percentage of the range size.
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ephemeral {
    pub low: u16,
    pub high: u16,
    pub size: u32,
    pub busiest: Option<EphemeralUse>,
}

/// The TIME_WAIT-related settings in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimeWaitSettings {
    /// 0 off, 1 on, 2 loopback only (the default).
    pub tcp_tw_reuse: Option<i64>,
    /// Above this many TIME_WAIT sockets the kernel destroys new ones at once.
    pub tcp_max_tw_buckets: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateSummary {
    pub total: u64,
    pub states: StateCounts,
    /// Top peers by connections, then by TIME_WAIT.
    pub top_peers: Vec<PeerCount>,
    pub top_time_wait: Vec<PeerCount>,
    pub ephemeral: Option<Ephemeral>,
    pub settings: TimeWaitSettings,
}

/// The streaming accumulator: feed it every socket, then [`StateCounter::finish`].
#[derive(Debug)]
pub struct StateCounter {
    counts: StateCounts,
    peers: HashMap<IpAddr, (u64, u64)>,
    range: Option<(u16, u16)>,
    ephemeral: HashMap<Endpoint, (u64, u64)>,
}

impl StateCounter {
    pub fn new(range: Option<(u16, u16)>) -> Self {
        StateCounter {
            counts: StateCounts::default(),
            peers: HashMap::new(),
            range,
            ephemeral: HashMap::new(),
        }
    }

    pub fn add(&mut self, s: &Socket) {
        self.counts.0[s.state as usize] += 1;
        if matches!(
            s.state,
            TcpState::Listening | TcpState::Close | TcpState::Unconn
        ) || s.peer.port == 0
        {
            return;
        }
        let tw = (s.state == TcpState::TimeWait) as u64;
        let peer = normalize(s.peer.addr);
        let e = self.peers.entry(peer).or_default();
        e.0 += 1;
        e.1 += tw;
        if let Some((lo, hi)) = self.range {
            if (lo..=hi).contains(&s.local.port) {
                let e = self
                    .ephemeral
                    .entry(Endpoint {
                        addr: peer,
                        port: s.peer.port,
                    })
                    .or_default();
                e.0 += 1;
                e.1 += tw;
            }
        }
    }

    pub fn finish(self, top: usize, settings: TimeWaitSettings) -> StateSummary {
        let mut peers: Vec<PeerCount> = self
            .peers
            .into_iter()
            .map(|(addr, (total, time_wait))| PeerCount {
                addr,
                total,
                time_wait,
            })
            .collect();
        // Ties break on the address so output is stable run to run.
        peers.sort_by(|a, b| b.total.cmp(&a.total).then(a.addr.cmp(&b.addr)));
        let top_peers: Vec<PeerCount> = peers.iter().take(top).cloned().collect();
        peers.sort_by(|a, b| b.time_wait.cmp(&a.time_wait).then(a.addr.cmp(&b.addr)));
        let top_time_wait = peers
            .into_iter()
            .filter(|p| p.time_wait > 0)
            .take(top)
            .collect();
        let ephemeral = self.range.map(|(low, high)| {
            let size = (high - low) as u32 + 1;
            let busiest = self
                .ephemeral
                .into_iter()
                .max_by(|a, b| {
                    a.1 .0
                        .cmp(&b.1 .0)
                        .then(b.0.addr.cmp(&a.0.addr))
                        .then(b.0.port.cmp(&a.0.port))
                })
                .map(|(peer, (used, tw))| EphemeralUse {
                    peer,
                    ports_used: used,
                    time_wait: tw,
                    percent: used as f64 * 100.0 / size as f64,
                });
            Ephemeral {
                low,
                high,
                size,
                busiest,
            }
        });
        StateSummary {
            total: self.counts.total(),
            states: self.counts,
            top_peers,
            top_time_wait,
            ephemeral,
            settings,
        }
    }
}

/// Dual-stack sockets report IPv4 peers as `::ffff:a.b.c.d`; count them with the IPv4 peer.
fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Proto;

    fn s(state: TcpState, lport: u16, peer: &str, pport: u16) -> Socket {
        Socket {
            proto: Proto::Tcp,
            family: 4,
            state,
            local: Endpoint {
                addr: "10.0.0.1".parse().unwrap(),
                port: lport,
            },
            peer: Endpoint {
                addr: peer.parse().unwrap(),
                port: pport,
            },
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 0,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: None,
        }
    }

    #[test]
    fn counts_states_peers_and_ephemeral_use() {
        let mut c = StateCounter::new(Some((40000, 40099)));
        c.add(&s(TcpState::Listening, 80, "0.0.0.0", 0));
        for p in 0..30 {
            c.add(&s(TcpState::TimeWait, 40000 + p, "10.0.0.9", 443));
        }
        for p in 30..40 {
            c.add(&s(TcpState::Established, 40000 + p, "10.0.0.9", 443));
        }
        for p in 0..5 {
            c.add(&s(TcpState::Established, 80, "::ffff:10.0.0.7", 50000 + p));
        }
        let sum = c.finish(10, TimeWaitSettings::default());
        assert_eq!(sum.total, 46);
        assert_eq!(sum.states.get(TcpState::TimeWait), 30);
        assert_eq!(sum.states.get(TcpState::Established), 15);
        assert_eq!(sum.states.get(TcpState::Listening), 1);
        assert_eq!(sum.top_peers.len(), 2);
        assert_eq!(sum.top_peers[0].addr, "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(sum.top_peers[0].total, 40);
        assert_eq!(sum.top_peers[1].addr, "10.0.0.7".parse::<IpAddr>().unwrap());
        assert_eq!(sum.top_time_wait.len(), 1);
        assert_eq!(sum.top_time_wait[0].time_wait, 30);
        let e = sum.ephemeral.unwrap();
        assert_eq!(e.size, 100);
        let b = e.busiest.unwrap();
        assert_eq!(b.peer.port, 443);
        assert_eq!(b.ports_used, 40);
        assert_eq!(b.time_wait, 30);
        assert_eq!(b.percent, 40.0);
    }

    #[test]
    fn json_lists_every_state_even_at_zero() {
        let sum = StateCounter::new(None).finish(5, TimeWaitSettings::default());
        let v = serde_json::to_value(&sum).unwrap();
        assert_eq!(v["states"]["time-wait"], 0);
        assert_eq!(v["states"].as_object().unwrap().len(), 11);
        assert!(v["ephemeral"].is_null());
    }
}
