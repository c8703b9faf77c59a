//! `sockscope counters`: the kernel's TCP, UDP and IP counters by nstat name, as read
//! (`read_all`), as deltas, and chosen and ordered for the reader (`select`): the counters
//! behind known symptoms first, zeros hidden unless asked for.

pub mod catalog;

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

use crate::doctor::counters::parse_counters;
use crate::host::Host;
use catalog::{known, GAUGES};

/// Counters by nstat name (`TcpExtListenOverflows`, `Udp6RcvbufErrors`).
pub type Raw = BTreeMap<String, u64>;

/// Reads netstat, snmp and snmp6 in the calling thread's namespace (`thread-self`: after
/// `setns` only this thread is inside). snmp6 is absent when IPv6 is disabled.
pub fn read_all(host: &dyn Host) -> io::Result<Raw> {
    let mut raw = Raw::new();
    for file in ["netstat", "snmp"] {
        let text = crate::host::proc_text(host, &format!("thread-self/net/{file}"))?;
        // `Section.Field` → nstat's `SectionField`.
        raw.extend(
            parse_counters(&text)
                .0
                .into_iter()
                .map(|(k, v)| (k.replacen('.', "", 1), v)),
        );
    }
    if let Ok(text) = crate::host::proc_text(host, "thread-self/net/snmp6") {
        raw.extend(parse_snmp6(&text));
    }
    Ok(raw)
}

/// snmp6 holds one `Name value` per line, already in nstat's spelling.
pub fn parse_snmp6(text: &str) -> Raw {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (name, v) = (f.next()?, f.next()?.parse().ok()?);
            Some((name.to_string(), v))
        })
        .collect()
}

/// `later - earlier` per counter; one that went backwards (wrapped, or a namespace was
/// recreated) reads 0.
pub fn delta(earlier: &Raw, later: &Raw) -> Raw {
    later
        .iter()
        .map(|(k, &v)| {
            (
                k.clone(),
                v.saturating_sub(earlier.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// One counter as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub name: String,
    pub value: u64,
    /// What it counts, for the counters sockscope knows; `null` for the rest.
    pub meaning: Option<&'static str>,
    /// The `sockscope explain` id it points to.
    pub explain: Option<&'static str>,
}

/// What to show: zeros or not, and name patterns (substrings, any case; empty = all).
#[derive(Debug, Clone, Default)]
pub struct Pick {
    pub zeros: bool,
    pub names: Vec<String>,
}

/// Orders and filters (pure): known counters in the catalog's order, then the rest by name;
/// gauges dropped.
pub fn select(values: &Raw, pick: &Pick) -> Vec<Counter> {
    let patterns: Vec<String> = pick.names.iter().map(|n| n.to_lowercase()).collect();
    let mut rows: Vec<(usize, Counter)> = values
        .iter()
        .filter(|(name, &v)| {
            !GAUGES.contains(&name.as_str())
                && (pick.zeros || v > 0)
                && (patterns.is_empty() || {
                    let lower = name.to_lowercase();
                    patterns.iter().any(|p| lower.contains(p.as_str()))
                })
        })
        .map(|(name, &value)| {
            let k = known(name);
            (
                k.map_or(usize::MAX, |(i, _)| i),
                Counter {
                    name: name.clone(),
                    value,
                    meaning: k.map(|(_, k)| k.meaning),
                    explain: k.and_then(|(_, k)| k.explain),
                },
            )
        })
        .collect();
    // Stable: the unknown ones keep the map's name order.
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, c)| c).collect()
}

/// The `counters` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterReport {
    /// "delta" (what moved during the interval) or "absolute" (since the namespace began).
    pub mode: &'static str,
    /// How long the counters were watched (delta mode), microseconds.
    pub interval_us: Option<u64>,
    /// True when a signal ended the interval early.
    pub interrupted: bool,
    pub counters: Vec<Counter>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, u64)]) -> Raw {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn known_first_then_by_name_zeros_and_gauges_hidden() {
        let v = raw(&[
            ("IpExtInOctets", 10),
            ("TcpCurrEstab", 4),
            ("TcpOutRsts", 3),
            ("AaaUnknown", 1),
            ("TcpExtListenOverflows", 2),
            ("TcpExtListenDrops", 0),
        ]);
        let names = |c: Vec<Counter>| c.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(&v, &Pick::default())),
            [
                "TcpExtListenOverflows",
                "TcpOutRsts",
                "AaaUnknown",
                "IpExtInOctets"
            ]
        );
        let all = select(
            &v,
            &Pick {
                zeros: true,
                ..Pick::default()
            },
        );
        assert_eq!(all.len(), 5, "{all:?}");
        assert_eq!(all[1].name, "TcpExtListenDrops");
        assert_eq!(all[0].explain, Some("accept-queue"));
        assert_eq!(all[4].meaning, None);
    }

    #[test]
    fn names_match_any_case_substrings() {
        let v = raw(&[
            ("TcpOutRsts", 3),
            ("UdpRcvbufErrors", 1),
            ("IpInReceives", 9),
        ]);
        let got = select(
            &v,
            &Pick {
                zeros: false,
                names: vec!["rcvbuf".into(), "OUTRST".into()],
            },
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn deltas_never_go_negative() {
        let d = delta(
            &raw(&[("A", 5), ("B", 9)]),
            &raw(&[("A", 8), ("B", 2), ("C", 1)]),
        );
        assert_eq!(d, raw(&[("A", 3), ("B", 0), ("C", 1)]));
    }

    #[test]
    fn snmp6_is_taken_whole() {
        let r = parse_snmp6("Ip6InReceives \t4\nUdp6RcvbufErrors\t17\nbroken\nX y\n");
        assert_eq!(r, raw(&[("Ip6InReceives", 4), ("Udp6RcvbufErrors", 17)]));
    }

    #[test]
    fn live_names_are_nstats() {
        let r = read_all(&crate::host::LiveHost).unwrap();
        for n in ["TcpExtListenOverflows", "TcpOutRsts", "UdpRcvbufErrors"] {
            assert!(r.contains_key(n), "{n}");
        }
    }
}
