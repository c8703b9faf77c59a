//! The `summary` report: `ss -s`'s lines, then each total against the limit it runs into.

use std::io::{self, Write};

use super::{new_table, percent, write_table};
use crate::report::{Output, Report};
use crate::sockets::model::Proto;
use crate::summary::{Memory, StateTally, Summary};

impl Report for Summary {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_summary(out, self)
    }
}

/// Bytes in the largest binary unit that keeps a whole number in front: `1.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn of_limit(value: u64, limit: Option<u64>, name: &str) -> String {
    match limit {
        Some(l) if l > 0 => format!(
            "{value} of {name} {l} ({})",
            percent(value as f64 * 100.0 / l as f64)
        ),
        _ => format!("{value} ({name} unreadable)"),
    }
}

fn memory(m: &Memory, sysctl: &str) -> String {
    let used = format!("{} pages ({})", m.pages, bytes(m.bytes));
    match (&m.limit_pages, m.percent_of_max) {
        (Some(l), Some(p)) => format!(
            "{used}; {sysctl} pressure {} max {} pages ({} of max){}",
            l.pressure,
            l.max,
            percent(p),
            if m.pages >= l.pressure {
                ": UNDER PRESSURE, buffers are being trimmed"
            } else {
                ""
            }
        ),
        _ => format!("{used}; {sysctl} unreadable"),
    }
}

pub fn write_summary(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "Sockets in use: {} (every kind)", s.sockets_used)?;
    let t = &s.tcp;
    writeln!(
        out,
        "TCP: {} (estab {}, closed {}, orphaned {}, timewait {})",
        t.total, t.established, t.closed, t.orphaned, t.time_wait
    )?;
    writeln!(out)?;
    let mut table = new_table(&["Transport", "Total", "IPv4", "IPv6"], &[1, 2, 3]);
    for r in &s.transports {
        table.add_row(vec![
            r.transport.to_uppercase(),
            r.total.to_string(),
            r.ipv4.to_string(),
            r.ipv6.to_string(),
        ]);
    }
    write_table(out, &table)?;
    writeln!(out)?;
    // "(host)": the kernel keeps these for the whole host, whatever the namespace.
    let files = match &s.files {
        Some(f) => format!(
            "{} of fs.file-max {} ({})",
            f.allocated,
            f.max,
            percent(f.percent_used)
        ),
        None => "fs.file-nr unreadable".to_string(),
    };
    for (label, value) in [
        (
            "TIME_WAIT",
            of_limit(t.time_wait, t.max_tw_buckets, "net.ipv4.tcp_max_tw_buckets"),
        ),
        (
            "Orphaned (host)",
            of_limit(t.orphaned, t.max_orphans, "net.ipv4.tcp_max_orphans"),
        ),
        ("TCP allocated (host)", t.allocated.to_string()),
        ("TCP memory (host)", memory(&t.memory, "net.ipv4.tcp_mem")),
        (
            "UDP memory (host)",
            memory(&s.udp.memory, "net.ipv4.udp_mem"),
        ),
        (
            "IP fragments",
            format!("{} queued ({})", s.frag.queued, bytes(s.frag.memory_bytes)),
        ),
        ("File handles (host)", files),
    ] {
        writeln!(out, "{:<22}{value}", format!("{label}:"))?;
    }
    if let Some(st) = &s.states {
        writeln!(out)?;
        write_states(out, st)?;
    }
    Ok(())
}

fn write_states(out: &mut dyn Write, st: &StateTally) -> io::Result<()> {
    let mut table = new_table(&["Proto", "State", "Total", "IPv4", "IPv6"], &[2, 3, 4]);
    for proto in [Proto::Tcp, Proto::Udp] {
        for state in st.states_of(proto) {
            let c = st.get(proto, state);
            table.add_row(vec![
                proto.name().to_string(),
                state.name().to_string(),
                c.total.to_string(),
                c.ipv4.to_string(),
                c.ipv6.to_string(),
            ]);
        }
        let c = st.total(proto);
        table.add_row(vec![
            proto.name().to_string(),
            "all".to_string(),
            c.total.to_string(),
            c.ipv4.to_string(),
            c.ipv6.to_string(),
        ]);
    }
    write_table(out, &table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(349 * 4096), "1.4 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn summary_tables() {
        use crate::procs::model::SystemFds;
        use crate::render::sockets::tests::sock;
        use crate::sockets::model::TcpState;
        use crate::summary::sockstat::{parse_sockstat, HostLimits};
        use crate::summary::{summarize, Inputs};
        let inputs = |states| {
            Inputs {
            sockstat: parse_sockstat(
                "sockets: used 18\nTCP: inuse 6 orphan 1 tw 3 alloc 7 mem 100\nUDP: inuse 3 mem 4\n\
                 RAW: inuse 1\nFRAG: inuse 0 memory 0\nTCP6: inuse 1\nUDP6: inuse 2\nRAW6: inuse 0\n\
                 FRAG6: inuse 0 memory 0\n",
            ),
            curr_estab: 2,
            limits: HostLimits {
                tcp_mem: Some([100, 200, 400]),
                udp_mem: None,
                tcp_max_orphans: Some(4096),
                page_size: 4096,
            },
            max_tw_buckets: Some(262144),
            files: Some(SystemFds {
                allocated: 500,
                free: 0,
                max: 1000,
                nr_open: None,
            }),
            states,
        }
        };
        let render = |s: &Summary| {
            let mut out = Vec::new();
            write_summary(&mut out, s).unwrap();
            String::from_utf8(out).unwrap()
        };
        insta::assert_snapshot!("summary_plain", render(&summarize(inputs(None))));
        let mut tally = StateTally::default();
        for (proto, state, local, peer) in [
            (
                Proto::Tcp,
                TcpState::Established,
                "127.0.0.1:1",
                "127.0.0.1:2",
            ),
            (Proto::Tcp, TcpState::Established, "[::1]:1", "[::1]:2"),
            (Proto::Tcp, TcpState::TimeWait, "127.0.0.1:3", "127.0.0.1:2"),
            (Proto::Tcp, TcpState::Listening, "0.0.0.0:2", "0.0.0.0:0"),
            (Proto::Udp, TcpState::Unconn, "[::]:53", "[::]:0"),
            (
                Proto::Udp,
                TcpState::Established,
                "127.0.0.1:5",
                "127.0.0.1:53",
            ),
        ] {
            tally.add(&sock(proto, state, local, peer));
        }
        insta::assert_snapshot!("summary_states", render(&summarize(inputs(Some(tally)))));
    }
}
