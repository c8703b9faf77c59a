//! The `states` report: counts, peers, ephemeral ports, TIME_WAIT settings.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{container_label, endpoint, escape, new_table, percent, write_table};
use crate::report::{Output, Report};
use crate::sockets::model::{ProcessRef, TcpState};
use crate::sockets::node::{NodeStates, PlaceStates};
use crate::sockets::owned::Holder;
use crate::sockets::state_watch::Sample;
use crate::sockets::states::StateSummary;

impl Report for StateSummary {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_states_table(out, self)
    }
}

pub fn write_states_table(out: &mut dyn Write, s: &StateSummary) -> io::Result<()> {
    let mut t = new_table(&["State", "Count"], &[1]);
    for st in state_order() {
        t.add_row(vec![st.name().to_string(), s.states.get(st).to_string()]);
    }
    t.add_row(vec!["total".to_string(), s.total.to_string()]);
    write_table(out, &t)?;

    if !s.top_peers.is_empty() {
        writeln!(out, "\nTop peers by connections:")?;
        let mut t = new_table(&["Peer", "Connections", "TIME_WAIT"], &[1, 2]);
        for p in &s.top_peers {
            t.add_row(vec![
                p.addr.to_string(),
                p.total.to_string(),
                p.time_wait.to_string(),
            ]);
        }
        write_table(out, &t)?;
    }
    if !s.top_time_wait.is_empty() {
        writeln!(out, "\nTop peers by TIME_WAIT:")?;
        let mut t = new_table(&["Peer", "TIME_WAIT", "Connections"], &[1, 2]);
        for p in &s.top_time_wait {
            t.add_row(vec![
                p.addr.to_string(),
                p.time_wait.to_string(),
                p.total.to_string(),
            ]);
        }
        write_table(out, &t)?;
    }
    writeln!(out)?;
    match &s.ephemeral {
        Some(e) => {
            write!(
                out,
                "Ephemeral ports: {}-{} ({} ports)",
                e.low, e.high, e.size
            )?;
            match &e.busiest {
                Some(b) => writeln!(
                    out,
                    "; busiest remote service {} uses {} of them ({}, {} in TIME_WAIT)",
                    endpoint(&b.peer),
                    b.ports_used,
                    percent(b.percent),
                    b.time_wait
                )?,
                None => writeln!(out, "; none in use by outgoing connections")?,
            }
        }
        None => writeln!(
            out,
            "Ephemeral ports: net.ipv4.ip_local_port_range unreadable"
        )?,
    }
    let show = |v: Option<i64>| {
        v.map(|v| v.to_string())
            .unwrap_or_else(|| "unreadable".into())
    };
    writeln!(
        out,
        "net.ipv4.tcp_tw_reuse = {}   net.ipv4.tcp_max_tw_buckets = {}",
        show(s.settings.tcp_tw_reuse),
        show(s.settings.tcp_max_tw_buckets)
    )
}

impl Report for NodeStates {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_node_states_table(out, self)
    }
}

/// One row per namespace, container or process, worst first, then the node's totals.
pub fn write_node_states_table(out: &mut dyn Write, n: &NodeStates) -> io::Result<()> {
    let by_process = n.by == "process";
    let mut head = vec![
        "Netns",
        "Container",
        "Total",
        "ESTAB",
        "TIME-WAIT",
        "CLOSE-WAIT",
        "LISTEN",
        "Busiest remote service (ephemeral ports)",
    ];
    let mut right = vec![2, 3, 4, 5, 6];
    if by_process {
        head.insert(0, "Process");
        right = right.iter().map(|i| i + 1).collect();
    }
    let mut t = new_table(&head, &right);
    for p in &n.places {
        let netns: Vec<String> = p.id.netns.iter().map(|r| escape(&r.label())).collect();
        let busiest = p
            .ephemeral
            .as_ref()
            .and_then(|e| e.busiest.as_ref().map(|b| (e, b)))
            .map_or("-".to_string(), |(e, b)| {
                format!(
                    "{} {}/{} ({})",
                    endpoint(&b.peer),
                    b.ports_used,
                    e.size,
                    percent(b.percent)
                )
            });
        let mut row = vec![
            netns.join(","),
            p.id.container
                .as_ref()
                .map_or("-".to_string(), container_label),
            p.total.to_string(),
            p.states.get(TcpState::Established).to_string(),
            p.states.get(TcpState::TimeWait).to_string(),
            p.states.get(TcpState::CloseWait).to_string(),
            p.states.get(TcpState::Listening).to_string(),
            busiest,
        ];
        if by_process {
            row.insert(0, holder_label(p));
        }
        t.add_row(row);
    }
    write_table(out, &t)?;
    let namespaces: BTreeSet<u64> = n
        .places
        .iter()
        .flat_map(|p| p.id.netns.iter().map(|r| r.inode))
        .collect();
    writeln!(
        out,
        "\n{} network namespace(s), {} TCP sockets: {} established, {} TIME-WAIT, {} CLOSE-WAIT, {} listening",
        namespaces.len(),
        n.total,
        n.states.get(TcpState::Established),
        n.states.get(TcpState::TimeWait),
        n.states.get(TcpState::CloseWait),
        n.states.get(TcpState::Listening),
    )?;
    if by_process {
        writeln!(
            out,
            "The kernel gives no owner to TIME-WAIT sockets, connections not yet accepted and orphans (closed by their process): they are counted under (no owner)."
        )?;
    }
    match n.shared {
        Some(shared) if shared > 0 => writeln!(
            out,
            "{shared} socket(s) held by more than one process are counted in each of their rows."
        ),
        _ => Ok(()),
    }
}

/// The first cell of a `--by process` row.
fn holder_label(p: &PlaceStates) -> String {
    holder_text(p.id.owner, p.id.process.as_ref())
}

fn holder_text(owner: Option<Holder>, process: Option<&ProcessRef>) -> String {
    match (owner, process) {
        (Some(Holder::Process), Some(proc)) => format!("{} {}", proc.pid, escape(&proc.name)),
        (Some(Holder::Unknown), _) => "(owner unknown: unreadable or exited)".into(),
        _ => "(no owner: time-wait, unaccepted, orphans)".into(),
    }
}

impl Report for Sample {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_states_sample(out, self)
    }
}

/// One `--watch` screen: each state's count with its change since the previous sample and
/// the rate (TIME-WAIT first), then the rows of --all-netns or --by process.
pub fn write_states_sample(out: &mut dyn Write, s: &Sample) -> io::Result<()> {
    let mut t = new_table(&["State", "Count", "Change", "Rate"], &[1, 2, 3]);
    for st in state_order() {
        t.add_row(vec![
            st.name().to_string(),
            s.states.get(st).to_string(),
            s.delta.map_or("-".into(), |d| signed(d.get(st))),
            s.rate.map_or("-".into(), |r| per_second(r.get(st))),
        ]);
    }
    t.add_row(vec![
        "total".to_string(),
        s.total.to_string(),
        s.delta.map_or("-".into(), |d| signed(d.0.iter().sum())),
        s.rate.map_or("-".into(), |r| per_second(r.0.iter().sum())),
    ]);
    write_table(out, &t)?;
    if s.places.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let by_process = s.by == Some("process");
    let mut head = vec![
        "Netns",
        "Container",
        "Total",
        "ESTAB",
        "TIME-WAIT",
        "CLOSE-WAIT",
    ];
    let mut right = vec![2, 3, 4, 5];
    if by_process {
        head.insert(0, "Process");
        right = right.iter().map(|i| i + 1).collect();
    }
    let mut t = new_table(&head, &right);
    for p in &s.places {
        let with = |st: Option<TcpState>| {
            let (n, d) = match st {
                Some(st) => (p.states.get(st), p.delta.map(|d| d.get(st))),
                None => (p.total, p.delta.map(|d| d.0.iter().sum())),
            };
            match d {
                Some(d) if d != 0 => format!("{n} {}", signed(d)),
                _ => n.to_string(),
            }
        };
        let netns: Vec<String> = p.id.netns.iter().map(|r| escape(&r.label())).collect();
        let mut row = vec![
            netns.join(","),
            p.id.container
                .as_ref()
                .map_or("-".to_string(), container_label),
            with(None),
            with(Some(TcpState::Established)),
            with(Some(TcpState::TimeWait)),
            with(Some(TcpState::CloseWait)),
        ];
        if by_process {
            row.insert(0, holder_text(p.id.owner, p.id.process.as_ref()));
        }
        t.add_row(row);
    }
    write_table(out, &t)
}

/// TIME_WAIT first: it is why most people run this.
fn state_order() -> impl Iterator<Item = TcpState> {
    [TcpState::TimeWait].into_iter().chain(
        TcpState::ALL
            .into_iter()
            .filter(|s| *s != TcpState::TimeWait),
    )
}

fn signed(n: i64) -> String {
    if n == 0 {
        "0".into()
    } else {
        format!("{n:+}")
    }
}

/// A rate per second: whole above 10, one decimal below (a slow leak shows as +0.2/s).
fn per_second(r: f64) -> String {
    if r == 0.0 {
        "0/s".into()
    } else if r.abs() >= 10.0 {
        format!("{r:+.0}/s")
    } else {
        format!("{r:+.1}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sockets::tests::place;
    use crate::sockets::model::Endpoint;
    use crate::sockets::node::RowId;
    use crate::sockets::states::{
        Ephemeral, EphemeralUse, PeerCount, StateCounts, TimeWaitSettings,
    };

    fn counts(pairs: &[(TcpState, u64)]) -> StateCounts {
        let mut c = StateCounts::default();
        for &(s, n) in pairs {
            c.0[s as usize] = n;
        }
        c
    }

    fn ephemeral(busiest: bool) -> Ephemeral {
        Ephemeral {
            low: 32768,
            high: 60999,
            size: 28232,
            busiest: busiest.then(|| EphemeralUse {
                peer: Endpoint {
                    addr: "10.0.0.9".parse().unwrap(),
                    port: 5432,
                },
                ports_used: 21000,
                time_wait: 20500,
                percent: 74.38,
            }),
        }
    }

    fn summary() -> StateSummary {
        let peer = PeerCount {
            addr: "10.0.0.9".parse().unwrap(),
            total: 21003,
            time_wait: 20500,
        };
        StateSummary {
            total: 21010,
            states: counts(&[
                (TcpState::Established, 500),
                (TcpState::TimeWait, 20500),
                (TcpState::CloseWait, 7),
                (TcpState::Listening, 3),
            ]),
            top_peers: vec![
                peer.clone(),
                PeerCount {
                    addr: "::1".parse().unwrap(),
                    total: 4,
                    time_wait: 0,
                },
            ],
            top_time_wait: vec![peer],
            ephemeral: Some(ephemeral(true)),
            settings: TimeWaitSettings {
                tcp_tw_reuse: Some(2),
                tcp_max_tw_buckets: Some(262144),
            },
        }
    }

    fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn states_tables() {
        let s = summary();
        insta::assert_snapshot!(
            "states_one_namespace",
            render(|o| write_states_table(o, &s))
        );
        let empty = StateSummary {
            total: 0,
            states: StateCounts::default(),
            top_peers: vec![],
            top_time_wait: vec![],
            ephemeral: None,
            settings: TimeWaitSettings::default(),
        };
        insta::assert_snapshot!(
            "states_empty_unreadable",
            render(|o| write_states_table(o, &empty))
        );

        let busy = place();
        let mut host = place();
        host.netns = crate::scope::NetnsRef {
            inode: 4026531840,
            name: None,
            host: true,
        };
        host.container = None;
        let node = NodeStates {
            by: "netns",
            total: 21014,
            shared: None,
            states: counts(&[
                (TcpState::Established, 502),
                (TcpState::TimeWait, 20500),
                (TcpState::CloseWait, 7),
                (TcpState::Listening, 5),
            ]),
            places: vec![
                PlaceStates {
                    id: RowId {
                        netns: vec![busy.netns.clone()],
                        container: busy.container.clone(),
                        owner: None,
                        process: None,
                    },
                    total: 21010,
                    states: s.states.clone(),
                    top_peers: s.top_peers.clone(),
                    top_time_wait: s.top_time_wait.clone(),
                    ephemeral: Some(ephemeral(true)),
                },
                PlaceStates {
                    id: RowId {
                        netns: vec![host.netns.clone()],
                        container: None,
                        owner: None,
                        process: None,
                    },
                    total: 4,
                    states: counts(&[(TcpState::Established, 2), (TcpState::Listening, 2)]),
                    top_peers: vec![],
                    top_time_wait: vec![],
                    ephemeral: Some(ephemeral(false)),
                },
            ],
        };
        insta::assert_snapshot!(
            "states_all_netns",
            render(|o| write_node_states_table(o, &node))
        );
    }
    #[test]
    fn states_by_process_and_watch_tables() {
        use crate::sockets::state_watch::Sampler;
        let s = summary();
        let ns = crate::scope::NetnsRef {
            inode: 4026532000,
            name: Some("app".into()),
            host: false,
        };
        let row = |owner, process: Option<(u32, &str)>, states: StateCounts| PlaceStates {
            id: RowId {
                netns: vec![ns.clone()],
                container: None,
                owner: Some(owner),
                process: process.map(|(pid, name)| ProcessRef {
                    pid,
                    name: name.into(),
                }),
            },
            total: states.total(),
            states,
            top_peers: vec![],
            top_time_wait: vec![],
            ephemeral: None,
        };
        let node = |tw: u64| NodeStates {
            by: "process",
            total: 20504 + tw,
            states: counts(&[
                (TcpState::Established, 500),
                (TcpState::TimeWait, 20000 + tw),
                (TcpState::CloseWait, 3),
                (TcpState::Listening, 1),
            ]),
            shared: Some(2),
            places: vec![
                row(
                    Holder::None,
                    None,
                    counts(&[(TcpState::TimeWait, 20000 + tw)]),
                ),
                PlaceStates {
                    ephemeral: Some(ephemeral(true)),
                    ..row(
                        Holder::Process,
                        Some((4242, "api\x1b[2J")),
                        counts(&[(TcpState::Established, 400), (TcpState::CloseWait, 3)]),
                    )
                },
                row(
                    Holder::Process,
                    Some((77, "worker")),
                    counts(&[(TcpState::Established, 102)]),
                ),
                row(Holder::Unknown, None, counts(&[(TcpState::Listening, 1)])),
            ],
        };
        insta::assert_snapshot!(
            "states_by_process",
            render(|o| write_node_states_table(o, &node(0)))
        );
        let mut sampler = Sampler::default();
        let first = sampler.sample(0.0, node(0).states, Some(node(0)));
        insta::assert_snapshot!(
            "states_watch_first",
            render(|o| write_states_sample(o, &first))
        );
        let second = sampler.sample(5.0, node(120).states, Some(node(120)));
        insta::assert_snapshot!(
            "states_watch_change",
            render(|o| write_states_sample(o, &second))
        );
        // One namespace read whole: the counts only.
        let mut sampler = Sampler::default();
        sampler.sample(1.0, node(0).states, None);
        let one = sampler.sample(2.0, s.states.clone(), None);
        let text = render(|o| write_states_sample(o, &one));
        let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(last, ["total", "21010", "+506", "+506/s"], "{text}");
    }
}
