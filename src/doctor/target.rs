//! The `HOST:PORT` a probe goes to: parsed without system calls (so a typo is a usage error
//! before anything happens), resolved later, inside the chosen namespace.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!(
                "'{s}' is not HOST:PORT ({why}); e.g. 10.0.0.5:5432, [::1]:443, db.internal:5432"
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| bad("unclosed ["))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address in brackets"))?;
            inner
        } else {
            if host.contains(':') {
                return Err(bad("put IPv6 addresses in brackets"));
            }
            host
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(bad("the host has characters no host name has"));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("the port must be 1..=65535")),
        };
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }
}

impl Target {
    /// The address to probe: the literal IP, or the first answer of the resolver.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        match (self.host.as_str(), self.port).to_socket_addrs() {
            Ok(mut it) => it
                .next()
                .ok_or_else(|| format!("{} resolves to no address", self.host)),
            Err(e) => Err(format!("cannot resolve {}: {e}", self.host)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "127.0.0.1:80".parse(),
            Ok(Target {
                host: "127.0.0.1".into(),
                port: 80
            })
        );
        let v6: Target = "[::1]:443".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!("db.internal:5432".parse::<Target>().unwrap().port, 5432);
        for bad in [
            "127.0.0.1",
            "127.0.0.1:",
            ":80",
            "host:0",
            "host:65536",
            "host:http",
            "::1:80",
            "[::1:80",
            "[nothost]:80",
            "a b:80",
            "",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_addresses_resolve_without_dns() {
        let t: Target = "[::1]:8080".parse().unwrap();
        assert_eq!(t.resolve().unwrap(), "[::1]:8080".parse().unwrap());
    }
}
