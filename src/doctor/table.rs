//! The symptom → cause → fix table, as data. One entry per symptom; adding a row is adding an
//! entry here (and, if the host can show it, a check in `checks.rs`). `explain` prints these
//! rows; `doctor` findings quote their cause and fix.
//!
//! Written from the lesson's table (connection refused, timed out, reset by peer, too many open
//! files, large TIME_WAIT, high Recv-Q on a listener and on an established socket), split where
//! the kernel has two limits (EMFILE per process, ENFILE per system), plus the failures the lesson's syscall walk-through
//! names (EADDRINUSE at bind) and the probe's "unreachable".

use serde::Serialize;

use super::errnos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The stable id used in JSON findings and accepted by `explain`.
    pub id: &'static str,
    /// What the user sees, in words.
    pub title: &'static str,
    /// Error names that lead here (`explain ECONNREFUSED`).
    pub errnos: &'static [&'static str],
    /// Other names `explain` accepts.
    #[serde(skip)]
    pub aliases: &'static [&'static str],
    /// What happened at the syscall / packet level.
    pub meaning: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
    /// Commands that confirm it by hand.
    pub confirm: &'static [&'static str],
}

pub const TABLE: &[Row] = &[
    Row {
        id: "refused",
        title: "Connection refused",
        errnos: &["ECONNREFUSED"],
        aliases: &["connection refused", "rst"],
        meaning: "connect() got a RST in answer to its SYN: the host is up, but no socket \
                  listens on that address and port",
        cause: "the service is not running (never started, crashed, still starting), listens on \
                another port, or is bound to another address (127.0.0.1 instead of 0.0.0.0)",
        fix: "start or restart the service and check its logs for a crash; compare the port and \
              bind address in its config with what clients use",
        confirm: &["sockscope listeners --port PORT", "ss -lntp"],
    },
    Row {
        id: "timed-out",
        title: "Connection timed out",
        errnos: &["ETIMEDOUT"],
        aliases: &["connection timed out", "timeout"],
        meaning: "connect() sent SYN (and retried it) but no SYN-ACK ever came back",
        cause: "a firewall or security group drops the SYN without answering, the address is \
                wrong, or the host is down and nothing on the path says so",
        fix: "find where packets stop (traceroute / mtr to the host, tcpdump on both ends); \
              check firewall rules (nft list ruleset, iptables -S) and cloud security groups \
              for the port",
        confirm: &[
            "sockscope doctor HOST:PORT --capture",
            "tcpdump -ni any 'tcp port PORT'",
        ],
    },
    Row {
        id: "reset",
        title: "Connection reset by peer",
        errnos: &["ECONNRESET", "EPIPE"],
        aliases: &["connection reset", "reset by peer", "broken pipe"],
        meaning: "an established connection got a RST: the other end (or a box in between) \
                  threw the connection away instead of closing it with FIN",
        cause: "the server crashed or was restarted mid-request, closed with SO_LINGER 0 or with \
                unread data, or a load balancer / NAT dropped an idle connection and answers \
                later traffic with RST",
        fix: "read the server's logs around the time of the reset; keep client keep-alive idle \
              timeouts below the load balancer's and the server's; retry idempotent requests",
        confirm: &[
            "nstat -az TcpExtTCPAbortOnData TcpExtTCPAbortOnTimeout TcpEstabResets",
            "tcpdump -ni any 'tcp[tcpflags] & tcp-rst != 0'",
        ],
    },
    Row {
        id: "emfile",
        title: "Too many open files (this process)",
        errnos: &["EMFILE"],
        aliases: &["too many open files", "fd limit", "ulimit", "nofile"],
        meaning: "socket(), accept() or open() failed because the process holds as many fds as \
                  its RLIMIT_NOFILE soft limit allows",
        cause: "a leak (sockets or files opened and never closed), a limit too low for the \
                load, or a burst of connections",
        fix: "find the leak (which kind of fd keeps growing) and close what is opened; raise the \
              limit where the service starts (systemd LimitNOFILE=, ulimit -n, \
              /etc/security/limits.conf); pool connections instead of opening one per request",
        confirm: &[
            "sockscope fds --pid PID",
            "ls /proc/PID/fd | wc -l; grep 'open files' /proc/PID/limits",
        ],
    },
    Row {
        id: "enfile",
        title: "Too many open files in system",
        errnos: &["ENFILE"],
        aliases: &["file table overflow", "file-max", "file-nr"],
        meaning: "the kernel's system-wide file table is full: fs.file-nr reached fs.file-max, \
                  so every process's next open fails",
        cause: "many processes together (or one leaking process with a huge limit) hold more \
                files than fs.file-max allows",
        fix: "find the processes holding the most fds and fix the leak; raise fs.file-max \
              (sysctl -w fs.file-max=N, and persist it in /etc/sysctl.d/)",
        confirm: &["cat /proc/sys/fs/file-nr", "sockscope fds --top 10"],
    },
    Row {
        id: "time-wait",
        title: "Many TIME_WAIT sockets / ephemeral ports running out",
        errnos: &["EADDRNOTAVAIL"],
        aliases: &[
            "port exhaustion",
            "ephemeral ports",
            "cannot assign requested address",
        ],
        meaning: "the side that closes first keeps each connection in TIME_WAIT for 2×MSL \
                  (60 s on Linux); while it waits, its local port cannot be reused towards the \
                  same peer, and connect() fails with EADDRNOTAVAIL once the ephemeral range \
                  towards one peer is used up",
        cause: "short-lived connections at a high rate with this host closing first: no \
                keep-alive or pooling, or a server that actively closes each connection",
        fix: "reuse connections (keep-alive, a pool); enable net.ipv4.tcp_tw_reuse=1 for \
              outgoing connections; widen net.ipv4.ip_local_port_range; SO_REUSEADDR on \
              servers so restarts can bind while old connections wait",
        confirm: &["sockscope states", "ss -tan state time-wait | wc -l"],
    },
    Row {
        id: "accept-queue",
        title: "Listener backlog full (high Recv-Q on a listening socket)",
        errnos: &[],
        aliases: &[
            "backlog",
            "listen overflow",
            "listenoverflows",
            "listen drops",
            "syn backlog",
        ],
        meaning: "completed connections wait in the listener's accept queue until the \
                  application calls accept(); when the queue is past its backlog the kernel \
                  drops new handshakes (ListenOverflows / ListenDrops count them) and clients \
                  see slow connects or timeouts",
        cause: "the application calls accept() too slowly (busy or blocked accept loop, too few \
                workers), or the listen() backlog is too small for bursts",
        fix: "accept faster: more workers or threads, no blocking work in the accept loop; \
              raise the backlog passed to listen() and net.core.somaxconn, which caps it",
        confirm: &[
            "sockscope listeners",
            "ss -lnt",
            "nstat -az TcpExtListenOverflows TcpExtListenDrops",
        ],
    },
    Row {
        id: "recv-q",
        title: "High Recv-Q: data or connections waiting for the application",
        errnos: &[],
        aliases: &[
            "receive queue",
            "stuck reader",
            "unread data",
            "high recv-q",
        ],
        meaning: "Recv-Q is what the kernel holds for the application that it has not taken \
                  yet, and it means two things. On an established socket: bytes received and \
                  not yet read; as they pile up the receive window shrinks, and at zero the \
                  sender stalls (its Send-Q grows and it probes a zero window). On a listening \
                  socket: connections completed and waiting for accept() (see accept-queue)",
        cause: "established: the application does not read that connection (a stuck or busy \
                thread, a deadlock, a reader blocked on a lock or a slow downstream, a \
                consumer behind a busy event loop); listening: accept() is too slow or the \
                backlog too small",
        fix: "established: find what the owning thread waits on (gdb -p PID, py-spy dump, \
              jstack, cat /proc/PID/task/*/stack) and keep the read loop free of blocking \
              work; listening: accept faster and raise the backlog (see accept-queue)",
        confirm: &[
            "sockscope doctor (the recv-q finding names the process)",
            "sockscope sockets --state established -p",
            "ss -tnp state established",
        ],
    },
    Row {
        id: "unreachable",
        title: "No route to host / network unreachable",
        errnos: &["EHOSTUNREACH", "ENETUNREACH"],
        aliases: &["no route to host", "network is unreachable"],
        meaning: "connect() failed before or during the handshake because there is no route, or \
                  a router (or a REJECT firewall rule) answered with ICMP unreachable",
        cause: "no route to that network, a wrong address, the host is down on a local network \
                (no ARP answer), or a firewall rejects with ICMP",
        fix: "check routes (ip route get ADDR) and the address; on the local network check the \
              host is up; check for REJECT rules in the firewall",
        confirm: &["ip route get ADDR", "traceroute -T -p PORT HOST"],
    },
    Row {
        id: "close-wait",
        title: "Sockets piling up in CLOSE_WAIT",
        errnos: &[],
        aliases: &["close_wait", "closewait", "socket leak"],
        meaning: "the peer closed its side (its FIN arrived) but this application never called \
                  close(): each such socket keeps an fd and its buffers until the process \
                  closes it or exits, so a steady pile-up ends in EMFILE",
        cause: "a code path that abandons a connection without closing it (an error or timeout \
                branch, a missing finally/defer), or a pool that never notices the server \
                closed its idle connections",
        fix: "find the owner and fix the missing close() on that path; validate pooled \
              connections before use and evict idle ones before the server's idle timeout; a \
              restart only resets the pile",
        confirm: &[
            "sockscope sockets --state close-wait -p",
            "ss -tanp state close-wait",
        ],
    },
    Row {
        id: "udp-drops",
        title: "UDP datagrams dropped: receive buffer full",
        errnos: &[],
        aliases: &[
            "rcvbuferrors",
            "udp drops",
            "udp receive buffer errors",
            "receive buffer errors",
        ],
        meaning: "a datagram arrived while its UDP socket's receive buffer (SO_RCVBUF) was full, \
                  so the kernel discarded it; UDP does not retransmit and the sender is not \
                  told, so answers, log lines or metrics just go missing",
        cause: "the application reads too slowly for the bursts it gets (one reader, blocking \
                work in the receive loop), or its buffer is small: net.core.rmem_default is \
                about 208 KiB",
        fix: "read faster (more readers, SO_REUSEPORT across workers, no blocking work in the \
              loop); raise SO_RCVBUF in the application and net.core.rmem_max, which caps it \
              (or net.core.rmem_default for programs that do not set it)",
        confirm: &[
            "nstat -az UdpRcvbufErrors Udp6RcvbufErrors",
            "sockscope sockets -u -p (Recv-Q: bytes waiting)",
        ],
    },
    Row {
        id: "addr-in-use",
        title: "Address already in use",
        errnos: &["EADDRINUSE"],
        aliases: &["address already in use", "addr in use", "bind failed"],
        meaning: "bind() failed: another socket already holds that local address and port",
        cause: "another process (or an old instance still shutting down) listens on the port, \
                or the previous instance's connections still hold it and the new socket was \
                created without SO_REUSEADDR",
        fix: "find the holder and stop it or use another port; set SO_REUSEADDR before bind() \
              so a restart does not wait for old connections",
        confirm: &[
            "sockscope listeners --port PORT",
            "ss -ltnp 'sport = :PORT'",
        ],
    },
];

/// Every symptom doctor can name: one per row of [`TABLE`], in the same order. JSON writes it
/// as the row's kebab-case id (`accept-queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Symptom {
    Refused,
    TimedOut,
    Reset,
    Emfile,
    Enfile,
    TimeWait,
    AcceptQueue,
    RecvQ,
    Unreachable,
    CloseWait,
    UdpDrops,
    AddrInUse,
}

impl Symptom {
    pub const ALL: [Symptom; 12] = [
        Symptom::Refused,
        Symptom::TimedOut,
        Symptom::Reset,
        Symptom::Emfile,
        Symptom::Enfile,
        Symptom::TimeWait,
        Symptom::AcceptQueue,
        Symptom::RecvQ,
        Symptom::Unreachable,
        Symptom::CloseWait,
        Symptom::UdpDrops,
        Symptom::AddrInUse,
    ];

    /// The symptom's row (`symptom_order_matches_the_table` keeps the two lists in step).
    pub fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }

    /// The stable id (`accept-queue`).
    pub fn id(self) -> &'static str {
        self.row().id
    }
}

/// The row with this id, for tests that hold an id as text.
#[cfg(test)]
pub fn row(id: &str) -> &'static Row {
    TABLE
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no doctor table row {id}"))
}

/// Finds the row for what the user typed: an id, an errno name (with or without the `E`), an
/// errno number, the errno's message as this system's C library prints it, or an alias; case
/// and `_`/`-`/space differences do not matter. A pasted line that holds a known message or
/// errno name ("connect: Connection refused", "[Errno 98] Address already in use") finds it.
pub fn lookup(name: &str) -> Option<&'static Row> {
    let key = normalize(name);
    if key.is_empty() {
        return None;
    }
    let exact = TABLE.iter().find(|r| {
        normalize(r.id) == key
            || r.errnos.iter().any(|e| {
                let e = normalize(e);
                e == key || e.strip_prefix('e') == Some(key.as_str())
            })
            || r.aliases.iter().any(|a| normalize(a) == key)
    });
    if exact.is_some() {
        return exact;
    }
    if let Ok(n) = name.trim().parse::<i32>() {
        return errnos().find(|&(_, _, num, _)| num == n).map(|(r, ..)| r);
    }
    if let Some((r, ..)) = errnos().find(|(_, _, _, msg)| normalize(msg) == key) {
        return Some(r);
    }
    // A pasted line: the longest message it contains ("Too many open files in system" is not
    // "Too many open files"), else an errno name standing as a word.
    let lower = name.to_lowercase();
    let mut by_len: Vec<_> = errnos().collect();
    by_len.sort_by_key(|(_, _, _, msg)| std::cmp::Reverse(msg.len()));
    if let Some((r, ..)) = by_len
        .iter()
        .find(|(_, _, _, msg)| lower.contains(&msg.to_lowercase()))
    {
        return Some(r);
    }
    let words: Vec<&str> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    by_len
        .into_iter()
        .find(|(_, e, _, _)| words.iter().any(|w| w.eq_ignore_ascii_case(e)))
        .map(|(r, ..)| r)
}

/// Every errno of the table: (row, name, number, message), numbers and messages from libc.
fn errnos() -> impl Iterator<Item = (&'static Row, &'static str, i32, String)> {
    TABLE.iter().flat_map(|r| {
        r.errnos.iter().filter_map(move |&e| {
            let n = errnos::number(e)?;
            Some((r, e, n, errnos::message(n)))
        })
    })
}

/// The errnos the table covers, as (name, number on this system).
pub fn covered_errnos() -> Vec<(&'static str, i32)> {
    errnos().map(|(_, e, n, _)| (e, n)).collect()
}

/// Every name `explain` knows: ids, errno names, errno messages, aliases.
pub fn known_names() -> Vec<String> {
    let mut v: Vec<String> = TABLE.iter().map(|r| r.id.to_string()).collect();
    v.extend(errnos().map(|(_, e, ..)| e.to_string()));
    v.extend(errnos().map(|(_, _, _, m)| m));
    v.extend(
        TABLE
            .iter()
            .flat_map(|r| r.aliases.iter().map(|a| a.to_string())),
    );
    v
}

/// Up to `n` known names closest to what the user typed (edit distance on the normalised
/// forms), best first: what `explain` suggests for a name it does not know.
pub fn closest(name: &str, n: usize) -> Vec<String> {
    let key = normalize(name);
    let mut scored: Vec<(f64, String)> = known_names()
        .into_iter()
        .map(|k| {
            let norm = normalize(&k);
            // A missing `E` is not a typo worth a point.
            let plain = norm.strip_prefix('e').filter(|_| k.starts_with('E'));
            let score = strsim::normalized_damerau_levenshtein(&key, &norm)
                .max(plain.map_or(0.0, |p| strsim::normalized_damerau_levenshtein(&key, p)));
            (score, k)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, k)| k).collect()
}

fn normalize(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symptom_of_the_issue_has_a_row() {
        for id in [
            "refused",
            "timed-out",
            "reset",
            "emfile",
            "enfile",
            "time-wait",
            "accept-queue",
            "recv-q",
        ] {
            assert_eq!(row(id).id, id);
        }
    }

    #[test]
    fn symptom_order_matches_the_table() {
        assert_eq!(Symptom::ALL.len(), TABLE.len());
        for (i, s) in Symptom::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, TABLE[i].id, "{s:?}");
        }
    }

    #[test]
    fn ids_and_names_are_unique() {
        let mut seen = std::collections::HashMap::new();
        for r in TABLE {
            for n in std::iter::once(r.id)
                .chain(r.errnos.iter().copied())
                .chain(r.aliases.iter().copied())
            {
                let owner = seen.entry(normalize(n)).or_insert(r.id);
                assert_eq!(*owner, r.id, "{n} is in two rows");
            }
        }
    }

    /// What people paste, each with the row it must find (the issue's list).
    #[test]
    fn lookup_takes_what_people_paste() {
        for (text, id) in [
            ("Connection reset by peer", "reset"),
            ("Too many open files in system", "enfile"),
            ("Too many open files", "emfile"),
            ("Connection timed out", "timed-out"),
            ("No route to host", "unreachable"),
            ("Network is unreachable", "unreachable"),
            ("Address already in use", "addr-in-use"),
            ("Cannot assign requested address", "time-wait"),
            ("Broken pipe", "reset"),
            ("Connection refused", "refused"),
            ("CONNREFUSED", "refused"),
            ("connreset", "reset"),
            ("MFILE", "emfile"),
            ("addrinuse", "addr-in-use"),
            ("connect: Connection refused", "refused"),
            ("OSError: [Errno 98] Address already in use", "addr-in-use"),
            (
                "accept4() failed (24: Too many open files in system)",
                "enfile",
            ),
            ("write failed: EPIPE", "reset"),
        ] {
            assert_eq!(lookup(text).map(|r| r.id), Some(id), "{text}");
        }
    }

    /// Every errno of the table by its number and its message, as this libc has them.
    #[test]
    fn every_errno_by_number_and_message() {
        for r in TABLE {
            for e in r.errnos {
                let n = errnos::number(e).unwrap_or_else(|| panic!("no number for {e}"));
                assert_eq!(lookup(&n.to_string()).unwrap().id, r.id, "{e} = {n}");
                let m = errnos::message(n);
                assert_eq!(lookup(&m).unwrap().id, r.id, "{e}: {m}");
                assert_eq!(lookup(&m.to_uppercase()).unwrap().id, r.id, "{e}: {m}");
            }
        }
        assert_eq!(
            lookup("111").map(|r| r.id),
            (libc::ECONNREFUSED == 111).then_some("refused")
        );
        // A number that is an errno but not one the table covers (ENOENT), and nonsense.
        assert!(lookup(&libc::ENOENT.to_string()).is_none());
        assert!(lookup("-1").is_none());
        assert!(lookup("99999999999").is_none());
    }

    #[test]
    fn unknown_names_get_the_closest_ones() {
        assert_eq!(closest("ECONNREFUSD", 3)[0], "ECONNREFUSED");
        assert_eq!(closest("time-wiat", 3)[0], "time-wait");
        assert_eq!(closest("CONNRESTE", 1), ["ECONNRESET"]);
        assert_eq!(closest("conection refused", 1), ["Connection refused"]);
        assert_eq!(closest("x", 3).len(), 3);
    }

    #[test]
    fn lookup_accepts_errnos_ids_and_aliases() {
        assert_eq!(lookup("ECONNREFUSED").unwrap().id, "refused");
        assert_eq!(lookup("econnrefused").unwrap().id, "refused");
        assert_eq!(lookup("ETIMEDOUT").unwrap().id, "timed-out");
        assert_eq!(lookup("ECONNRESET").unwrap().id, "reset");
        assert_eq!(lookup("EMFILE").unwrap().id, "emfile");
        assert_eq!(lookup("ENFILE").unwrap().id, "enfile");
        assert_eq!(lookup("EADDRINUSE").unwrap().id, "addr-in-use");
        assert_eq!(lookup("EADDRNOTAVAIL").unwrap().id, "time-wait");
        assert_eq!(lookup("time_wait").unwrap().id, "time-wait");
        assert_eq!(lookup("Recv-Q").unwrap().id, "recv-q");
        assert_eq!(lookup("backlog").unwrap().id, "accept-queue");
        assert_eq!(lookup("Too many open files").unwrap().id, "emfile");
        assert!(lookup("EWHATEVER").is_none());
        assert!(lookup("").is_none());
        assert!(known_names().iter().any(|n| n == "ECONNRESET"));
    }
}
