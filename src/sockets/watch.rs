//! `--watch`: what changed between two readings of a socket table, keyed by (protocol, local,
//! peer, inode), and each connection's throughput between them from `tcp_info`. Pure.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::model::{Endpoint, Proto, Socket};

/// What identifies one socket across readings. The inode tells a new connection from an old
/// one that had the same four-tuple (0 for TIME_WAIT and request sockets, which the tuple
/// alone identifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub proto: Proto,
    pub local: Endpoint,
    pub peer: Endpoint,
    pub inode: u32,
}

impl Key {
    pub fn of(s: &Socket) -> Key {
        Key {
            proto: s.proto,
            local: s.local,
            peer: s.peer,
            inode: s.inode,
        }
    }
}

/// One reading against the one before: indexes into `now` of the new rows, and the rows gone.
#[derive(Debug, PartialEq)]
pub struct Diff<T> {
    pub new: Vec<usize>,
    pub gone: Vec<T>,
}

/// Compares `now` to the previous reading (`before`, by key) and returns the changes; `before`
/// becomes this reading. Gone rows come in key order, so a redraw is stable.
pub fn diff<T: Clone>(before: &mut HashMap<Key, T>, now: &[T], key: impl Fn(&T) -> Key) -> Diff<T> {
    let mut next = HashMap::with_capacity(now.len());
    let mut new = Vec::new();
    for (i, t) in now.iter().enumerate() {
        let k = key(t);
        // A connection waiting in the accept queue has no inode yet; accept() gives it one.
        // The same connection, not a new one.
        let unaccepted = Key { inode: 0, ..k };
        if before.remove(&k).is_none() && (k.inode == 0 || before.remove(&unaccepted).is_none()) {
            new.push(i);
        }
        next.insert(k, t.clone());
    }
    let mut gone: Vec<(Key, T)> = std::mem::replace(before, next).into_iter().collect();
    gone.sort_by_key(|(k, _)| order(k));
    Diff {
        new,
        gone: gone.into_iter().map(|(_, t)| t).collect(),
    }
}

fn order(k: &Key) -> (bool, IpAddr, u16, IpAddr, u16, u32) {
    (
        k.proto == Proto::Udp,
        k.local.addr,
        k.local.port,
        k.peer.addr,
        k.peer.port,
        k.inode,
    )
}

/// Bytes per second each way between two readings of one TCP connection: (sent and acked,
/// received). `None` without both readings' counters, or when a counter went backwards.
pub fn rate(before: &Socket, now: &Socket, seconds: f64) -> Option<(f64, f64)> {
    let (b, n) = (before.info.as_ref()?, now.info.as_ref()?);
    if seconds <= 0.0 {
        return None;
    }
    let sent = n.bytes_acked?.checked_sub(b.bytes_acked?)?;
    let received = n.bytes_received?.checked_sub(b.bytes_received?)?;
    Some((sent as f64 / seconds, received as f64 / seconds))
}

/// A connection's throughput between two readings, in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Sent and acknowledged by the peer (`tcpi_bytes_acked`).
    pub sent: f64,
    /// Received (`tcpi_bytes_received`).
    pub received: f64,
}

/// A socket with its throughput since the previous reading (`--rate`); `rate` is absent on
/// the first reading of a connection and for sockets without `tcp_info`.
#[derive(Debug, Clone, Serialize)]
pub struct Rated {
    #[serde(flatten)]
    pub socket: Socket,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// Remembers each connection's byte counters between readings.
#[derive(Default)]
pub struct Rater {
    before: HashMap<Key, (Socket, f64)>,
}

impl Rater {
    /// The sockets of a reading taken at `t` seconds, each with its rate since the last one.
    pub fn reading(&mut self, sockets: Vec<Socket>, t: f64) -> Vec<Rated> {
        let mut next = HashMap::with_capacity(sockets.len());
        let rows = sockets
            .into_iter()
            .map(|socket| {
                let k = Key::of(&socket);
                let rate = self
                    .before
                    .get(&k)
                    .and_then(|(b, bt)| rate(b, &socket, t - bt))
                    .map(|(sent, received)| Rate { sent, received });
                if socket.info.is_some() {
                    next.insert(k, (socket.clone(), t));
                }
                Rated { socket, rate }
            })
            .collect();
        self.before = next;
        rows
    }
}

/// One process's connections summed (`--rate -p`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRate {
    pub pid: u32,
    pub name: String,
    pub connections: usize,
    pub sent: f64,
    pub received: f64,
}

/// The rates of each owning process, busiest first (a socket shared by several processes
/// counts for each).
pub fn per_process(rows: &[Rated]) -> Vec<ProcessRate> {
    let mut by: HashMap<u32, ProcessRate> = HashMap::new();
    for r in rows {
        let Some(rate) = r.rate else { continue };
        for p in r.socket.processes.iter().flatten() {
            let e = by.entry(p.pid).or_insert_with(|| ProcessRate {
                pid: p.pid,
                name: p.name.clone(),
                connections: 0,
                sent: 0.0,
                received: 0.0,
            });
            e.connections += 1;
            e.sent += rate.sent;
            e.received += rate.received;
        }
    }
    let mut v: Vec<ProcessRate> = by.into_values().collect();
    v.sort_by(|a, b| {
        (b.sent + b.received)
            .total_cmp(&(a.sent + a.received))
            .then(a.pid.cmp(&b.pid))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, inode: u32) -> Key {
        Key {
            proto: Proto::Tcp,
            local: Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port,
            },
            peer: Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port: 80,
            },
            inode,
        }
    }

    #[test]
    fn new_and_gone_between_readings() {
        let mut before = HashMap::new();
        let first = vec![key(1, 10), key(2, 20)];
        let d = diff(&mut before, &first, |k| *k);
        assert_eq!(d.new, vec![0, 1]);
        assert!(d.gone.is_empty());
        // Port 2's connection closed, a new one reused port 1's tuple (another inode).
        let second = vec![key(1, 10), key(1, 11), key(3, 30)];
        let d = diff(&mut before, &second, |k| *k);
        assert_eq!(d.new, vec![1, 2]);
        assert_eq!(d.gone, vec![key(2, 20)]);
        let d = diff(&mut before, &second, |k| *k);
        assert!(d.new.is_empty() && d.gone.is_empty());
    }

    fn conn(port: u16, acked: u64, received: u64, pid: u32) -> Socket {
        use crate::sockets::model::{ProcessRef, TcpInfo, TcpState};
        let k = key(port, port as u32);
        Socket {
            proto: Proto::Tcp,
            family: 4,
            state: TcpState::Established,
            local: k.local,
            peer: k.peer,
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: k.inode,
            timer: None,
            info: Some(TcpInfo {
                bytes_acked: Some(acked),
                bytes_received: Some(received),
                ..Default::default()
            }),
            processes: Some(vec![ProcessRef {
                pid,
                name: "app".into(),
            }]),
            mem: None,
            v6only: None,
        }
    }

    #[test]
    fn rates_from_the_counters_between_readings_and_per_process() {
        let mut r = Rater::default();
        let first = r.reading(vec![conn(1, 1000, 0, 7), conn(2, 0, 0, 7)], 1.0);
        assert!(first.iter().all(|x| x.rate.is_none()));
        // Two seconds later: 4000 more bytes acked on one, 600 received on the other; a third
        // connection is new (no rate yet).
        let second = r.reading(
            vec![conn(1, 5000, 0, 7), conn(2, 0, 600, 7), conn(3, 9, 9, 8)],
            3.0,
        );
        let rates: Vec<Option<Rate>> = second.iter().map(|x| x.rate).collect();
        assert_eq!(
            rates,
            vec![
                Some(Rate {
                    sent: 2000.0,
                    received: 0.0
                }),
                Some(Rate {
                    sent: 0.0,
                    received: 300.0
                }),
                None
            ]
        );
        let sums = per_process(&second);
        assert_eq!(sums.len(), 1, "pid 8's connection has no rate yet");
        assert_eq!(
            (
                sums[0].pid,
                sums[0].connections,
                sums[0].sent,
                sums[0].received
            ),
            (7, 2, 2000.0, 300.0)
        );
    }

    #[test]
    fn an_accepted_connection_keeps_its_row() {
        let mut before = HashMap::new();
        diff(&mut before, &[key(1, 0)], |k| *k);
        let d = diff(&mut before, &[key(1, 12)], |k| *k);
        assert!(d.new.is_empty() && d.gone.is_empty(), "{d:?}");
        // The other way (a connection closed into TIME_WAIT) is another socket.
        let d = diff(&mut before, &[key(1, 0)], |k| *k);
        assert_eq!((d.new, d.gone), (vec![0], vec![key(1, 12)]));
    }
}
