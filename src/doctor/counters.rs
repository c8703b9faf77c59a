//! The kernel's TCP and UDP counters from `/proc/thread-self/net/netstat` (TcpExt:
//! ListenOverflows, TCPAbortOn…), `/proc/thread-self/net/snmp` (Tcp: OutRsts…, Udp:
//! RcvbufErrors…) and `/proc/thread-self/net/snmp6` (Udp6RcvbufErrors…).
//!
//! They count since the namespace was created, so doctor reads them twice an interval apart
//! and reports the difference: the finding is about now. `thread-self`, not `self`: after
//! `setns` only this thread is in the target namespace, and `/proc/self/net` would describe the
//! main thread's.

use std::collections::BTreeMap;
use std::io;

use crate::host::Host;

/// Counters by `Section.Name`, e.g. `TcpExt.ListenOverflows`, `Tcp.OutRsts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// `later - self` per counter; a counter that went backwards (wrapped) reads 0.
    pub fn delta(&self, later: &Counters) -> Counters {
        Counters(
            later
                .0
                .iter()
                .map(|(k, &v)| (k.clone(), v.saturating_sub(self.get(k))))
                .collect(),
        )
    }
}

/// Reads the files in the calling thread's network namespace. snmp6 is missing when IPv6 is
/// disabled: then there are no IPv6 counters, which is not an error.
pub fn read_counters(host: &dyn Host) -> io::Result<Counters> {
    let read = |name: &str| {
        host.read_file(&format!("{}/thread-self/net/{name}", crate::host::PROC))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut c = parse_counters(&read("netstat")?);
    c.0.extend(parse_counters(&read("snmp")?).0);
    if let Ok(text) = read("snmp6") {
        c.0.extend(parse_snmp6(&text).0);
    }
    Ok(c)
}

/// Parses snmp6's one-counter-per-line format (`Udp6RcvbufErrors   12`), keeping the UDP
/// counters as `Udp6.RcvbufErrors`.
pub fn parse_snmp6(text: &str) -> Counters {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(name), Some(val)) = (f.next(), f.next()) else {
            continue;
        };
        if let (Some(rest), Ok(v)) = (name.strip_prefix("Udp6"), val.parse::<u64>()) {
            out.insert(format!("Udp6.{rest}"), v);
        }
    }
    Counters(out)
}

/// Parses the two-line format both files use: a header line `Sect: A B C` followed by a value
/// line `Sect: 1 2 3`. Fields that are not numbers (or negative, like Tcp.MaxConn = -1) are
/// skipped; a header without its value line is ignored.
pub fn parse_counters(text: &str) -> Counters {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(header) = lines.next() {
        let Some(values) = lines.next() else { break };
        let (Some((hs, names)), Some((vs, nums))) =
            (header.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if hs != vs {
            continue;
        }
        for (name, val) in names.split_whitespace().zip(nums.split_whitespace()) {
            if let Ok(v) = val.parse::<u64>() {
                out.insert(format!("{hs}.{name}"), v);
            }
        }
    }
    Counters(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnData\n\
                           TcpExt: 0 57 60 3\n\
                           IpExt: InNoRoutes InOctets\n\
                           IpExt: 0 123456\n";
    const SNMP: &str = "Tcp: RtoAlgorithm MaxConn ActiveOpens OutRsts EstabResets\n\
                        Tcp: 1 -1 10 4 2\n";

    #[test]
    fn snmp6_keeps_the_udp6_counters() {
        let c = parse_snmp6(
            "Ip6InReceives                   \t4\nUdp6InDatagrams   \t9\n\
             Udp6RcvbufErrors                \t17\nUdpLite6RcvbufErrors\t3\nbroken\n",
        );
        assert_eq!(c.get("Udp6.RcvbufErrors"), 17);
        assert_eq!(c.get("Udp6.InDatagrams"), 9);
        assert_eq!(c.0.len(), 2, "{c:?}");
    }

    #[test]
    fn parses_sections_and_skips_negative_fields() {
        let c = parse_counters(NETSTAT);
        assert_eq!(c.get("TcpExt.ListenOverflows"), 57);
        assert_eq!(c.get("TcpExt.ListenDrops"), 60);
        assert_eq!(c.get("IpExt.InOctets"), 123456);
        let s = parse_counters(SNMP);
        assert_eq!(s.get("Tcp.OutRsts"), 4);
        assert!(!s.0.contains_key("Tcp.MaxConn"));
        assert_eq!(s.get("Tcp.Missing"), 0);
    }

    #[test]
    fn delta_is_per_counter_and_never_negative() {
        let a = parse_counters("TcpExt: ListenOverflows ListenDrops\nTcpExt: 10 20\n");
        let b = parse_counters("TcpExt: ListenOverflows ListenDrops\nTcpExt: 67 5\n");
        let d = a.delta(&b);
        assert_eq!(d.get("TcpExt.ListenOverflows"), 57);
        assert_eq!(d.get("TcpExt.ListenDrops"), 0);
    }

    #[test]
    fn garbage_gives_nothing() {
        assert!(parse_counters("").0.is_empty());
        assert!(parse_counters("no colon here\nnor here\n").0.is_empty());
        assert!(parse_counters("A: x\nB: 1\n").0.is_empty());
    }

    #[test]
    fn reads_the_live_files() {
        let c = read_counters(&crate::host::LiveHost).unwrap();
        assert!(c.0.contains_key("TcpExt.ListenOverflows"));
        assert!(c.0.contains_key("Tcp.OutRsts"));
    }
}
