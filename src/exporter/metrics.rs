//! A [`Sample`] as Prometheus metrics: every name, label and help text lives here, and the
//! exposition (Prometheus text 0.0.4 or OpenMetrics, with the label escaping both require)
//! is written by the Prometheus project's `prometheus-client` crate.
//!
//! A fresh registry per scrape: the exporter serves what it just read, never a value left
//! over from an earlier scrape (a listener that went away has no series).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, text as openmetrics_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::collect::Sample;

/// The exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// Picks by the scraper's `Accept` header: OpenMetrics when it is named, else the
    /// Prometheus text format (what node_exporter's textfile collector and curl get).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Registers a labelled gauge family and returns it for filling.
fn gauges(r: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    r.register(name, help, f.clone());
    f
}

fn counters(r: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    r.register(name, help, f.clone());
    f
}

fn set(f: &Family<Labels, Gauge>, labels: Labels, v: u64) {
    f.get_or_create(&labels).set(v.min(i64::MAX as u64) as i64);
}

/// The kernel counters served, as (metric, help, [(label value, counter key)]).
/// (metric, help, label name, [(label value, counter key)]).
type KernelCounter = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const KERNEL_COUNTERS: &[KernelCounter] = &[
    (
        "netstat_listen_overflows",
        "Handshakes dropped because a listener's accept queue was full (TcpExt ListenOverflows)",
        "",
        &[("", "TcpExt.ListenOverflows")],
    ),
    (
        "netstat_listen_drops",
        "SYNs or handshakes dropped at a listener for any reason (TcpExt ListenDrops)",
        "",
        &[("", "TcpExt.ListenDrops")],
    ),
    (
        "netstat_tcp_aborts",
        "Connections reset by this host, by reason (TcpExt TCPAbortOn*)",
        "reason",
        &[
            ("data", "TcpExt.TCPAbortOnData"),
            ("close", "TcpExt.TCPAbortOnClose"),
            ("memory", "TcpExt.TCPAbortOnMemory"),
            ("timeout", "TcpExt.TCPAbortOnTimeout"),
            ("linger", "TcpExt.TCPAbortOnLinger"),
            ("failed", "TcpExt.TCPAbortFailed"),
        ],
    ),
    (
        "netstat_tcp_estab_resets",
        "Established connections that ended with a reset (Tcp EstabResets)",
        "",
        &[("", "Tcp.EstabResets")],
    ),
    (
        "netstat_udp_rcvbuf_errors",
        "UDP datagrams dropped for a full socket receive buffer (Udp/Udp6 RcvbufErrors)",
        "ip",
        &[("4", "Udp.RcvbufErrors"), ("6", "Udp6.RcvbufErrors")],
    ),
];

/// Builds the registry for one sample. `errors_total` is the exporter's running count of
/// collection errors per collector.
pub fn registry(s: &Sample, errors_total: &[(&'static str, u64)]) -> Registry {
    let mut r = Registry::with_prefix("sockscope");
    let ns = || ("netns", s.netns.clone());

    let f = gauges(
        &mut r,
        "sockets",
        "Sockets by protocol and state (TCP states as ss names them; UDP: close = unconnected)",
    );
    for (proto, state, n) in &s.sockets {
        set(
            &f,
            vec![
                ("proto", proto.name().into()),
                ("state", state.name().into()),
                ns(),
            ],
            *n,
        );
    }

    let queue = gauges(
        &mut r,
        "listener_accept_queue",
        "Connections waiting for accept() on a listening address (summed over its sockets)",
    );
    let backlog = gauges(
        &mut r,
        "listener_backlog",
        "The listen() backlog of a listening address (summed over its sockets)",
    );
    let over = gauges(
        &mut r,
        "listener_sockets_overflowing",
        "Sockets of a listening address whose accept queue is past the backlog: new handshakes are dropped",
    );
    for l in &s.listeners {
        let labels = vec![
            ("addr", l.addr.clone()),
            ("port", l.port.to_string()),
            ("process", l.process.clone()),
            ns(),
        ];
        set(&queue, labels.clone(), l.accept_queue);
        set(&backlog, labels.clone(), l.backlog);
        set(&over, labels, l.overflowing);
    }

    if let Some(c) = &s.counters {
        for (name, help, label, keys) in KERNEL_COUNTERS {
            let f = counters(&mut r, name, help);
            for (value, key) in *keys {
                let mut labels = vec![ns()];
                if !label.is_empty() {
                    labels.push((label, value.to_string()));
                }
                f.get_or_create(&labels).inc_by(c.get(key));
            }
        }
    }

    if let Some((lo, hi)) = s.port_range {
        let f = gauges(
            &mut r,
            "ephemeral_ports_range_size",
            "Ports in net.ipv4.ip_local_port_range",
        );
        set(&f, vec![ns()], u64::from(hi - lo) + 1);
        let f = gauges(
            &mut r,
            "ephemeral_ports_in_use",
            "TCP sockets whose local port is in the ephemeral range (connections made from here)",
        );
        set(&f, vec![ns()], s.ephemeral_in_use);
        let used = gauges(
            &mut r,
            "ephemeral_ports_used",
            "Ephemeral ports in use toward one remote service (addr:port), top N by use: each can use the range once",
        );
        let tw = gauges(
            &mut r,
            "ephemeral_ports_time_wait",
            "Of those, the ones held by TIME_WAIT sockets",
        );
        for p in &s.peer_ports {
            let peer = crate::render::endpoint(&p.peer);
            set(&used, vec![("peer", peer.clone()), ns()], p.ports_used);
            set(&tw, vec![("peer", peer), ns()], p.time_wait);
        }
    }

    let fds = gauges(
        &mut r,
        "process_fds",
        "Open fds of a process, top N by share of its soft limit",
    );
    let soft = gauges(
        &mut r,
        "process_fd_soft_limit",
        "Soft RLIMIT_NOFILE of that process (EMFILE at this many fds); absent when unlimited",
    );
    for p in &s.processes {
        let labels = vec![("pid", p.pid.to_string()), ("comm", p.name.clone()), ns()];
        set(&fds, labels.clone(), p.fds.unwrap_or(0));
        if let Some(l) = p.soft_limit {
            set(&soft, labels, l);
        }
    }
    if let Some(sys) = &s.system {
        let f = gauges(
            &mut r,
            "system_file_handles_allocated",
            "File handles in use system-wide (fs.file-nr allocated minus free; ENFILE at file-max)",
        );
        set(&f, vec![], sys.allocated.saturating_sub(sys.free));
        let f = gauges(&mut r, "system_file_handles_max", "fs.file-max");
        set(&f, vec![], sys.max);
    }

    let f = gauges(
        &mut r,
        "finding",
        "1 for each current doctor finding (symptom as in `sockscope explain`)",
    );
    for (symptom, severity) in &s.findings {
        set(
            &f,
            vec![
                ("symptom", symptom.to_string()),
                ("severity", severity.to_string()),
                ns(),
            ],
            1,
        );
    }

    let f = Family::<Labels, GaugeF>::default();
    r.register(
        "scrape_duration_seconds",
        "Time this collection took",
        f.clone(),
    );
    f.get_or_create(&vec![ns()]).set(s.duration_seconds);
    let f = Family::<Labels, GaugeF>::default();
    r.register(
        "scrape_phase_seconds",
        "Time each part of this collection took (tcp, udp, netstat, proc, owners, doctor)",
        f.clone(),
    );
    for (phase, secs) in &s.phases {
        f.get_or_create(&vec![("phase", phase.to_string()), ns()])
            .inc_by(*secs);
    }
    let f = counters(
        &mut r,
        "scrape_errors",
        "Collections that failed in part since the exporter started, by collector",
    );
    for (what, n) in errors_total {
        f.get_or_create(&vec![("collector", what.to_string()), ns()])
            .inc_by(*n);
    }
    let f = gauges(
        &mut r,
        "collector_up",
        "1 when the collector read its source in this scrape, 0 when it failed (see stderr)",
    );
    for what in COLLECTORS {
        let up = !s.errors.iter().any(|(w, _)| *w == what);
        set(&f, vec![("collector", what.to_string()), ns()], up as u64);
    }
    let f = gauges(
        &mut r,
        "unreadable_processes",
        "Processes whose fds could not be counted or whose fd links could not be read (permission): their fds or socket owners are missing",
    );
    set(&f, vec![ns()], s.unreadable_processes as u64);
    let f = gauges(
        &mut r,
        "owner_walks",
        "fd tables walked in this scrape to name socket owners (cached otherwise)",
    );
    set(&f, vec![ns()], s.owner_walks as u64);
    r
}

/// The collectors that can fail on their own, as named in `collector` labels.
pub const COLLECTORS: [&str; 5] = ["tcp", "udp", "netstat", "proc", "file-nr"];

/// The exposition text of one sample.
pub fn render(s: &Sample, errors_total: &[(&'static str, u64)], format: Format) -> String {
    let r = registry(s, errors_total);
    let mut out = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = match format {
        Format::Prometheus => prometheus_text::encode(&mut out, &r),
        Format::OpenMetrics => openmetrics_text::encode(&mut out, &r),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::model::FdUsage;

    fn sample() -> Sample {
        Sample {
            netns: "host".into(),
            processes: vec![FdUsage {
                pid: 7,
                name: "a\"b\\c\nd".into(),
                fds: Some(3),
                soft_limit: Some(1024),
                hard_limit: None,
                sockets: None,
                kinds: None,
            }],
            findings: vec![("time-wait", "warning")],
            ..Default::default()
        }
    }

    #[test]
    fn process_names_from_outside_are_escaped() {
        let text = render(&sample(), &[], Format::Prometheus);
        assert!(
            text.contains(r#"sockscope_process_fds{pid="7",comm="a\"b\\c\nd",netns="host"} 3"#),
            "{text}"
        );
        assert!(text.contains(
            r#"sockscope_finding{symptom="time-wait",severity="warning",netns="host"} 1"#
        ));
    }

    #[test]
    fn openmetrics_when_asked_for() {
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        let text = render(&sample(), &[("tcp", 2)], Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("sockscope_scrape_errors_total{collector=\"tcp\",netns=\"host\"} 2"));
    }
}
