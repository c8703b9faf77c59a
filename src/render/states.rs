//! The `states` report: counts, peers, ephemeral ports, TIME_WAIT settings.

use std::io::{self, Write};

use super::{container_label, endpoint, escape, new_table, percent, write_table};
use crate::report::{Output, Report};
use crate::sockets::model::TcpState;
use crate::sockets::node::NodeStates;
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
    // TIME_WAIT first: it is why most people run this.
    let order = [TcpState::TimeWait].into_iter().chain(
        TcpState::ALL
            .into_iter()
            .filter(|s| *s != TcpState::TimeWait),
    );
    for st in order {
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

/// One row per namespace or container, worst first, then the node's totals.
pub fn write_node_states_table(out: &mut dyn Write, n: &NodeStates) -> io::Result<()> {
    let mut t = new_table(
        &[
            "Netns",
            "Container",
            "Total",
            "ESTAB",
            "TIME-WAIT",
            "CLOSE-WAIT",
            "LISTEN",
            "Busiest remote service (ephemeral ports)",
        ],
        &[2, 3, 4, 5, 6],
    );
    for p in &n.places {
        let netns: Vec<String> = p.netns.iter().map(|r| escape(&r.label())).collect();
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
        t.add_row(vec![
            netns.join(","),
            p.container
                .as_ref()
                .map_or("-".to_string(), container_label),
            p.total.to_string(),
            p.states.get(TcpState::Established).to_string(),
            p.states.get(TcpState::TimeWait).to_string(),
            p.states.get(TcpState::CloseWait).to_string(),
            p.states.get(TcpState::Listening).to_string(),
            busiest,
        ]);
    }
    write_table(out, &t)?;
    writeln!(
        out,
        "\n{} network namespace(s), {} TCP sockets: {} established, {} TIME-WAIT, {} CLOSE-WAIT, {} listening",
        n.places.iter().map(|p| p.netns.len()).sum::<usize>(),
        n.total,
        n.states.get(TcpState::Established),
        n.states.get(TcpState::TimeWait),
        n.states.get(TcpState::CloseWait),
        n.states.get(TcpState::Listening),
    )
}
