//! Output of `doctor` (the findings in words: a table wrapped to the terminal, or JSON with the
//! words and the numbers; then what was checked), `explain` (a table row as
//! text) and `pool` (the sizing as a two-column table).

use std::io::{self, Write};

use comfy_table::{Cell, ContentArrangement};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::sockets::processes_cell;
pub use super::write_json;
use super::{container_label, endpoint, escape, new_table, percent, write_table};
use crate::doctor::model::{
    Addr, Checked, Elsewhere, Evidence, Finding, FwRuleRef, Moved, PacketTrace, ProbeData,
    ProbeOutcome, Report, Symptom,
};
use crate::doctor::pool::PoolPlan;
use crate::doctor::table::Row;
use crate::report::Output;
use crate::scope::Where;

/// A finding in words: the measurement, the likely cause and the fix, made concrete with the
/// numbers and names the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub evidence: String,
    pub cause: String,
    pub fix: String,
}

/// Milliseconds with the precision that matters: 0.038, 12.5, 1501.
pub fn short_ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn us_ms(us: u64) -> String {
    format!("{} ms", short_ms(us as f64 / 1e3))
}

/// An interval as findings say it: `2 s`, `0.5 s`.
fn secs(us: u64) -> String {
    let t = format!("{:.1}", us as f64 / 1e6);
    format!("{} s", t.trim_end_matches(".0"))
}

/// An interval as the checked list says it: `2.0 s`.
fn secs1(us: u64) -> String {
    format!("{:.1} s", us as f64 / 1e6)
}

/// "1 TCP listener", "2 TCP listeners".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An address as ss prints it; a dual-stack `[::]` is `*`.
pub fn addr(a: &Addr) -> String {
    if a.dual_stack && a.addr.is_unspecified() {
        let port = if a.port == 0 {
            "*".to_string()
        } else {
            a.port.to_string()
        };
        return format!("*:{port}");
    }
    endpoint(&a.endpoint())
}

/// `ListenOverflows +57, ListenDrops +57` (the counter names without their group).
fn moved_text(m: &Moved) -> String {
    m.counters
        .iter()
        .map(|c| {
            let short = c.name.split_once('.').map_or(c.name.as_str(), |x| x.1);
            format!("{short} +{}", c.delta)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn delta_of(m: &Moved, name: &str) -> u64 {
    m.counters
        .iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.delta)
}

fn owners_text(o: &[crate::sockets::model::ProcessRef]) -> Option<String> {
    (!o.is_empty()).then(|| processes_cell(o))
}

/// Where a finding lives, in words: `container podman/web 3f2a9c0d1e4b (netns net:[4026…])`,
/// `netns blue`, `the host namespace`.
pub fn place_text(w: &Where) -> String {
    let ns = escape(&w.netns.label());
    match (&w.container, w.netns.host) {
        (Some(c), _) => format!("container {} (netns {ns})", container_label(c)),
        (None, true) => "the host namespace".to_string(),
        (None, false) => format!("netns {ns}"),
    }
}

/// `inet t input handle 2 (tcp dport 9004 reject with tcp reset)`, for up to 3 rules.
fn rules_text(rules: &[FwRuleRef]) -> String {
    let mut shown: Vec<String> = rules
        .iter()
        .take(3)
        .map(|r| format!("{}: {}", r.location, r.text))
        .collect();
    if rules.len() > 3 {
        shown.push(format!("and {} more", rules.len() - 3));
    }
    shown.join("; ")
}

/// The words for a finding; `capture` is the probe's packet trace, added to the probe's
/// finding.
pub fn words(f: &Finding, capture: Option<&PacketTrace>) -> Words {
    let r = f.symptom.row();
    let mut w = Words {
        evidence: String::new(),
        cause: r.cause.to_string(),
        fix: r.fix.to_string(),
    };
    // Socket findings name the place right after the address; the others end with it.
    let place = f.place.as_ref().map(place_text);
    let inline = |a: &str| match &place {
        Some(p) => format!("{a} in {p}"),
        None => a.to_string(),
    };
    let mut placed = false;
    match &f.data {
        Evidence::AcceptQueue(d) => {
            placed = true;
            let owners = owners_text(&d.owners);
            let held = match (&owners, &place) {
                (Some(o), Some(_)) => format!(", held by {o}"),
                (Some(o), None) => format!(" held by {o}"),
                _ => String::new(),
            };
            w.evidence = format!(
                "accept queue {}/{} on {}{held}{}",
                d.queued,
                d.backlog,
                inline(&addr(&d.listener)),
                d.overflows
                    .as_ref()
                    .map(|m| format!("; {} in {}", moved_text(m), secs(m.interval_us)))
                    .unwrap_or_default()
            );
            let who = match &owners {
                Some(o) => format!("{o} is not accepting fast enough"),
                None => format!(
                    "see who owns it (sockscope listeners --port {})",
                    d.listener.port
                ),
            };
            w.fix = format!("{who}; {}; today's cap: sysctl net.core.somaxconn", r.fix);
        }
        Evidence::ListenDrops(d) => {
            w.evidence = format!(
                "{} in {} (no queue was full at the moment of the dump: bursts)",
                moved_text(&d.overflows),
                secs(d.overflows.interval_us)
            );
        }
        Evidence::UdpDrops(d) => {
            // nstat's names: UdpRcvbufErrors, Udp6RcvbufErrors.
            let moved: Vec<String> = d
                .counters
                .counters
                .iter()
                .map(|c| format!("{} +{}", c.name.replace('.', ""), c.delta))
                .collect();
            let sockets: Vec<String> = d
                .sockets
                .iter()
                .map(|s| {
                    format!(
                        "{}{} {} dropped{}",
                        addr(&s.local),
                        owners_text(&s.owners)
                            .map(|o| format!(" ({o})"))
                            .unwrap_or_default(),
                        s.dropped,
                        s.rcvbuf
                            .map(|b| format!(" (receive buffer {b} bytes)"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            w.evidence = format!(
                "{} in {} (datagrams dropped: receive buffer full){}",
                moved.join(", "),
                secs(d.counters.interval_us),
                if sockets.is_empty() {
                    String::new()
                } else {
                    format!("; by socket: {}", sockets.join(", "))
                }
            );
            if let Some((s, o)) = d
                .sockets
                .first()
                .and_then(|s| owners_text(&s.owners).map(|o| (s, o)))
            {
                w.fix = format!("{o} reads {} too slowly: {}", addr(&s.local), r.fix);
            }
        }
        Evidence::RecvQ(d) => {
            placed = true;
            let owners = owners_text(&d.owners);
            w.evidence = format!(
                "Recv-Q {} bytes on {} (peer {}){}{}: {} at the first reading, {} after {} \
                 (data received and not read)",
                d.recv_q_after,
                addr(&d.local),
                addr(&d.peer),
                place
                    .as_ref()
                    .map(|p| format!(" in {p}"))
                    .unwrap_or_default(),
                owners
                    .as_ref()
                    .map(|o| format!("{} held by {o}", if place.is_some() { "," } else { "" }))
                    .unwrap_or_default(),
                d.recv_q_before,
                d.recv_q_after,
                secs(d.interval_us)
            );
            w.fix = match &owners {
                Some(o) => format!("{o} does not read {}: {}", addr(&d.local), r.fix),
                None => format!(
                    "find the owner (sockscope sockets --state established -p --sport {}); {}",
                    d.local.port, r.fix
                ),
            };
        }
        Evidence::CloseWait(d) => {
            let shown: Vec<String> = d
                .holders
                .iter()
                .take(3)
                .map(|h| format!("{}({}): {} sockets", escape(&h.name), h.pid, h.sockets))
                .collect();
            let held = if shown.is_empty() {
                "; their owners could not be read".to_string()
            } else {
                format!(
                    "; held by {}{}",
                    shown.join(", "),
                    if d.holders.len() > shown.len() {
                        format!(" and {} more process(es)", d.holders.len() - shown.len())
                    } else {
                        String::new()
                    }
                )
            };
            w.evidence = format!(
                "{} TCP sockets in CLOSE_WAIT (closed by the peer, never closed here){held}",
                d.close_wait
            );
            w.fix = match d.holders.first() {
                Some(h) => format!(
                    "{}({}) does not close() connections its peers have closed: {}",
                    escape(&h.name),
                    h.pid,
                    r.fix
                ),
                None => format!(
                    "find the owner (sockscope sockets --state close-wait -p); {}",
                    r.fix
                ),
            };
        }
        Evidence::Ports(d) => {
            w.evidence = format!(
                "{} of {} ephemeral ports ({}-{}) in use towards {} ({} in TIME_WAIT; {} \
                 TIME_WAIT in all; {})",
                d.ports_used,
                d.range_size,
                d.range_low,
                d.range_high,
                addr(&d.peer),
                d.time_wait_to_peer,
                d.time_wait,
                tw_reuse(d.tcp_tw_reuse)
            );
            w.fix = format!(
                "{}; e.g. sysctl -w net.ipv4.tcp_tw_reuse=1 and \
                 sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"",
                r.fix
            );
        }
        Evidence::TwBuckets(d) => {
            w.evidence = format!(
                "{} TIME_WAIT sockets against net.ipv4.tcp_max_tw_buckets={}: past it the kernel \
                 drops TIME_WAIT early (TCPTimeWaitOverflow)",
                d.time_wait, d.tcp_max_tw_buckets
            );
        }
        Evidence::TimeWait(d) => {
            w.evidence = format!(
                "{} TIME_WAIT sockets{} ({}): normal at this level",
                d.time_wait,
                d.busiest_percent
                    .map(|p| format!("; busiest peer uses {p:.1}% of the ephemeral range"))
                    .unwrap_or_default(),
                tw_reuse(d.tcp_tw_reuse)
            );
        }
        Evidence::ProcessFds(d) => {
            w.evidence = format!(
                "pid {} ({}) holds {} fds, soft limit {} ({:.0}%), hard limit {}",
                d.pid,
                escape(&d.name),
                d.fds,
                d.soft_limit,
                d.percent,
                d.hard_limit
                    .map_or("unlimited".to_string(), |h| h.to_string())
            );
            w.fix = format!(
                "{}; see what it holds: sockscope fds --pid {} (prlimit --pid {} --nofile=N:N \
                 raises it live)",
                r.fix, d.pid, d.pid
            );
        }
        Evidence::MoreProcesses(d) => {
            w.evidence = format!(
                "{} more processes above {:.0}% of their fd soft limit",
                d.more, d.warn_percent
            );
        }
        Evidence::FileTable(d) => {
            w.evidence = format!(
                "{} file handles in use of fs.file-max {} ({:.1}%, /proc/sys/fs/file-nr)",
                d.in_use, d.file_max, d.percent
            );
        }
        Evidence::Resets(d) => {
            let c = &d.counters;
            w.evidence = format!(
                "{} in {} (RSTs sent: {})",
                moved_text(c),
                secs(c.interval_us),
                d.out_rsts
            );
            // Which counter moved says which side threw the connection away.
            let mut why = Vec::new();
            if delta_of(c, "TcpExt.TCPAbortOnData") + delta_of(c, "TcpExt.TCPAbortOnClose") > 0 {
                why.push(
                    "applications on this host closed connections with unread data or with \
                     SO_LINGER 0, which sends RST instead of FIN",
                );
            }
            if delta_of(c, "TcpExt.TCPAbortOnTimeout") > 0 {
                why.push("retransmissions to a peer gave up: the peer or the path went away");
            }
            if delta_of(c, "TcpExt.TCPAbortOnMemory") > 0 {
                why.push(
                    "the kernel ran out of TCP memory (net.ipv4.tcp_mem) and aborted connections",
                );
            }
            if delta_of(c, "Tcp.EstabResets") > 0 {
                why.push("established connections were reset");
            }
            w.cause = format!("{}; in general: {}", why.join("; "), r.cause);
        }
        Evidence::Probe(d) => probe_words(f.rule, d, &mut w),
    }
    if let (Evidence::Probe(_), Some(t)) = (&f.data, capture) {
        w.evidence = format!("{}; capture: {}", w.evidence, trace_summary(t));
    }
    if let (Some(p), false) = (&place, placed) {
        w.evidence = format!("{} (in {p})", w.evidence);
    }
    w
}

fn tw_reuse(v: Option<i64>) -> String {
    format!(
        "tcp_tw_reuse={}",
        v.map_or("?".to_string(), |v| v.to_string())
    )
}

fn probe_words(rule: u16, p: &ProbeData, w: &mut Words) {
    let target = endpoint(&p.target.endpoint());
    let port = p.target.port;
    let ip = p.target.addr;
    let errno = p
        .errno
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let local_text = match &p.listeners {
        None => String::new(),
        Some(ls) if ls.is_empty() => {
            format!("; nothing listens on port {port} here (kernel socket table)")
        }
        Some(ls) => {
            let addrs: Vec<String> = ls
                .iter()
                .map(|l| {
                    let v6only =
                        l.addr.is_unspecified() && l.addr.is_ipv6() && l.v6only == Some(true);
                    format!("{}{}", addr(l), if v6only { " (IPV6_V6ONLY)" } else { "" })
                })
                .collect();
            format!("; port {port} has a listener on {}", addrs.join(", "))
        }
    };
    w.evidence = match p.outcome {
        ProbeOutcome::Connected => format!("connect to {target} succeeded{local_text}"),
        ProbeOutcome::Refused => format!(
            "connect to {target} answered with RST{errno} after {}{local_text}",
            us_ms(p.waited_us)
        ),
        ProbeOutcome::TimedOut => format!(
            "no SYN-ACK from {target} in {}{errno}{local_text}",
            us_ms(p.waited_us)
        ),
        ProbeOutcome::Unreachable => format!(
            "connect to {target} failed{errno} after {}{local_text}",
            us_ms(p.waited_us)
        ),
        ProbeOutcome::Reset => format!(
            "handshake with {target} completed in {}, then the peer sent RST{errno}{local_text}",
            us_ms(p.connect_us.unwrap_or(0))
        ),
    };
    let the_rule = match &p.firewall_rules {
        Some(v) if !v.is_empty() => format!("; the rule: {}", rules_text(v)),
        _ => String::new(),
    };
    let listeners = || {
        p.listeners
            .iter()
            .flatten()
            .map(addr)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match rule {
        20 => {
            w.cause = format!(
                "no process listens on port {port}: the service is down, crashed, or uses \
                 another port"
            )
        }
        21 => {
            w.cause = format!(
                "a listener takes {target}, so the RST did not come from a missing socket: a \
                 firewall or policy rule rejects the connection (REJECT with tcp reset, or \
                 ICMP port unreachable, which connect() also reports as ECONNREFUSED){the_rule}"
            );
            w.fix = if the_rule.is_empty() {
                format!(
                    "find the rule that rejects port {port}: nft -a list ruleset, iptables -S \
                     (and ip6tables -S); then remove or narrow it"
                )
            } else {
                format!(
                    "remove or narrow that rule, or accept port {port} before it; check with \
                     nft -a list ruleset / iptables -S"
                )
            };
        }
        22 => {
            w.cause = format!(
                "the service listens on [::]:{port} with IPV6_V6ONLY=1: that socket takes IPv6 \
                 only, and nothing listens for IPv4 on port {port}, so {target} is refused"
            );
            w.fix = format!(
                "have the service clear IPV6_V6ONLY on its socket (or start it with \
                 net.ipv6.bindv6only=0), or also listen on 0.0.0.0:{port}; or connect over IPv6"
            );
        }
        23 => {
            w.cause = format!(
                "the service listens only on {}, not on the address probed ({ip})",
                listeners()
            );
            w.fix = format!(
                "make the service listen on the address clients use (0.0.0.0 or [::] for \
                 every address) in its config, or point clients at {}",
                listeners()
            );
        }
        25 => {
            w.cause = "the listener's accept queue is full (see the accept-queue finding), so the \
                       kernel drops new SYNs until the application accepts"
                .to_string();
            w.fix = Symptom::AcceptQueue.row().fix.to_string();
        }
        26 => {
            w.cause = format!(
                "a listener exists, so the SYN is dropped before it: a firewall rule \
                 (nft/iptables DROP) or a full SYN/accept queue{the_rule}"
            );
        }
        _ => {}
    }
}

/// The probe's packets in words, as appended to its finding.
pub fn trace_summary(t: &PacketTrace) -> String {
    let by = t.reset_by.as_deref().unwrap_or("server");
    let rtt = || {
        t.handshake_rtt_us
            .map(|u| short_ms(u as f64 / 1e3))
            .unwrap_or_else(|| "?".into())
    };
    match t.outcome.as_str() {
        "not-seen" => format!(
            "no packet of the probe was captured ({} TCP segments in all)",
            t.tcp_segments
        ),
        "unanswered" | "pending" | "open" if t.handshake_rtt_us.is_none() => format!(
            "SYN sent {} time(s) (at {}), no reply",
            t.syn_attempts,
            t.syn_at_us
                .iter()
                .map(|&u| secs(u))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "refused" => format!(
            "SYN sent {} time(s), answered by RST from the {by}",
            t.syn_attempts
        ),
        "reset" => format!(
            "handshake done (SYN-ACK after {} ms), then RST from the {by}",
            rtt()
        ),
        other => format!(
            "handshake done (SYN-ACK after {} ms, {} SYN(s)), flow {other}",
            rtt(),
            t.syn_attempts
        ),
    }
}

/// One line of the checked list.
pub fn checked_text(c: &Checked, capture: Option<&PacketTrace>) -> String {
    match c {
        Checked::AcceptQueues {
            listeners,
            interval_us,
        } => format!(
            "accept queues of {}; ListenOverflows/ListenDrops over {}",
            count(*listeners, "TCP listener", "TCP listeners"),
            secs1(*interval_us)
        ),
        Checked::Sockets {
            total,
            time_wait,
            close_wait,
            range,
        } => format!(
            "{}, {time_wait} in TIME_WAIT, {close_wait} in CLOSE_WAIT; per-peer use of the {}",
            count(*total, "TCP socket", "TCP sockets"),
            range
                .map(|(l, h)| format!("ephemeral range {l}-{h}"))
                .unwrap_or_else(|| "ephemeral range unknown".into())
        ),
        Checked::RecvQ {
            interval_us,
            threshold_bytes,
        } => format!(
            "Recv-Q of established TCP sockets at both ends of {} (stuck reader: \
             {threshold_bytes} bytes or more, not shrinking)",
            secs1(*interval_us)
        ),
        Checked::Resets { interval_us } => format!(
            "reset/abort counters (TCPAbortOn*, EstabResets, OutRsts) over {}",
            secs1(*interval_us)
        ),
        Checked::UdpDrops { interval_us } => format!(
            "UDP receive-buffer drops (UdpRcvbufErrors, Udp6RcvbufErrors) over {}",
            secs1(*interval_us)
        ),
        Checked::ProcessFds {
            readable,
            unreadable,
        } => format!(
            "fd use against the soft limit of {}{}",
            count(*readable, "process", "processes"),
            if *unreadable > 0 {
                format!(" ({unreadable} unreadable)")
            } else {
                String::new()
            }
        ),
        Checked::FileTable(Some((in_use, max))) => {
            format!("system file table: {in_use} of fs.file-max {max}")
        }
        Checked::FileTable(None) => {
            "system file table: skipped (host-wide, not part of one namespace)".into()
        }
        Checked::ListenersOnPort { port, count } => {
            format!("listening sockets on port {port} (kernel socket table): {count}")
        }
        Checked::Connect {
            target,
            timeout_ms,
            outcome,
            connect_us,
        } => format!(
            "connect to {target} (timeout {timeout_ms} ms): {}{}",
            outcome.name(),
            connect_us
                .map(|u| format!(" in {}", us_ms(u)))
                .unwrap_or_default()
        ),
        Checked::Capture { device } => format!(
            "capture of the probe on {device}: {}",
            capture.map(trace_summary).unwrap_or_else(|| "-".into())
        ),
        Checked::Firewall { read, rules } => {
            if read.is_empty() {
                "firewall rules: not readable (nft, iptables-save missing or refused)".into()
            } else {
                format!(
                    "firewall rules ({}): {rules} rejecting or dropping",
                    read.join(", ")
                )
            }
        }
        Checked::Namespaces { count } => format!(
            "every check in each of {count} network namespaces (counters, sockets and the fd \
             use of each namespace's processes; the system file table once, for the host)"
        ),
        Checked::OtherNamespaces { count } => format!(
            "the other {count} network namespaces of the node, cheaply: accept queues from a \
             listener dump each, TIME_WAIT where the socket totals leave room for a warning (no \
             interval, no counters, no fd scan)"
        ),
    }
}

/// The note plain `doctor` adds when other namespaces show problems.
pub fn elsewhere_note(e: &Elsewhere) -> String {
    format!(
        "{} in {} other network namespace{}; run with --all-netns",
        count(e.findings, "finding", "findings"),
        e.namespaces,
        if e.namespaces == 1 { "" } else { "s" }
    )
}

/// A finding as JSON: the ids, the words, the numbers (`data`) and, under `--all-netns`,
/// where it lives.
struct FindingJson<'a> {
    f: &'a Finding,
    capture: Option<&'a PacketTrace>,
}

impl Serialize for FindingJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.f;
        let w = words(f, self.capture);
        let n = 7 + usize::from(f.place.is_some()) * 2;
        let mut st = s.serialize_struct("Finding", n)?;
        st.serialize_field("rule", &f.rule)?;
        st.serialize_field("symptom", &f.symptom)?;
        st.serialize_field("severity", &f.severity)?;
        st.serialize_field("evidence", &w.evidence)?;
        st.serialize_field("cause", &w.cause)?;
        st.serialize_field("fix", &w.fix)?;
        st.serialize_field("data", &f.data)?;
        if let Some(p) = &f.place {
            st.serialize_field("netns", &p.netns)?;
            st.serialize_field("container", &p.container)?;
        }
        st.end()
    }
}

/// The capture trace with its summary in words.
#[derive(serde::Serialize)]
struct TraceJson<'a> {
    #[serde(flatten)]
    trace: &'a PacketTrace,
    summary: String,
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let capture = self.capture.as_ref();
        let findings: Vec<FindingJson> = self
            .findings
            .iter()
            .map(|f| FindingJson { f, capture })
            .collect();
        let checked: Vec<String> = self
            .checked
            .iter()
            .map(|c| checked_text(c, capture))
            .collect();
        let mut st = s.serialize_struct("Report", 5)?;
        st.serialize_field("findings", &findings)?;
        st.serialize_field("checked", &checked)?;
        if let Some(p) = &self.probe {
            st.serialize_field("probe", p)?;
        }
        if let Some(t) = capture {
            st.serialize_field(
                "capture",
                &TraceJson {
                    trace: t,
                    summary: trace_summary(t),
                },
            )?;
        }
        if let Some(e) = &self.elsewhere {
            st.serialize_field("elsewhere", e)?;
        }
        st.end()
    }
}

impl crate::report::Report for Report {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }

    fn table(&self, out: &mut dyn Write, output: &Output) -> io::Result<()> {
        write_report_table(out, self, output.color, terminal_width())
    }
}

/// The width to wrap the table to: the terminal's (COLUMNS first, as shells export it, then
/// the terminal's own size); none into a pipe or a file, where lines stay whole for grep.
pub fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&w| w > 0)
        .or_else(|| comfy_table::Table::new().width())
}

/// The severity word in colour (SGR red for critical, yellow for warning). Written as plain
/// ANSI codes around the word after the table is laid out, so widths stay right and the
/// choice is ours alone (crossterm would drop colour under NO_COLOR even for `--color
/// always`).
fn paint(line: &str) -> String {
    for (word, sgr) in [("critical", "31"), ("warning", "33")] {
        if let Some(rest) = line.strip_prefix(word) {
            return format!("\x1b[{sgr}m{word}\x1b[0m{rest}");
        }
    }
    line.to_string()
}

/// The findings table, then what was checked. `width`: wrap the table's cells to fit it;
/// `None` writes each finding on one line.
pub fn write_report_table(
    out: &mut dyn Write,
    r: &Report,
    color: bool,
    width: Option<u16>,
) -> io::Result<()> {
    if r.findings.is_empty() {
        writeln!(out, "No problems found.")?;
    } else {
        let mut t = new_table(
            &["Severity", "Symptom", "Evidence", "Likely cause", "Fix"],
            &[],
        );
        if let Some(w) = width {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(w);
        }
        t.force_no_tty();
        for f in &r.findings {
            let w = words(f, r.capture.as_ref());
            t.add_row(vec![
                Cell::new(f.severity.name()),
                Cell::new(f.symptom.id()),
                Cell::new(escape(&w.evidence)),
                Cell::new(escape(&w.cause)),
                Cell::new(escape(&w.fix)),
            ]);
        }
        if color {
            // The first line is the header; a row's first line starts with its severity.
            for (i, line) in t.lines().enumerate() {
                let line = line.trim_end();
                writeln!(
                    out,
                    "{}",
                    if i == 0 {
                        line.to_string()
                    } else {
                        paint(line)
                    }
                )?;
            }
        } else {
            write_table(out, &t)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Checked:")?;
    for c in &r.checked {
        let text = escape(&checked_text(c, r.capture.as_ref()));
        match width {
            Some(w) => {
                for (i, line) in wrap(&text, usize::from(w).saturating_sub(4))
                    .iter()
                    .enumerate()
                {
                    writeln!(out, "  {} {line}", if i == 0 { "-" } else { " " })?;
                }
            }
            None => writeln!(out, "  - {text}")?,
        }
    }
    Ok(())
}

/// Greedy word wrap to `width` characters (a word longer than that gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width.max(1) {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

pub fn write_row_json(out: &mut dyn Write, row: &Row) -> io::Result<()> {
    write_json(out, row)
}

pub fn write_row_text(out: &mut dyn Write, row: &Row) -> io::Result<()> {
    let errnos = if row.errnos.is_empty() {
        String::new()
    } else {
        format!(" ({})", row.errnos.join(", "))
    };
    writeln!(out, "{}: {}{errnos}", row.id, row.title)?;
    writeln!(out, "  What it means: {}", row.meaning)?;
    writeln!(out, "  Likely cause:  {}", row.cause)?;
    writeln!(out, "  Fix:           {}", row.fix)?;
    writeln!(out, "  Confirm with:  {}", row.confirm.join("  |  "))?;
    writeln!(
        out,
        "  Check it here: sockscope doctor (whole host) or sockscope doctor HOST:PORT"
    )
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn write_pool_table(out: &mut dyn Write, p: &PoolPlan) -> io::Result<()> {
    let mut t = new_table(&["Quantity", "Value", "How"], &[1]);
    t.add_row(vec![
        "in flight at peak".to_string(),
        num(p.in_flight),
        format!(
            "Little's law: {} req/s × {} ms",
            num(p.qps),
            num(p.latency_ms)
        ),
    ]);
    t.add_row(vec![
        "pool max per upstream".to_string(),
        p.pool_max.to_string(),
        format!(
            "ceil(in flight) + {}% headroom, rounded up",
            p.headroom_percent
        ),
    ]);
    t.add_row(vec![
        "fds for all pools".to_string(),
        p.pool_fds.to_string(),
        format!("{} upstream(s) × {}", p.upstreams, p.pool_max),
    ]);
    t.add_row(vec![
        "fd limit".to_string(),
        if p.fd_limit == u64::MAX {
            "unlimited".to_string()
        } else {
            p.fd_limit.to_string()
        },
        format!(
            "{}; pools use {}: {}",
            p.fd_limit_source,
            percent(p.fd_percent),
            if p.fits { "fits" } else { "DOES NOT FIT" }
        ),
    ]);
    t.add_row(vec![
        "keep-alive idle timeout".to_string(),
        format!("{} s", num(p.keepalive_idle_s)),
        format!(
            "below the upstream's {} s idle timeout, so it never resets a connection you reuse",
            num(p.upstream_idle_timeout_s)
        ),
    ]);
    if let Some(s) = &p.setup {
        t.add_row(vec![
            "new connection".to_string(),
            format!("{} ms", num(s.new_connection_ms)),
            format!("TCP + TLS 1.3 handshakes, 2 × {} ms RTT", num(s.rtt_ms)),
        ]);
        t.add_row(vec![
            "1,000 sequential calls".to_string(),
            format!(
                "{} s / {} s",
                num(s.thousand_calls_without_pool_s),
                num(s.thousand_calls_with_pool_s)
            ),
            format!(
                "without reuse ({} ms each) / with a pool ({} ms each)",
                num(s.call_without_pool_ms),
                num(s.call_with_pool_ms)
            ),
        ]);
    }
    write_table(out, &t)?;
    if !p.fits {
        writeln!(
            out,
            "\nThe pools need more fds than the limit: raise it (systemd LimitNOFILE=, ulimit -n) \
             or share connections across upstreams."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::{Addr, Moved, QueueData, RecvQData, Severity};
    use crate::procs::cgroup::Runtime;
    use crate::procs::container::Container;
    use crate::scope::NetnsRef;
    use crate::sockets::model::ProcessRef;

    fn a(s: &str) -> Addr {
        Addr::of_sockaddr(s.parse().unwrap())
    }

    /// A report with findings wider than any terminal: a full accept queue in a container,
    /// a stuck reader in a named namespace, and the host's file table.
    fn wide_report() -> Report {
        let web = Where {
            netns: NetnsRef {
                inode: 4026532890,
                name: None,
                host: false,
            },
            container: Some(Container {
                runtime: Runtime::Containerd,
                id: "3f2a9c0d1e4b5a6978abcdef00112233".into(),
                name: Some("web-7d9f".into()),
                pod: Some("web-7d9f-abcde".into()),
                pod_namespace: Some("shop".into()),
            }),
        };
        let blue = Where {
            netns: NetnsRef {
                inode: 4026532999,
                name: Some("blue".into()),
                host: false,
            },
            container: None,
        };
        Report {
            findings: vec![
                Finding {
                    rule: 1,
                    symptom: Symptom::AcceptQueue,
                    severity: Severity::Critical,
                    data: Evidence::AcceptQueue(QueueData {
                        listener: a("0.0.0.0:8080"),
                        queued: 129,
                        backlog: 128,
                        owners: vec![ProcessRef {
                            pid: 4242,
                            name: "nginx".into(),
                        }],
                        overflows: Some(Moved {
                            counters: vec![crate::doctor::model::CounterMove {
                                name: "TcpExt.ListenOverflows".into(),
                                delta: 57,
                            }],
                            interval_us: 2_000_000,
                        }),
                        warn_percent: 80,
                    }),
                    place: Some(web),
                },
                Finding {
                    rule: 13,
                    symptom: Symptom::RecvQ,
                    severity: Severity::Warning,
                    data: Evidence::RecvQ(RecvQData {
                        local: a("10.0.0.2:7000"),
                        peer: a("10.0.0.9:45678"),
                        owners: vec![ProcessRef {
                            pid: 42,
                            name: "reader".into(),
                        }],
                        recv_q_before: 150_000,
                        recv_q_after: 200_000,
                        interval_us: 1_000_000,
                        threshold_bytes: 65536,
                    }),
                    place: Some(blue),
                },
            ],
            checked: vec![
                Checked::Namespaces { count: 3 },
                Checked::FileTable(Some((1684, 2466174))),
            ],
            ..Default::default()
        }
    }

    fn table(r: &Report, color: bool, width: Option<u16>) -> String {
        let mut out = Vec::new();
        write_report_table(&mut out, r, color, width).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_finding_names_its_namespace_container_and_process() {
        let r = wide_report();
        let w = words(&r.findings[0], None);
        assert_eq!(
            w.evidence,
            "accept queue 129/128 on 0.0.0.0:8080 in container k8s/shop/web-7d9f-abcde/web-7d9f \
             3f2a9c0d1e4b (netns net:[4026532890]), held by nginx(4242); ListenOverflows +57 in \
             2 s"
        );
        let w = words(&r.findings[1], None);
        assert!(
            w.evidence
                .starts_with("Recv-Q 200000 bytes on 10.0.0.2:7000 (peer 10.0.0.9:45678) in netns blue, held by reader(42): "),
            "{}",
            w.evidence
        );
    }

    #[test]
    fn into_a_pipe_each_finding_is_one_line() {
        let t = table(&wide_report(), false, None);
        // Header, two findings, a blank line, "Checked:" and two items.
        assert_eq!(t.lines().count(), 7, "{t}");
        assert!(t
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("critical  accept-queue"));
        insta::assert_snapshot!("doctor_table_unwrapped", t);
    }

    #[test]
    fn wide_findings_wrap_to_80_columns() {
        let t = table(&wide_report(), false, Some(80));
        for l in t.lines() {
            assert!(l.chars().count() <= 80, "{} > 80: {l:?}", l.chars().count());
        }
        assert!(t.lines().count() > 7, "{t}");
        insta::assert_snapshot!("doctor_table_80_columns", t);
    }

    #[test]
    fn wide_findings_wrap_to_200_columns() {
        let t = table(&wide_report(), false, Some(200));
        for l in t.lines() {
            assert!(l.chars().count() <= 200, "{l:?}");
        }
        insta::assert_snapshot!("doctor_table_200_columns", t);
    }

    #[test]
    fn severity_is_coloured_only_when_asked() {
        let plain = table(&wide_report(), false, None);
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = table(&wide_report(), true, None);
        // Critical in red, warning in yellow; only the severity word is styled.
        let line = |i: usize| coloured.lines().nth(i).unwrap().to_string();
        assert!(
            line(1).starts_with("\x1b[31mcritical\x1b[0m  accept-queue"),
            "{:?}",
            line(1)
        );
        assert!(
            line(2).starts_with("\x1b[33mwarning\x1b[0m   recv-q"),
            "{:?}",
            line(2)
        );
        assert_eq!(coloured.matches('\x1b').count(), 4, "{coloured:?}");
        let stripped = coloured
            .replace("\x1b[31m", "")
            .replace("\x1b[33m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
        // Wrapped rows: colour on the row's first line only.
        let wrapped = table(&wide_report(), true, Some(80));
        assert_eq!(wrapped.matches('\x1b').count(), 4, "{wrapped}");
    }

    #[test]
    fn json_keeps_the_words_and_adds_the_numbers_and_the_place() {
        let v = serde_json::to_value(wide_report()).unwrap();
        let f = &v["findings"][0];
        assert_eq!(f["symptom"], "accept-queue");
        assert_eq!(f["rule"], 1);
        assert!(f["evidence"]
            .as_str()
            .unwrap()
            .starts_with("accept queue 129/128"));
        assert_eq!(f["data"]["listener"]["addr"], "0.0.0.0");
        assert_eq!(f["data"]["listener"]["port"], 8080);
        assert_eq!(f["data"]["queued"], 129);
        assert_eq!(f["data"]["backlog"], 128);
        assert_eq!(f["data"]["owners"][0]["pid"], 4242);
        assert_eq!(f["data"]["overflows"]["counters"][0]["delta"], 57);
        assert_eq!(f["data"]["overflows"]["interval_us"], 2_000_000);
        assert_eq!(f["netns"]["inode"], 4026532890u64);
        assert_eq!(f["netns"]["host"], false);
        assert_eq!(f["container"]["runtime"], "containerd");
        assert_eq!(v["findings"][1]["netns"]["name"], "blue");
        assert!(v["findings"][1]["container"].is_null());
        assert_eq!(
            v["checked"][1],
            "system file table: 1684 of fs.file-max 2466174"
        );
    }
}
