//! `states` across the node: one row per network namespace, per container or per owning
//! process, worst first (pure). Ephemeral ports are a per-namespace resource, so a row that
//! groups several namespaces keeps the worst namespace's busiest service rather than adding
//! ranges up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::model::ProcessRef;
use super::owned::{Holder, OwnedStates};
use super::states::{Ephemeral, PeerCount, StateCounts, StateSummary};
use crate::cli::GroupBy;
use crate::procs::container::Container;
use crate::scope::{Found, NetnsRef, Where};

/// What a row of the node view is about: its namespaces, container and owner. Shared by the
/// view and its `--watch` samples, which follow a row from one sample to the next by it.
#[derive(Debug, Clone, Serialize)]
pub struct RowId {
    /// The namespaces the row covers (one with `--by netns`).
    pub netns: Vec<NetnsRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// With `--by process`: who holds the row's sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Holder>,
    /// With `--by process`, on a process's row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
}

impl RowId {
    /// What identifies the row from one sample to the next (`--watch`), in a report grouped
    /// `by`.
    pub fn key(&self, by: &str) -> String {
        match (self.owner, &self.process, &self.container) {
            (Some(Holder::Process), Some(p), _) => format!("p:{}", p.pid),
            (Some(h), _, _) => format!("{h:?}:{}", self.netns[0].inode),
            (None, _, Some(c)) if by == "container" => format!("c:{}", c.id),
            _ => format!("n:{}", self.netns[0].inode),
        }
    }
}

/// One row of the node view of `states`.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceStates {
    #[serde(flatten)]
    pub id: RowId,
    pub total: u64,
    pub states: StateCounts,
    pub top_peers: Vec<PeerCount>,
    pub top_time_wait: Vec<PeerCount>,
    /// The busiest service of the worst namespace of the row.
    pub ephemeral: Option<Ephemeral>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStates {
    pub by: &'static str,
    pub total: u64,
    pub states: StateCounts,
    /// With `--by process`: sockets held by more than one process, counted in each of their
    /// rows (so the rows add up to `total` plus this, at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<u64>,
    pub places: Vec<PlaceStates>,
}

impl PlaceStates {
    fn new(place: Where, s: StateSummary) -> PlaceStates {
        PlaceStates {
            id: RowId {
                netns: vec![place.netns],
                container: place.container,
                owner: None,
                process: None,
            },
            total: s.total,
            states: s.states,
            top_peers: s.top_peers,
            top_time_wait: s.top_time_wait,
            ephemeral: s.ephemeral,
        }
    }
}

/// Groups per-namespace summaries into rows and sorts them worst first: the fullest ephemeral
/// range, then TIME_WAIT, then CLOSE_WAIT, then the socket count.
pub fn group(found: Vec<Found<StateSummary>>, by: GroupBy, top: usize) -> NodeStates {
    let mut total = StateCounts::default();
    let mut rows = Rows::default();
    for f in found {
        add_counts(&mut total, &f.value.states);
        let key = match (by, &f.place.container) {
            (GroupBy::Container, Some(c)) => format!("c:{}", c.id),
            _ => format!("n:{}", f.place.netns.inode),
        };
        rows.add(key, PlaceStates::new(f.place, f.value), top);
    }
    NodeStates {
        by: match by {
            GroupBy::Netns => "netns",
            GroupBy::Container => "container",
            GroupBy::Process => "process",
        },
        total: total.total(),
        states: total,
        shared: None,
        places: rows.sorted(),
    }
}

/// `--by process`: one row per process (its sockets in every namespace it holds some in,
/// named with its own container by `container_of`), and per namespace one row for the
/// sockets without an owner and one for those whose owner could not be read; empty rows are
/// left out. Worst first, as [`group`].
pub fn group_by_process(
    found: Vec<Found<OwnedStates>>,
    top: usize,
    container_of: &mut dyn FnMut(u32) -> Option<Container>,
) -> NodeStates {
    let mut total = StateCounts::default();
    let mut shared = 0;
    let mut rows = Rows::default();
    for f in found {
        add_counts(&mut total, &f.value.all);
        shared += f.value.shared;
        for (p, s) in f.value.processes {
            let place = Where {
                netns: f.place.netns.clone(),
                container: container_of(p.pid),
            };
            let mut row = PlaceStates::new(place, s);
            row.id.owner = Some(Holder::Process);
            row.id.process = Some(p);
            rows.add(row.id.key("process"), row, top);
        }
        for (holder, s) in [
            (Holder::None, f.value.no_owner),
            (Holder::Unknown, f.value.unknown),
        ] {
            if s.total > 0 {
                let mut row = PlaceStates::new(f.place.clone(), s);
                row.id.owner = Some(holder);
                rows.add(row.id.key("process"), row, top);
            }
        }
    }
    NodeStates {
        by: "process",
        total: total.total(),
        states: total,
        shared: Some(shared),
        places: rows.sorted(),
    }
}

fn add_counts(into: &mut StateCounts, add: &StateCounts) {
    for (t, n) in into.0.iter_mut().zip(add.0.iter()) {
        *t += n;
    }
}

/// Rows being built, merged by key in the order they first came.
#[derive(Default)]
struct Rows {
    rows: Vec<PlaceStates>,
    index: BTreeMap<String, usize>,
}

impl Rows {
    fn add(&mut self, key: String, row: PlaceStates, top: usize) {
        match self.index.get(&key) {
            Some(&i) => merge(&mut self.rows[i], row, top),
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    fn sorted(mut self) -> Vec<PlaceStates> {
        self.rows.sort_by(|a, b| {
            let pc = |r: &PlaceStates| {
                r.ephemeral
                    .as_ref()
                    .and_then(|e| e.busiest.as_ref())
                    .map_or(0.0, |b| b.percent)
            };
            use super::model::TcpState::{CloseWait, TimeWait};
            pc(b)
                .total_cmp(&pc(a))
                .then(b.states.get(TimeWait).cmp(&a.states.get(TimeWait)))
                .then(b.states.get(CloseWait).cmp(&a.states.get(CloseWait)))
                .then(b.total.cmp(&a.total))
                .then(a.id.netns[0].inode.cmp(&b.id.netns[0].inode))
                .then(
                    a.id.process
                        .as_ref()
                        .map(|p| p.pid)
                        .cmp(&b.id.process.as_ref().map(|p| p.pid)),
                )
        });
        self.rows
    }
}

fn merge(into: &mut PlaceStates, row: PlaceStates, top: usize) {
    into.id.netns.extend(row.id.netns);
    into.total += row.total;
    add_counts(&mut into.states, &row.states);
    into.top_peers = merge_peers(&into.top_peers, &row.top_peers, top, |p| p.total);
    into.top_time_wait = merge_peers(&into.top_time_wait, &row.top_time_wait, top, |p| {
        p.time_wait
    });
    let pc = |e: &Option<Ephemeral>| {
        e.as_ref()
            .and_then(|e| e.busiest.as_ref())
            .map_or(-1.0, |b| b.percent)
    };
    if pc(&row.ephemeral) > pc(&into.ephemeral) {
        into.ephemeral = row.ephemeral;
    }
}

fn merge_peers(
    a: &[PeerCount],
    b: &[PeerCount],
    top: usize,
    key: fn(&PeerCount) -> u64,
) -> Vec<PeerCount> {
    let mut m: BTreeMap<IpAddr, (u64, u64)> = BTreeMap::new();
    for p in a.iter().chain(b) {
        let e = m.entry(p.addr).or_default();
        e.0 += p.total;
        e.1 += p.time_wait;
    }
    let mut v: Vec<PeerCount> = m
        .into_iter()
        .map(|(addr, (total, time_wait))| PeerCount {
            addr,
            total,
            time_wait,
        })
        .collect();
    v.sort_by(|x, y| key(y).cmp(&key(x)).then(x.addr.cmp(&y.addr)));
    v.truncate(top);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::cgroup::Runtime;
    use crate::scope::Where;
    use crate::sockets::model::TcpState;
    use crate::sockets::states::TimeWaitSettings;

    fn summary(tw: u64, est: u64) -> StateSummary {
        let mut states = StateCounts::default();
        states.0[TcpState::TimeWait as usize] = tw;
        states.0[TcpState::Established as usize] = est;
        StateSummary {
            total: tw + est,
            states,
            top_peers: vec![],
            top_time_wait: vec![],
            ephemeral: None,
            settings: TimeWaitSettings::default(),
        }
    }

    fn at(inode: u64, container: Option<&str>, s: StateSummary) -> Found<StateSummary> {
        Found {
            place: Where {
                netns: NetnsRef {
                    inode,
                    name: None,
                    host: false,
                },
                container: container.map(|id| Container {
                    runtime: Runtime::Podman,
                    id: id.into(),
                    name: None,
                    pod: None,
                    pod_namespace: None,
                }),
            },
            value: s,
        }
    }

    #[test]
    fn rows_worst_first_and_totals_add_up() {
        let n = group(
            vec![
                at(1, None, summary(0, 5)),
                at(2, Some("a"), summary(40, 1)),
                at(3, Some("b"), summary(7, 0)),
            ],
            GroupBy::Netns,
            10,
        );
        let order: Vec<u64> = n.places.iter().map(|p| p.id.netns[0].inode).collect();
        assert_eq!(order, vec![2, 3, 1]);
        assert_eq!(n.total, 53);
        assert_eq!(n.states.get(TcpState::TimeWait), 47);
    }

    #[test]
    fn containers_sharing_a_namespace_owner_merge() {
        let n = group(
            vec![
                at(2, Some("a"), summary(4, 1)),
                at(3, Some("a"), summary(6, 0)),
                at(4, None, summary(1, 0)),
            ],
            GroupBy::Container,
            10,
        );
        assert_eq!(n.places.len(), 2);
        assert_eq!(n.places[0].states.get(TcpState::TimeWait), 10);
        assert_eq!(n.places[0].id.netns.len(), 2);
    }
    fn owned(pids: &[(u32, u64)], no_owner_tw: u64, shared: u64) -> OwnedStates {
        let mut all = StateCounts::default();
        all.0[TcpState::TimeWait as usize] = no_owner_tw;
        all.0[TcpState::Established as usize] = pids.iter().map(|(_, n)| n).sum::<u64>() - shared;
        OwnedStates {
            all,
            processes: pids
                .iter()
                .map(|&(pid, est)| {
                    (
                        ProcessRef {
                            pid,
                            name: format!("p{pid}"),
                        },
                        summary(0, est),
                    )
                })
                .collect(),
            no_owner: summary(no_owner_tw, 0),
            unknown: summary(0, 0),
            shared,
        }
    }

    #[test]
    fn process_rows_span_namespaces_and_no_owner_rows_stay_per_namespace() {
        let found = vec![
            Found {
                place: at(1, None, summary(0, 0)).place,
                value: owned(&[(7, 2), (9, 5)], 4, 0),
            },
            // pid 7 holds sockets in namespace 2 too; one of them is shared with pid 8.
            Found {
                place: at(2, Some("a"), summary(0, 0)).place,
                value: owned(&[(7, 1), (8, 1)], 6, 1),
            },
        ];
        let mut asked = Vec::new();
        let n = group_by_process(found, 10, &mut |pid| {
            asked.push(pid);
            None
        });
        assert_eq!(n.by, "process");
        assert_eq!(n.shared, Some(1));
        assert_eq!(n.total, 7 + 10 + 1);
        let rows: Vec<(Option<Holder>, Option<u32>, u64, usize)> = n
            .places
            .iter()
            .map(|p| {
                (
                    p.id.owner,
                    p.id.process.as_ref().map(|p| p.pid),
                    p.total,
                    p.id.netns.len(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (Some(Holder::None), None, 6, 1),
                (Some(Holder::None), None, 4, 1),
                (Some(Holder::Process), Some(9), 5, 1),
                (Some(Holder::Process), Some(7), 3, 2),
                (Some(Holder::Process), Some(8), 1, 1),
            ]
        );
        // The no-owner row of namespace 2 keeps its container; no empty unknown rows.
        assert_eq!(n.places[0].id.container.as_ref().unwrap().id, "a");
        asked.sort_unstable();
        assert_eq!(asked, vec![7, 7, 8, 9]);
    }
}
