//! The kernel's socket totals: `/proc/thread-self/net/sockstat` and `sockstat6` (what `ss -s`
//! reads), `Tcp: CurrEstab` from `snmp`, and the host-wide limits they are measured against.
//!
//! `thread-self`: after `setns` only this thread is in the target namespace. The kernel keeps
//! some of these per namespace (inuse, tw, FRAG, "sockets: used", CurrEstab) and some for the
//! whole host (TCP alloc and orphan, the memory pages): the model says which.

use std::collections::BTreeMap;
use std::io;

use crate::host::Host;

/// `Section.key` → value, e.g. `TCP.inuse`, `TCP6.inuse`, `sockets.used`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sockstat(pub BTreeMap<String, u64>);

impl Sockstat {
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
}

/// Reads sockstat and (when IPv6 is enabled) sockstat6 in the calling thread's namespace.
pub fn read_sockstat(host: &dyn Host) -> io::Result<Sockstat> {
    let mut s = parse_sockstat(&crate::host::proc_text(host, "thread-self/net/sockstat")?);
    // Absent when IPv6 is disabled: then there are no IPv6 sockets, which is not an error.
    if let Ok(text) = crate::host::proc_text(host, "thread-self/net/sockstat6") {
        s.0.extend(parse_sockstat(&text).0);
    }
    Ok(s)
}

/// Parses lines of `Section: key value key value…` (`TCP: inuse 1 orphan 0 tw 0 alloc 7 mem
/// 349`). A value that is not a number is skipped, not fatal: a future kernel may add fields.
pub fn parse_sockstat(text: &str) -> Sockstat {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((section, rest)) = line.split_once(':') else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        for pair in words.chunks_exact(2) {
            if let Ok(v) = pair[1].parse::<u64>() {
                out.insert(format!("{}.{}", section.trim(), pair[0]), v);
            }
        }
    }
    Sockstat(out)
}

/// `Tcp: CurrEstab` (ESTABLISHED plus CLOSE-WAIT, per namespace), as `ss -s` prints it.
pub fn read_curr_estab(host: &dyn Host) -> io::Result<u64> {
    let text = crate::host::proc_text(host, "thread-self/net/snmp")?;
    Ok(crate::doctor::counters::parse_counters(&text).get("Tcp.CurrEstab"))
}

/// Host-wide limits read before entering a namespace: a private namespace does not show
/// `tcp_mem`, `udp_mem` or `tcp_max_orphans` (they are the host's), and the page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostLimits {
    pub tcp_mem: Option<[u64; 3]>,
    pub udp_mem: Option<[u64; 3]>,
    pub tcp_max_orphans: Option<u64>,
    pub page_size: u64,
}

pub fn read_host_limits(host: &dyn Host) -> HostLimits {
    let sys = |name: &str| crate::host::proc_text(host, &format!("sys/net/ipv4/{name}")).ok();
    HostLimits {
        tcp_mem: sys("tcp_mem").as_deref().and_then(parse_triple),
        udp_mem: sys("udp_mem").as_deref().and_then(parse_triple),
        tcp_max_orphans: sys("tcp_max_orphans").and_then(|s| s.trim().parse().ok()),
        page_size: page_size(),
    }
}

/// `min pressure max` in pages, as tcp_mem and udp_mem hold them.
pub fn parse_triple(s: &str) -> Option<[u64; 3]> {
    let v: Vec<u64> = s
        .split_whitespace()
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    <[u64; 3]>::try_from(v).ok()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Linux 6.x writes them (this machine's host namespace).
    const SOCKSTAT: &str = "sockets: used 18\n\
                            TCP: inuse 1 orphan 0 tw 2 alloc 7 mem 349\n\
                            UDP: inuse 3 mem 4\n\
                            UDPLITE: inuse 0\n\
                            RAW: inuse 1\n\
                            FRAG: inuse 0 memory 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 5\nUDP6: inuse 2\nUDPLITE6: inuse 0\nRAW6: inuse 0\n\
                             FRAG6: inuse 1 memory 1024\n";

    #[test]
    fn parses_both_files() {
        let mut s = parse_sockstat(SOCKSTAT);
        s.0.extend(parse_sockstat(SOCKSTAT6).0);
        assert_eq!(s.get("sockets.used"), 18);
        assert_eq!(s.get("TCP.alloc"), 7);
        assert_eq!(s.get("TCP.tw"), 2);
        assert_eq!(s.get("TCP.mem"), 349);
        assert_eq!(s.get("UDP.mem"), 4);
        assert_eq!(s.get("TCP6.inuse"), 5);
        assert_eq!(s.get("FRAG6.memory"), 1024);
        assert_eq!(s.get("SCTP.inuse"), 0);
    }

    #[test]
    fn garbage_is_skipped() {
        let s = parse_sockstat("no colon\nTCP: inuse x alloc 3 odd\n\n");
        assert_eq!(s.0.len(), 1);
        assert_eq!(s.get("TCP.alloc"), 3);
    }

    #[test]
    fn triples() {
        assert_eq!(
            parse_triple("92451\t123270\t184902\n"),
            Some([92451, 123270, 184902])
        );
        assert_eq!(parse_triple("1 2"), None);
        assert_eq!(parse_triple("1 2 x"), None);
    }

    #[test]
    fn reads_the_live_files() {
        let s = read_sockstat(&crate::host::LiveHost).unwrap();
        assert!(s.0.contains_key("TCP.inuse"), "{s:?}");
        assert!(read_host_limits(&crate::host::LiveHost).page_size >= 4096);
    }
}
