//! A socket filter expression (ss's filter language, parsed in `ssfilter.rs`): port and address
//! conditions joined by and/or/not. `bytecode.rs` compiles it for the kernel; `matches` here is
//! the same test in user space, with the kernel's semantics, for when the kernel cannot run it.

use std::net::IpAddr;

use super::filter::Cidr;
use super::model::Socket;

/// Which end of a socket a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `src`, `sport`.
    Local,
    /// `dst`, `dport`.
    Peer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// The kernel's host condition: an address in a network (`None`: any address) and a port
    /// (`None`: any port). `dst 10.0.0.0/8`, `dport = :443` and `src 10.0.0.1:80` are all one.
    Host {
        end: End,
        net: Option<Cidr>,
        port: Option<u16>,
    },
    /// `port >= N`.
    PortGe {
        end: End,
        port: u16,
    },
    /// `port <= N`.
    PortLe {
        end: End,
        port: u16,
    },
}

impl Expr {
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }

    pub fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(a: Expr) -> Expr {
        Expr::Not(Box::new(a))
    }

    /// `port = N` on one end.
    pub fn port(end: End, port: u16) -> Expr {
        Expr::Host {
            end,
            net: None,
            port: Some(port),
        }
    }

    /// Whether `s` passes, exactly as the kernel's `inet_diag_bc_run` decides it.
    pub fn matches(&self, s: &Socket) -> bool {
        let side = |end: End| match end {
            End::Local => &s.local,
            End::Peer => &s.peer,
        };
        match self {
            Expr::And(a, b) => a.matches(s) && b.matches(s),
            Expr::Or(a, b) => a.matches(s) || b.matches(s),
            Expr::Not(a) => !a.matches(s),
            Expr::Host { end, net, port } => {
                let e = side(*end);
                port.is_none_or(|p| p == e.port) && net.is_none_or(|n| in_net(&n, &e.addr))
            }
            Expr::PortGe { end, port } => side(*end).port >= *port,
            Expr::PortLe { end, port } => side(*end).port <= *port,
        }
    }
}

/// The kernel's address test: the families must agree, except that an IPv4 network also
/// holds the IPv4-mapped addresses of dual-stack sockets; a /0 network then holds every
/// address of its family. (ss's own user-space check also lets a /0 network hold the other
/// family, so ss shows nothing for `not dst ::/0`; the kernel's reading is the consistent one.)
fn in_net(n: &Cidr, addr: &IpAddr) -> bool {
    let bits = |net: u128, a: u128, width: u32| {
        let shift = width - u32::from(n.prefix);
        shift >= width || net >> shift == a >> shift
    };
    match (n.addr, addr) {
        (IpAddr::V4(net), IpAddr::V4(a)) => bits(u32::from(net).into(), u32::from(*a).into(), 32),
        // An IPv6 network compares raw bits: ::ffff:0:0/96 holds the mapped addresses.
        (IpAddr::V6(net), IpAddr::V6(a)) => bits(net.into(), (*a).into(), 128),
        (IpAddr::V4(net), IpAddr::V6(a)) => a
            .to_ipv4_mapped()
            .is_some_and(|a| bits(u32::from(net).into(), u32::from(a).into(), 32)),
        (IpAddr::V6(_), IpAddr::V4(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, lport: u16, peer: &str, pport: u16) -> Socket {
        Socket::test_tcp(local, lport, peer, pport)
    }

    fn net(s: &str) -> Option<Cidr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn host_conditions_follow_the_kernel() {
        let s = sock("10.0.0.1", 40000, "10.0.0.2", 443);
        let dst = |n: &str, port| Expr::Host {
            end: End::Peer,
            net: net(n),
            port,
        };
        assert!(dst("10.0.0.0/8", None).matches(&s));
        assert!(dst("10.0.0.0/8", Some(443)).matches(&s));
        assert!(!dst("10.0.0.0/8", Some(80)).matches(&s));
        assert!(!dst("10.0.0.1", None).matches(&s));
        // /0 holds every address of its family, and no other (the kernel checks the family
        // first); an IPv4 /0 also holds mapped addresses.
        assert!(!dst("::/0", None).matches(&s));
        assert!(dst("0.0.0.0/0", None).matches(&s));
        let mapped = sock("::ffff:10.0.0.1", 1, "::ffff:10.0.0.2", 2);
        assert!(dst("10.0.0.2", None).matches(&mapped));
        let v6 = sock("2001:db8::1", 1, "2001:db8::2", 2);
        assert!(!dst("10.0.0.0/8", None).matches(&v6));
        assert!(dst("2001:db8::/32", None).matches(&v6));
        assert!(dst("::/0", None).matches(&v6));
        assert!(!dst("0.0.0.0/0", None).matches(&v6));
        assert!(dst("0.0.0.0/0", None).matches(&mapped));
        assert!(dst("::ffff:0:0/96", None).matches(&mapped));
        assert!(!dst("::ffff:0:0/96", None).matches(&s));
    }

    #[test]
    fn ports_and_logic() {
        let s = sock("10.0.0.1", 40000, "10.0.0.2", 443);
        let ge = Expr::PortGe {
            end: End::Local,
            port: 40000,
        };
        let le = Expr::PortLe {
            end: End::Peer,
            port: 442,
        };
        assert!(ge.matches(&s));
        assert!(!le.matches(&s));
        assert!(Expr::or(ge.clone(), le.clone()).matches(&s));
        assert!(!Expr::and(ge.clone(), le.clone()).matches(&s));
        assert!(Expr::not(le).matches(&s));
        assert!(Expr::port(End::Peer, 443).matches(&s));
        assert!(!Expr::port(End::Local, 443).matches(&s));
    }
}
