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

/// The labels naming where a series lives: `netns`, and `container` when there is one (an
/// empty label is no label to Prometheus; leaving it out keeps the text the same).
/// The doctor's findings (one series each) and whether each collector worked, at one place
/// (a namespace, or the node).
fn findings_and_up(
    f: &Families,
    findings: &[(&'static str, &'static str)],
    errors: &[(&'static str, String)],
    collectors: &[&str],
    at: &Labels,
) {
    for (symptom, severity) in findings {
        let labels = vec![
            ("symptom", symptom.to_string()),
            ("severity", severity.to_string()),
        ];
        set(&f.finding, with(labels, at), 1);
    }
    for &what in collectors {
        let up = !errors.iter().any(|(w, _)| *w == what);
        set(
            &f.up,
            with(vec![("collector", what.to_string())], at),
            up as u64,
        );
    }
}

fn place(netns: &str, container: &str) -> Labels {
    let mut v = vec![("netns", netns.to_string())];
    if !container.is_empty() {
        v.push(("container", container.to_string()));
    }
    v
}

fn with(mut first: Labels, place: &Labels) -> Labels {
    first.extend(place.iter().cloned());
    first
}

/// Every metric family served, registered once per scrape.
struct Families {
    sockets: Family<Labels, Gauge>,
    queue: Family<Labels, Gauge>,
    backlog: Family<Labels, Gauge>,
    over: Family<Labels, Gauge>,
    range: Family<Labels, Gauge>,
    in_use: Family<Labels, Gauge>,
    used: Family<Labels, Gauge>,
    tw: Family<Labels, Gauge>,
    fds: Family<Labels, Gauge>,
    soft: Family<Labels, Gauge>,
    finding: Family<Labels, Gauge>,
    up: Family<Labels, Gauge>,
    unreadable: Family<Labels, Gauge>,
    walks: Family<Labels, Gauge>,
    phases: Family<Labels, GaugeF>,
}

/// Builds the registry for one sample. `errors_total` is the exporter's running count of
/// collection errors per (collector, netns label).
pub fn registry(s: &Sample, errors_total: &[((&'static str, String), u64)]) -> Registry {
    let mut r = Registry::with_prefix("sockscope");
    let f = Families {
        sockets: gauges(
            &mut r,
            "sockets",
            "Sockets by protocol and state (TCP states as ss names them; UDP: close = unconnected)",
        ),
        queue: gauges(
            &mut r,
            "listener_accept_queue",
            "Connections waiting for accept() on a listening address (summed over its sockets)",
        ),
        backlog: gauges(
            &mut r,
            "listener_backlog",
            "The listen() backlog of a listening address (summed over its sockets)",
        ),
        over: gauges(
            &mut r,
            "listener_sockets_overflowing",
            "Sockets of a listening address whose accept queue is past the backlog: new handshakes are dropped",
        ),
        range: gauges(
            &mut r,
            "ephemeral_ports_range_size",
            "Ports in net.ipv4.ip_local_port_range",
        ),
        in_use: gauges(
            &mut r,
            "ephemeral_ports_in_use",
            "TCP sockets whose local port is in the ephemeral range (connections made from here)",
        ),
        used: gauges(
            &mut r,
            "ephemeral_ports_used",
            "Ephemeral ports in use toward one remote service (addr:port), top N by use: each can use the range once",
        ),
        tw: gauges(
            &mut r,
            "ephemeral_ports_time_wait",
            "Of those, the ones held by TIME_WAIT sockets",
        ),
        fds: gauges(
            &mut r,
            "process_fds",
            "Open fds of a process, top N by share of its soft limit",
        ),
        soft: gauges(
            &mut r,
            "process_fd_soft_limit",
            "Soft RLIMIT_NOFILE of that process (EMFILE at this many fds); absent when unlimited",
        ),
        finding: gauges(
            &mut r,
            "finding",
            "1 for each current doctor finding (symptom as in `sockscope explain`)",
        ),
        up: gauges(
            &mut r,
            "collector_up",
            "1 when the collector read its source in this scrape, 0 when it failed (see stderr)",
        ),
        unreadable: gauges(
            &mut r,
            "unreadable_processes",
            "Processes whose fds could not be counted or whose fd links could not be read (permission): their fds or socket owners are missing",
        ),
        walks: gauges(
            &mut r,
            "owner_walks",
            "fd tables walked in this scrape to name socket owners (cached otherwise)",
        ),
        phases: {
            let f = Family::<Labels, GaugeF>::default();
            r.register(
                "scrape_phase_seconds",
                "Time each part of this collection took per namespace (tcp, udp, netstat, proc, owners, doctor)",
                f.clone(),
            );
            f
        },
    };
    let kernel: Vec<Family<Labels, Counter>> = KERNEL_COUNTERS
        .iter()
        .map(|(name, help, _, _)| counters(&mut r, name, help))
        .collect();

    for ns in &s.namespaces {
        let at = place(&ns.netns, &ns.container);
        for (proto, state, n) in &ns.sockets {
            set(
                &f.sockets,
                with(
                    vec![
                        ("proto", proto.name().into()),
                        ("state", state.name().into()),
                    ],
                    &at,
                ),
                *n,
            );
        }
        for l in &ns.listeners {
            let labels = with(
                vec![
                    ("addr", l.addr.clone()),
                    ("port", l.port.to_string()),
                    ("process", l.process.clone()),
                ],
                &at,
            );
            set(&f.queue, labels.clone(), l.accept_queue);
            set(&f.backlog, labels.clone(), l.backlog);
            set(&f.over, labels, l.overflowing);
        }
        if let Some(c) = &ns.counters {
            for ((_, _, label, keys), family) in KERNEL_COUNTERS.iter().zip(&kernel) {
                for (value, key) in *keys {
                    let mut labels = at.clone();
                    if !label.is_empty() {
                        labels.insert(0, (label, value.to_string()));
                    }
                    family.get_or_create(&labels).inc_by(c.get(key));
                }
            }
        }
        if let Some((lo, hi)) = ns.port_range {
            set(&f.range, at.clone(), u64::from(hi - lo) + 1);
            set(&f.in_use, at.clone(), ns.ephemeral_in_use);
            for p in &ns.peer_ports {
                let peer = crate::render::endpoint(&p.peer);
                set(
                    &f.used,
                    with(vec![("peer", peer.clone())], &at),
                    p.ports_used,
                );
                set(&f.tw, with(vec![("peer", peer)], &at), p.time_wait);
            }
        }
        for (p, container) in &ns.processes {
            let labels = with(
                vec![("pid", p.pid.to_string()), ("comm", p.name.clone())],
                &place(&ns.netns, container),
            );
            set(&f.fds, labels.clone(), p.fds.unwrap_or(0));
            if let Some(l) = p.soft_limit {
                set(&f.soft, labels, l);
            }
        }
        findings_and_up(&f, &ns.findings, &ns.errors, &NS_COLLECTORS, &at);
        set(&f.unreadable, at.clone(), ns.unreadable_processes as u64);
        set(&f.walks, at.clone(), ns.owner_walks as u64);
        for (phase, secs) in &ns.phases {
            f.phases
                .get_or_create(&with(vec![("phase", phase.to_string())], &at))
                .inc_by(*secs);
        }
    }

    let node = place(&s.node, "");
    if let Some(sys) = &s.system {
        let g = gauges(
            &mut r,
            "system_file_handles_allocated",
            "File handles in use system-wide (fs.file-nr allocated minus free; ENFILE at file-max)",
        );
        set(&g, vec![], sys.allocated.saturating_sub(sys.free));
        let g = gauges(&mut r, "system_file_handles_max", "fs.file-max");
        set(&g, vec![], sys.max);
    }
    findings_and_up(&f, &s.node_findings, &s.errors, &NODE_COLLECTORS, &node);

    let g = Family::<Labels, GaugeF>::default();
    r.register(
        "scrape_duration_seconds",
        "Time this collection took",
        g.clone(),
    );
    g.get_or_create(&node).set(s.duration_seconds);
    let c = counters(
        &mut r,
        "scrape_errors",
        "Collections that failed in part since the exporter started, by collector and namespace",
    );
    // Every collector of every namespace read starts at 0, so rate() and increase() see
    // the first error.
    let zero = s
        .namespaces
        .iter()
        .flat_map(|ns| NS_COLLECTORS.map(|w| ((w, ns.netns.clone()), 0)))
        .chain(NODE_COLLECTORS.map(|w| ((w, s.node.clone()), 0)));
    for ((what, netns), n) in zero.chain(errors_total.iter().cloned()) {
        c.get_or_create(&vec![("collector", what.to_string()), ("netns", netns)])
            .inc_by(n);
    }
    r
}

/// The collectors that can fail on their own, per namespace, as named in `collector` labels.
pub const NS_COLLECTORS: [&str; 4] = ["tcp", "udp", "netstat", "proc"];
/// The node-wide ones: the file table, and (`--all-netns`) finding the namespaces.
pub const NODE_COLLECTORS: [&str; 2] = ["file-nr", "netns"];

/// The exposition text of one sample.
pub fn render(
    s: &Sample,
    errors_total: &[((&'static str, String), u64)],
    format: Format,
) -> String {
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
    use crate::exporter::collect::NsSample;
    use crate::procs::model::FdUsage;

    fn sample() -> Sample {
        Sample {
            node: "host".into(),
            namespaces: vec![NsSample {
                netns: "host".into(),
                processes: vec![(
                    FdUsage {
                        pid: 7,
                        name: "a\"b\\c\nd".into(),
                        fds: Some(3),
                        soft_limit: Some(1024),
                        hard_limit: None,
                        sockets: None,
                        kinds: None,
                    },
                    String::new(),
                )],
                findings: vec![("time-wait", "warning")],
                ..Default::default()
            }],
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
    fn namespaces_and_containers_label_their_series() {
        let mut s = sample();
        s.namespaces.push(NsSample {
            netns: "net:[4026532999]".into(),
            container: "k8s/shop/web-7d9f/nginx".into(),
            findings: vec![("accept-queue", "critical")],
            processes: vec![(
                s.namespaces[0].processes[0].0.clone(),
                "k8s/shop/web-7d9f/sidecar".into(),
            )],
            ..Default::default()
        });
        let text = render(&s, &[], Format::Prometheus);
        assert!(text.contains(
            r#"sockscope_finding{symptom="accept-queue",severity="critical",netns="net:[4026532999]",container="k8s/shop/web-7d9f/nginx"} 1"#
        ), "{text}");
        // A process names its own container, not its namespace's.
        assert!(text.contains(
            r#"sockscope_process_fds{pid="7",comm="a\"b\\c\nd",netns="net:[4026532999]",container="k8s/shop/web-7d9f/sidecar"} 3"#
        ), "{text}");
        assert!(text.contains(
            r#"sockscope_collector_up{collector="tcp",netns="net:[4026532999]",container="k8s/shop/web-7d9f/nginx"} 1"#
        ), "{text}");
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
        let text = render(
            &sample(),
            &[(("tcp", "host".into()), 2)],
            Format::OpenMetrics,
        );
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("sockscope_scrape_errors_total{collector=\"tcp\",netns=\"host\"} 2"));
    }
}
