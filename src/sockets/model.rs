//! The socket model: plain data decoded from `sock_diag`, with no I/O and no formatting.

use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// The kernel's TCP states (`include/net/tcp_states.h`), named as `ss` names them in filters.
/// UDP sockets reuse them: a connected UDP socket is `Established`; an unconnected one, which
/// the kernel reports as TCP_CLOSE, is decoded as [`TcpState::Unconn`] (ss's `UNCONN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TcpState {
    #[serde(rename = "established")]
    Established = 1,
    #[serde(rename = "syn-sent")]
    SynSent = 2,
    #[serde(rename = "syn-recv")]
    SynRecv = 3,
    #[serde(rename = "fin-wait-1")]
    FinWait1 = 4,
    #[serde(rename = "fin-wait-2")]
    FinWait2 = 5,
    #[serde(rename = "time-wait")]
    TimeWait = 6,
    #[serde(rename = "close")]
    Close = 7,
    #[serde(rename = "close-wait")]
    CloseWait = 8,
    #[serde(rename = "last-ack")]
    LastAck = 9,
    #[serde(rename = "listening")]
    Listening = 10,
    #[serde(rename = "closing")]
    Closing = 11,
    /// A UDP socket not connected to a peer (the kernel's TCP_CLOSE on a datagram socket):
    /// what `ss -lu` lists. Not a kernel number: its mask bit is TCP_CLOSE's.
    #[serde(rename = "unconn")]
    Unconn = 13,
    /// Anything a future kernel adds (12 is TCP_NEW_SYN_RECV, never dumped today).
    #[serde(rename = "unknown")]
    Unknown = 0,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listening,
        TcpState::Closing,
    ];

    pub fn from_kernel(v: u8) -> TcpState {
        TcpState::ALL
            .iter()
            .copied()
            .find(|s| *s as u8 == v)
            .unwrap_or(TcpState::Unknown)
    }

    /// The `ss` filter name, also used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listening => "listening",
            TcpState::Closing => "closing",
            TcpState::Unconn => "unconn",
            TcpState::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<TcpState> {
        TcpState::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The state of a socket of protocol `proto` as the kernel numbers it: TCP_CLOSE on a UDP
    /// socket is [`TcpState::Unconn`].
    pub fn from_kernel_for(v: u8, proto: Proto) -> TcpState {
        match (TcpState::from_kernel(v), proto) {
            (TcpState::Close, Proto::Udp) => TcpState::Unconn,
            (s, _) => s,
        }
    }

    /// The bit of this state in a sock_diag request's state mask.
    pub fn mask_bit(self) -> u32 {
        match self {
            TcpState::Unconn => TcpState::Close.mask_bit(),
            s => 1 << (s as u32),
        }
    }
}

/// One end of a socket. Port 0 with an unspecified address means "any" (`*` in `ss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// The timer the kernel has armed on a TCP socket, from the sock_diag header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Timer {
    Retransmit { expires_ms: u64, retransmits: u8 },
    Keepalive { expires_ms: u64 },
    TimeWait { expires_ms: u64 },
    Probe { expires_ms: u64 },
}

/// The subset of the kernel's `struct tcp_info` that triage needs. A field is `None` when the
/// running kernel's struct is too short to hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: Option<u32>,
    /// Round-trip time variance, microseconds.
    pub rttvar_us: Option<u32>,
    /// Lowest RTT seen, microseconds.
    pub min_rtt_us: Option<u32>,
    /// Retransmission timeout, microseconds.
    pub rto_us: Option<u32>,
    /// Retransmissions of the segment now timing out (consecutive RTOs).
    pub retransmits: Option<u8>,
    /// Segments currently retransmitted and not yet acknowledged.
    pub retrans: Option<u32>,
    /// Retransmitted segments over the connection's life.
    pub total_retrans: Option<u32>,
    /// Congestion window, in segments.
    pub cwnd: Option<u32>,
    /// Segments sent and not yet acknowledged.
    pub unacked: Option<u32>,
    /// Segments the kernel believes are lost.
    pub lost: Option<u32>,
    pub last_data_sent_ms: Option<u32>,
    pub last_data_recv_ms: Option<u32>,
    pub last_ack_recv_ms: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
}

/// A process that holds a socket (or any fd) open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRef {
    pub pid: u32,
    pub name: String,
}

/// One TCP or UDP socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    pub proto: Proto,
    /// 4 or 6.
    pub family: u8,
    pub state: TcpState,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// Bytes not yet read by the application; on a listener, connections waiting in the
    /// accept queue.
    pub recv_q: u32,
    /// Bytes not yet acknowledged by the peer; on a listener, the backlog given to `listen()`.
    pub send_q: u32,
    pub uid: u32,
    pub inode: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<Timer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<TcpInfo>,
    /// Filled only when owners were asked for (`-p`); empty when no readable process holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessRef>>,
    /// The socket's memory, when asked for (`-m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<SockMem>,
    /// IPV6_V6ONLY of an IPv6 socket: `false` on `[::]` means dual-stack (it takes IPv4 too,
    /// shown as `*` like ss does). `None` (JSON null) when the kernel did not say: IPv4
    /// sockets, TIME_WAIT sockets.
    pub v6only: Option<bool>,
}

#[cfg(test)]
impl Socket {
    /// An established TCP socket for pure tests: the family follows the local address.
    pub fn test_tcp(local: &str, lport: u16, peer: &str, pport: u16) -> Socket {
        Socket {
            proto: Proto::Tcp,
            family: if local.contains(':') { 6 } else { 4 },
            state: TcpState::Established,
            local: Endpoint {
                addr: local.parse().unwrap(),
                port: lport,
            },
            peer: Endpoint {
                addr: peer.parse().unwrap(),
                port: pport,
            },
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 1,
            timer: None,
            info: None,
            processes: None,
            mem: None,
            v6only: None,
        }
    }
}

impl Socket {
    /// An IPv6 socket that also takes IPv4 (IPV6_V6ONLY off).
    pub fn dual_stack(&self) -> bool {
        self.family == 6 && self.v6only == Some(false)
    }

    /// True if a connection to `ip` on this socket's port would reach it as far as addresses
    /// go: the same address, the wildcard of the family, a dual-stack wildcard for IPv4, or
    /// an IPv4-mapped address for its IPv4 form.
    pub fn takes_address(&self, ip: IpAddr) -> bool {
        let local = self.local.addr;
        if local == ip {
            return true;
        }
        match (local, ip) {
            (IpAddr::V4(l), IpAddr::V4(_)) => l.is_unspecified(),
            (IpAddr::V6(l), IpAddr::V6(_)) => l.is_unspecified(),
            (IpAddr::V6(l), IpAddr::V4(v4)) => {
                self.v6only != Some(true)
                    && (l.is_unspecified() && self.dual_stack() || l.to_ipv4_mapped() == Some(v4))
            }
            (IpAddr::V4(_), IpAddr::V6(v6)) => {
                v6.to_ipv4_mapped().is_some_and(|m| IpAddr::V4(m) == local)
            }
        }
    }
}

/// A socket's memory as the kernel accounts it (INET_DIAG_SKMEMINFO; what `ss -m` prints as
/// skmem:(r,rb,t,tb,f,w,o,bl,d)). Bytes, except `drops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SockMem {
    /// Received data held, waiting to be read (`r`).
    pub rmem_alloc: u32,
    /// The receive buffer limit: SO_RCVBUF as the kernel doubled it (`rb`).
    pub rcvbuf: u32,
    /// Sent data not yet freed (`t`).
    pub wmem_alloc: u32,
    /// The send buffer limit (`tb`).
    pub sndbuf: u32,
    pub fwd_alloc: u32,
    pub wmem_queued: u32,
    pub optmem: u32,
    pub backlog: u32,
    /// Packets dropped on this socket since it was created (`d`): for UDP, datagrams that
    /// found the receive buffer full. None on kernels too old to report it.
    pub drops: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_numbers_and_names_round_trip() {
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_kernel(s as u8), s);
            assert_eq!(TcpState::from_name(s.name()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert_eq!(TcpState::from_kernel(6), TcpState::TimeWait);
        assert_eq!(TcpState::from_kernel(10), TcpState::Listening);
        assert_eq!(TcpState::from_kernel(12), TcpState::Unknown);
        assert_eq!(TcpState::TimeWait.mask_bit(), 1 << 6);
    }

    #[test]
    fn unconnected_udp_is_unconn() {
        assert_eq!(TcpState::from_kernel_for(7, Proto::Udp), TcpState::Unconn);
        assert_eq!(TcpState::from_kernel_for(7, Proto::Tcp), TcpState::Close);
        assert_eq!(
            TcpState::from_kernel_for(1, Proto::Udp),
            TcpState::Established
        );
        assert_eq!(TcpState::Unconn.mask_bit(), 1 << 7);
        assert_eq!(
            serde_json::to_string(&TcpState::Unconn).unwrap(),
            "\"unconn\""
        );
    }
}
