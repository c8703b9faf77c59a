//! The listener view: listening TCP sockets and bound UDP sockets with their accept queues.

use serde::Serialize;

use super::model::{Proto, Socket, TcpState};

/// A listening socket with its accept-queue numbers made explicit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    #[serde(flatten)]
    pub socket: Socket,
    /// The `listen()` backlog (TCP only).
    pub backlog: Option<u32>,
    /// Connections completed by the kernel and waiting for `accept()` (TCP only).
    pub accept_queue: Option<u32>,
    /// `accept_queue` as a percentage of `backlog`. The kernel admits one past the backlog
    /// before it drops, so a full queue reads above 100.
    pub fill_percent: Option<f64>,
}

/// True for the sockets this view shows: TCP in LISTEN, UDP not connected to a peer.
pub fn is_listener(s: &Socket) -> bool {
    match s.proto {
        Proto::Tcp => s.state == TcpState::Listening,
        Proto::Udp => s.state == TcpState::Unconn && s.peer.port == 0,
    }
}

/// True for an IPv6 listener that takes IPv4 connections too: bound to `[::]` with
/// IPV6_V6ONLY off, or to an IPv4-mapped address.
pub fn takes_ipv4(s: &Socket) -> bool {
    match s.local.addr {
        std::net::IpAddr::V6(a) => {
            (a.is_unspecified() && s.dual_stack())
                || (a.to_ipv4_mapped().is_some() && s.v6only != Some(true))
        }
        std::net::IpAddr::V4(_) => false,
    }
}

pub fn to_listener(socket: Socket) -> Listener {
    let (backlog, accept_queue, fill_percent) = match socket.proto {
        Proto::Tcp => {
            let fill = if socket.send_q > 0 {
                Some(socket.recv_q as f64 * 100.0 / socket.send_q as f64)
            } else {
                None
            };
            (Some(socket.send_q), Some(socket.recv_q), fill)
        }
        Proto::Udp => (None, None, None),
    };
    Listener {
        socket,
        backlog,
        accept_queue,
        fill_percent,
    }
}

impl Listener {
    /// The accept queue holds more than the backlog: the kernel now drops new handshakes
    /// (it admits one past the backlog before it starts).
    pub fn overflowing(&self) -> bool {
        matches!((self.accept_queue, self.backlog), (Some(q), Some(b)) if q > b)
    }
}

/// Sorted by port, then TCP before UDP, IPv4 before IPv6, then address.
pub fn sort_listeners(v: &mut [Listener]) {
    v.sort_by_key(order_key);
}

/// The order of [`sort_listeners`], for listings that sort listeners among other things.
pub fn order_key(l: &Listener) -> (u16, u8, u8, std::net::IpAddr) {
    let s = &l.socket;
    (s.local.port, s.proto as u8, s.family, s.local.addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::model::Endpoint;

    fn s(proto: Proto, state: TcpState, port: u16, rq: u32, sq: u32) -> Socket {
        Socket {
            proto,
            family: 4,
            state,
            local: Endpoint {
                addr: "0.0.0.0".parse().unwrap(),
                port,
            },
            peer: Endpoint {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            recv_q: rq,
            send_q: sq,
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
    fn accept_queue_fill() {
        let l = to_listener(s(Proto::Tcp, TcpState::Listening, 80, 5, 4));
        assert_eq!(l.backlog, Some(4));
        assert_eq!(l.accept_queue, Some(5));
        assert_eq!(l.fill_percent, Some(125.0));
        let u = to_listener(s(Proto::Udp, TcpState::Unconn, 53, 0, 0));
        assert_eq!(u.fill_percent, None);
        assert!(is_listener(&s(Proto::Udp, TcpState::Unconn, 53, 0, 0)));
        assert!(!is_listener(&s(
            Proto::Tcp,
            TcpState::Established,
            53,
            0,
            0
        )));
    }

    #[test]
    fn dual_stack_listeners_take_ipv4() {
        let mut l = s(Proto::Tcp, TcpState::Listening, 6300, 0, 128);
        l.family = 6;
        l.local.addr = "::".parse().unwrap();
        assert!(!takes_ipv4(&l), "V6ONLY unknown: not claimed");
        l.v6only = Some(false);
        assert!(takes_ipv4(&l));
        assert!(l.takes_address("127.0.0.1".parse().unwrap()));
        l.v6only = Some(true);
        assert!(!takes_ipv4(&l));
        assert!(!l.takes_address("127.0.0.1".parse().unwrap()));
        assert!(l.takes_address("::1".parse().unwrap()));
        let v4 = s(Proto::Tcp, TcpState::Listening, 80, 0, 128);
        assert!(!takes_ipv4(&v4));
        assert!(v4.takes_address("10.1.2.3".parse().unwrap()));
        let mut lo = v4.clone();
        lo.local.addr = "127.0.0.2".parse().unwrap();
        assert!(!lo.takes_address("127.0.0.1".parse().unwrap()));
        assert!(lo.takes_address("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn sorted_by_port() {
        let mut v = vec![
            to_listener(s(Proto::Udp, TcpState::Unconn, 53, 0, 0)),
            to_listener(s(Proto::Tcp, TcpState::Listening, 443, 0, 128)),
            to_listener(s(Proto::Tcp, TcpState::Listening, 53, 0, 128)),
        ];
        sort_listeners(&mut v);
        let order: Vec<_> = v
            .iter()
            .map(|l| (l.socket.local.port, l.socket.proto))
            .collect();
        assert_eq!(
            order,
            vec![(53, Proto::Tcp), (53, Proto::Udp), (443, Proto::Tcp)]
        );
    }
}
