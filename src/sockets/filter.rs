//! Socket filters. All of them run in the kernel: protocol, family and state in the dump
//! request, ports, addresses and filter expressions as inet_diag bytecode (see `bytecode.rs`);
//! the user-space tests here are the fallback for a kernel that refuses the program.

use std::net::IpAddr;
use std::str::FromStr;

use super::expr::{End, Expr};
use super::model::{Proto, Socket, TcpState};

/// An address with an optional prefix length: `10.0.0.0/8`, `::1`, `192.168.1.7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let a = a.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = a.parse().map_err(|_| {
            format!("'{s}' is not an address or ADDR/PREFIX (e.g. 10.0.0.0/8, ::1)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("prefix '/{p}' in '{s}' must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// True if `ip` is inside this network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as
    /// dual-stack sockets report them) match IPv4 networks.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A `--state` argument (or a `state` word of the filter language): one state or one of ss's
/// groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSel(pub u32);

/// The state names accepted, for error messages.
pub const STATE_NAMES: &str = "established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, \
    time-wait, close, close-wait, last-ack, listening, closing, unconn (UDP), or the groups \
    connected, synchronized, bucket, big, all";

impl FromStr for StateSel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all: u32 = TcpState::ALL.iter().map(|s| s.mask_bit()).sum();
        let bit = |s: TcpState| s.mask_bit();
        // ss prints TIME-WAIT and ESTAB, takes time-wait and established; people also type
        // time_wait: case and - or _ do not matter.
        let name = s.to_ascii_lowercase().replace('_', "-");
        let mask = match name.as_str() {
            "all" => all,
            // The groups as ss defines them (its scan_state), not as its man page words them.
            "connected" => all & !bit(TcpState::Listening) & !bit(TcpState::Close),
            "synchronized" => {
                all & !bit(TcpState::Listening) & !bit(TcpState::Close) & !bit(TcpState::SynSent)
            }
            "bucket" => bit(TcpState::SynRecv) | bit(TcpState::TimeWait),
            "big" => all & !bit(TcpState::SynRecv) & !bit(TcpState::TimeWait),
            "listen" | "listening" => bit(TcpState::Listening),
            "estab" | "established" => bit(TcpState::Established),
            "closed" | "unconn" | "unconnected" => bit(TcpState::Close),
            "syn-rcv" => bit(TcpState::SynRecv),
            other => match TcpState::from_name(other) {
                Some(st) if st != TcpState::Unknown => st.mask_bit(),
                _ => return Err(format!("unknown state '{s}': use one of {STATE_NAMES}")),
            },
        };
        Ok(StateSel(mask))
    }
}

/// The whole selection of a `sockets` run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub protos: Vec<Proto>,
    pub families: Vec<u8>,
    /// Kernel state mask; 0 means every state.
    pub states: u32,
    pub user: UserFilter,
}

impl Selection {
    /// The kernel state mask for one protocol's dump (0 = every state). For UDP, `listening`
    /// means what `ss -l` means there: bound and not connected, which the kernel reports as
    /// TCP_CLOSE (shown as `unconn`); no UDP socket is ever in LISTEN.
    pub fn states_for(&self, proto: Proto) -> u32 {
        match proto {
            Proto::Udp if self.states & TcpState::Listening.mask_bit() != 0 => {
                self.states | TcpState::Unconn.mask_bit()
            }
            _ => self.states,
        }
    }

    /// Every TCP socket, IPv4 and IPv6, unfiltered: what the counting views dump.
    pub fn every_tcp() -> Selection {
        Selection {
            protos: vec![Proto::Tcp],
            families: vec![4, 6],
            states: 0,
            user: UserFilter::default(),
        }
    }
}

/// Port and address tests: compiled to kernel bytecode, or checked in user space as a fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Either end.
    pub port: Option<u16>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub src: Option<Cidr>,
    pub dst: Option<Cidr>,
    /// A filter-language expression (`dport = :443 or sport = :443`), ANDed with the rest.
    pub expr: Option<Expr>,
}

impl UserFilter {
    pub fn is_empty(&self) -> bool {
        *self == UserFilter::default()
    }

    /// Every test as one expression (`None` when there is none): what the kernel runs.
    pub fn to_expr(&self) -> Option<Expr> {
        let host = |end, net: Option<Cidr>| {
            net.map(|n| Expr::Host {
                end,
                net: Some(n),
                port: None,
            })
        };
        let parts = [
            self.port
                .map(|p| Expr::or(Expr::port(End::Local, p), Expr::port(End::Peer, p))),
            self.sport.map(|p| Expr::port(End::Local, p)),
            self.dport.map(|p| Expr::port(End::Peer, p)),
            host(End::Local, self.src),
            host(End::Peer, self.dst),
            self.expr.clone(),
        ];
        parts.into_iter().flatten().reduce(Expr::and)
    }

    pub fn matches(&self, s: &Socket) -> bool {
        self.to_expr().is_none_or(|e| e.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, lport: u16, peer: &str, pport: u16) -> Socket {
        Socket::test_tcp(local, lport, peer, pport)
    }

    #[test]
    fn cidr_parses_and_matches() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(&"10.1.200.3".parse().unwrap()));
        assert!(!c.contains(&"10.2.0.1".parse().unwrap()));
        assert!(c.contains(&"::ffff:10.1.0.9".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(&"203.0.113.1".parse().unwrap()));
        let v6: Cidr = "[2001:db8::]/32".parse().unwrap();
        assert!(v6.contains(&"2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains(&"10.0.0.1".parse().unwrap()));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(host.prefix, 32);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("300.1.1.1".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn state_names_and_groups() {
        assert_eq!("time-wait".parse::<StateSel>().unwrap().0, 1 << 6);
        assert_eq!("LISTENING".parse::<StateSel>().unwrap().0, 1 << 10);
        let connected = "connected".parse::<StateSel>().unwrap().0;
        assert_eq!(connected & (1 << 10), 0);
        assert_eq!(connected & (1 << 7), 0);
        assert_ne!(connected & (1 << 2), 0);
        let sync = "synchronized".parse::<StateSel>().unwrap().0;
        assert_eq!(sync & (1 << 2), 0);
        assert_ne!(sync & (1 << 1), 0);
        assert!("timewait".parse::<StateSel>().is_err());
        // UDP: listening is unconnected (what ss -lu lists); TCP keeps LISTEN only.
        let sel = Selection {
            states: "listening".parse::<StateSel>().unwrap().0,
            ..Default::default()
        };
        assert_eq!(sel.states_for(Proto::Udp), 1 << 10 | 1 << 7);
        assert_eq!(sel.states_for(Proto::Tcp), 1 << 10);
        assert_eq!("unconn".parse::<StateSel>().unwrap().0, 1 << 7);
        assert!("unknown".parse::<StateSel>().is_err());
    }

    #[test]
    fn user_filter_ports_and_addresses() {
        let s = sock("10.0.0.1", 40000, "10.0.0.2", 443);
        let f = UserFilter {
            port: Some(443),
            ..Default::default()
        };
        assert!(f.matches(&s));
        let f = UserFilter {
            sport: Some(443),
            ..Default::default()
        };
        assert!(!f.matches(&s));
        let f = UserFilter {
            dport: Some(443),
            dst: Some("10.0.0.0/24".parse().unwrap()),
            src: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        assert!(f.matches(&s));
        let f = UserFilter {
            src: Some("10.0.0.2".parse().unwrap()),
            ..Default::default()
        };
        assert!(!f.matches(&s));
        assert!(UserFilter::default().matches(&s));
    }
}
