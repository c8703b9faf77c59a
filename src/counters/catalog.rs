//! The kernel counters behind the lesson's symptoms, most telling first: each with what it
//! counts, in one line, and the `explain` id (a row of `doctor::table::TABLE`) it points to.
//! Names are nstat's: the file's section and field joined (`TcpExt` + `ListenOverflows`).

/// One known counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub name: &'static str,
    pub meaning: &'static str,
    /// A symptom id `sockscope explain` takes.
    pub explain: Option<&'static str>,
}

const fn k(name: &'static str, explain: &'static str, meaning: &'static str) -> Known {
    Known {
        name,
        meaning,
        explain: Some(explain),
    }
}

const fn plain(name: &'static str, meaning: &'static str) -> Known {
    Known {
        name,
        meaning,
        explain: None,
    }
}

pub const CATALOG: &[Known] = &[
    k(
        "TcpExtListenOverflows",
        "accept-queue",
        "handshakes completed while a listener's accept queue was full: connection dropped",
    ),
    k(
        "TcpExtListenDrops",
        "accept-queue",
        "SYNs and completed handshakes a listener dropped (overflows included)",
    ),
    k(
        "TcpExtTCPReqQFullDrop",
        "accept-queue",
        "SYNs dropped: SYN queue full and syncookies off",
    ),
    k(
        "TcpExtTCPReqQFullDoCookies",
        "accept-queue",
        "SYN queue full: answered with a syncookie instead",
    ),
    k(
        "TcpExtSyncookiesSent",
        "accept-queue",
        "syncookies sent (SYN queue overflowed)",
    ),
    k(
        "TcpOutRsts",
        "refused",
        "RSTs sent: connects to a port nothing listens on, aborted connections",
    ),
    k(
        "TcpAttemptFails",
        "refused",
        "connects that failed before established (RST in answer to the SYN: refused)",
    ),
    k(
        "UdpNoPorts",
        "refused",
        "datagrams to a port nothing is bound to (answered with ICMP port unreachable)",
    ),
    k(
        "Udp6NoPorts",
        "refused",
        "IPv6 datagrams to a port nothing is bound to (ICMPv6 port unreachable)",
    ),
    k(
        "TcpEstabResets",
        "reset",
        "established connections ended by a RST",
    ),
    k(
        "TcpExtTCPAbortOnData",
        "reset",
        "connections reset because data arrived after the application closed",
    ),
    k(
        "TcpExtTCPAbortOnClose",
        "reset",
        "closed with unread data: RST sent instead of FIN",
    ),
    k(
        "TcpExtTCPAbortOnMemory",
        "reset",
        "connections reset for lack of memory (tcp_mem, or too many orphans)",
    ),
    k(
        "TcpExtTCPAbortOnTimeout",
        "timed-out",
        "connections given up after every retransmission timed out",
    ),
    k(
        "TcpExtTCPAbortOnLinger",
        "reset",
        "closed with SO_LINGER: RST sent when the linger time ran out",
    ),
    k(
        "TcpExtTCPAbortFailed",
        "reset",
        "RSTs that could not be sent (no memory)",
    ),
    k(
        "TcpExtTCPSynRetrans",
        "timed-out",
        "SYNs and SYN-ACKs sent again: a handshake got no answer in time",
    ),
    k(
        "TcpExtTCPTimeouts",
        "timed-out",
        "retransmission timer fired (no ACK within the RTO)",
    ),
    k("TcpRetransSegs", "timed-out", "segments retransmitted"),
    k(
        "UdpRcvbufErrors",
        "udp-drops",
        "datagrams dropped: the socket's receive buffer was full (reader too slow)",
    ),
    k(
        "Udp6RcvbufErrors",
        "udp-drops",
        "IPv6 datagrams dropped: the socket's receive buffer was full",
    ),
    k(
        "UdpInErrors",
        "udp-drops",
        "datagrams not delivered (receive buffer full, bad checksum…)",
    ),
    k("Udp6InErrors", "udp-drops", "IPv6 datagrams not delivered"),
    k(
        "UdpMemErrors",
        "udp-drops",
        "datagrams dropped: udp_mem exhausted",
    ),
    k(
        "Udp6MemErrors",
        "udp-drops",
        "IPv6 datagrams dropped: udp_mem exhausted",
    ),
    k(
        "UdpSndbufErrors",
        "udp-drops",
        "sends failed: the socket's send buffer was full",
    ),
    k(
        "Udp6SndbufErrors",
        "udp-drops",
        "IPv6 sends failed: the send buffer was full",
    ),
    k(
        "TcpExtTCPBacklogDrop",
        "recv-q",
        "segments dropped: the socket's backlog was full while the application held it",
    ),
    k(
        "TcpExtTCPRcvQDrop",
        "recv-q",
        "segments dropped: the receive queue was over the socket's memory (reader too slow)",
    ),
    k(
        "TcpExtPruneCalled",
        "recv-q",
        "receive queues pruned for memory (the application reads too slowly)",
    ),
    k(
        "TcpExtRcvPruned",
        "recv-q",
        "segments thrown away by pruning",
    ),
    k(
        "TcpExtTCPZeroWindowDrop",
        "recv-q",
        "segments dropped: receive window was zero",
    ),
    k(
        "TcpExtTCPTimeWaitOverflow",
        "time-wait",
        "TIME_WAIT skipped: net.ipv4.tcp_max_tw_buckets reached",
    ),
    k("TcpExtTW", "time-wait", "sockets that finished TIME_WAIT"),
    k(
        "TcpExtTWRecycled",
        "time-wait",
        "TIME_WAIT sockets reused for a new connect",
    ),
    k(
        "IpExtInNoRoutes",
        "unreachable",
        "packets received with no route to forward them",
    ),
    k(
        "IpOutNoRoutes",
        "unreachable",
        "packets not sent: no route to the destination",
    ),
    k(
        "Ip6OutNoRoutes",
        "unreachable",
        "IPv6 packets not sent: no route",
    ),
    plain(
        "TcpExtTCPMemoryPressures",
        "times TCP entered memory pressure (tcp_mem)",
    ),
    plain(
        "TcpInErrs",
        "segments received with errors (bad checksum, bad header)",
    ),
    plain("TcpInCsumErrors", "segments received with a bad checksum"),
    plain("TcpActiveOpens", "connects started (SYN sent)"),
    plain("TcpPassiveOpens", "connections accepted from a SYN"),
    plain("TcpInSegs", "segments received"),
    plain("TcpOutSegs", "segments sent"),
    plain("UdpInDatagrams", "datagrams delivered to sockets"),
    plain("UdpOutDatagrams", "datagrams sent"),
    plain("Udp6InDatagrams", "IPv6 datagrams delivered to sockets"),
    plain("Udp6OutDatagrams", "IPv6 datagrams sent"),
];

/// Fields of the counter files that are values, not counters: nstat leaves them out too.
pub const GAUGES: &[&str] = &[
    "TcpRtoAlgorithm",
    "TcpRtoMin",
    "TcpRtoMax",
    "TcpMaxConn",
    "TcpCurrEstab",
    "IpForwarding",
    "IpDefaultTTL",
];

pub fn known(name: &str) -> Option<(usize, &'static Known)> {
    CATALOG.iter().enumerate().find(|(_, k)| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_explain_id_is_a_row_of_the_table() {
        for k in CATALOG {
            if let Some(id) = k.explain {
                assert!(
                    crate::doctor::table::TABLE.iter().any(|r| r.id == id),
                    "{}: {id}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, k) in CATALOG.iter().enumerate() {
            assert_eq!(known(k.name).unwrap().0, i, "{} twice", k.name);
        }
    }
}
