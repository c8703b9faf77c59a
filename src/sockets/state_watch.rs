//! `states --watch`: each sample's counts against the previous sample's, as a change and a
//! rate per second, for the whole view and for each row (namespace, container or process).
//! Pure: the command feeds it readings and their times.

use std::collections::HashMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::model::TcpState;
use super::node::{NodeStates, PlaceStates, RowId};
use super::states::StateCounts;

/// A number per TCP state (a change, or a rate), serialized like [`StateCounts`]:
/// `{"established": n, …}` with every state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerState<T>(pub [T; 14]);

impl<T: Copy> PerState<T> {
    pub fn get(&self, s: TcpState) -> T {
        self.0[s as usize]
    }
}

impl<T: Serialize + Copy> Serialize for PerState<T> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(TcpState::ALL.len()))?;
        for s in TcpState::ALL {
            m.serialize_entry(s.name(), &self.get(s))?;
        }
        m.end()
    }
}

/// How counts moved between two samples `seconds` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub delta: PerState<i64>,
    /// `delta` per second.
    pub rate: PerState<f64>,
}

impl Change {
    pub fn between(before: &StateCounts, now: &StateCounts, seconds: f64) -> Change {
        let mut delta = [0i64; 14];
        let mut rate = [0f64; 14];
        for i in 0..14 {
            delta[i] = now.0[i] as i64 - before.0[i] as i64;
            if seconds > 0.0 {
                rate[i] = delta[i] as f64 / seconds;
            }
        }
        Change {
            delta: PerState(delta),
            rate: PerState(rate),
        }
    }
}

/// One row of a sample: who it is (as in the report without --watch), its counts, and its
/// change since the previous sample (none the first time it is seen). A row that went away
/// is shown once with nothing left, so the rows' changes add up to the total's.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRow {
    #[serde(flatten)]
    pub id: RowId,
    pub total: u64,
    pub states: StateCounts,
    pub delta: Option<PerState<i64>>,
    /// `delta` per second.
    pub rate: Option<PerState<f64>>,
}

impl SampleRow {
    fn set(&mut self, change: Option<Change>) {
        self.delta = change.map(|c| c.delta);
        self.rate = change.map(|c| c.rate);
    }
}

/// One `--watch` sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Since the watch began.
    pub t_us: u64,
    /// Since the previous sample; none on the first.
    pub interval_us: Option<u64>,
    pub total: u64,
    pub states: StateCounts,
    pub delta: Option<PerState<i64>>,
    /// `delta` per second.
    pub rate: Option<PerState<f64>>,
    /// How the rows are grouped (`netns`, `container`, `process`); absent for one namespace
    /// read whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'static str>,
    pub places: Vec<SampleRow>,
}

/// Remembers the previous sample.
#[derive(Default)]
pub struct Sampler {
    before: Option<(f64, StateCounts)>,
    rows: HashMap<String, SampleRow>,
    order: Vec<String>,
}

impl Sampler {
    /// The sample of counts read at `t` seconds into the watch: `total` for the whole view,
    /// `node` the rows when the view has some.
    pub fn sample(&mut self, t: f64, total: StateCounts, node: Option<NodeStates>) -> Sample {
        let seconds = self.before.as_ref().map(|(bt, _)| t - bt);
        let change = self
            .before
            .as_ref()
            .map(|(bt, b)| Change::between(b, &total, t - bt));
        let by = node.as_ref().map(|n| n.by);
        let mut places = Vec::new();
        let mut next = HashMap::new();
        let mut order = Vec::new();
        if let Some(n) = node {
            for p in n.places {
                let key = p.id.key(n.by);
                let change = match (self.rows.remove(&key), seconds) {
                    (Some(b), Some(s)) => Some(Change::between(&b.states, &p.states, s)),
                    // New since the previous sample: it came from nothing.
                    (None, Some(s)) => Some(Change::between(&StateCounts::default(), &p.states, s)),
                    (_, None) => None,
                };
                let row = row_of(p, change);
                next.insert(key.clone(), row.clone());
                order.push(key);
                places.push(row);
            }
        }
        // Rows gone since the previous sample, in the order they were shown.
        if let Some(s) = seconds {
            for key in &self.order {
                if let Some(mut gone) = self.rows.remove(key) {
                    gone.set(Some(Change::between(
                        &gone.states,
                        &StateCounts::default(),
                        s,
                    )));
                    gone.states = StateCounts::default();
                    gone.total = 0;
                    places.push(gone);
                }
            }
        }
        self.rows = next;
        self.order = order;
        self.before = Some((t, total.clone()));
        Sample {
            kind: "sample",
            t_us: (t * 1e6) as u64,
            interval_us: seconds.map(|s| (s * 1e6) as u64),
            total: total.total(),
            states: total,
            delta: change.map(|c| c.delta),
            rate: change.map(|c| c.rate),
            by,
            places,
        }
    }
}

fn row_of(p: PlaceStates, change: Option<Change>) -> SampleRow {
    let mut row = SampleRow {
        id: p.id,
        total: p.total,
        states: p.states,
        delta: None,
        rate: None,
    };
    row.set(change);
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::NetnsRef;

    fn counts(tw: u64, est: u64) -> StateCounts {
        let mut c = StateCounts::default();
        c.0[TcpState::TimeWait as usize] = tw;
        c.0[TcpState::Established as usize] = est;
        c
    }

    fn row(inode: u64, states: StateCounts) -> PlaceStates {
        PlaceStates {
            id: RowId {
                netns: vec![NetnsRef {
                    inode,
                    name: None,
                    host: false,
                }],
                container: None,
                owner: None,
                process: None,
            },
            total: states.total(),
            states,
            top_peers: vec![],
            top_time_wait: vec![],
            ephemeral: None,
        }
    }

    fn node(rows: Vec<PlaceStates>) -> NodeStates {
        let mut states = StateCounts::default();
        for r in &rows {
            for (t, n) in states.0.iter_mut().zip(r.states.0.iter()) {
                *t += n;
            }
        }
        NodeStates {
            by: "netns",
            total: states.total(),
            states,
            shared: None,
            places: rows,
        }
    }

    #[test]
    fn changes_and_rates_between_samples() {
        let mut s = Sampler::default();
        let first = s.sample(0.5, counts(10, 3), None);
        assert_eq!(
            (first.delta, first.rate, first.interval_us),
            (None, None, None)
        );
        // 120 more TIME_WAIT, one connection fewer, 5 s later.
        let second = s.sample(5.5, counts(130, 2), None);
        assert_eq!(second.interval_us, Some(5_000_000));
        let d = second.delta.unwrap();
        assert_eq!(d.get(TcpState::TimeWait), 120);
        assert_eq!(d.get(TcpState::Established), -1);
        assert_eq!(second.rate.unwrap().get(TcpState::TimeWait), 24.0);
        let v = serde_json::to_value(&second).unwrap();
        assert_eq!(v["delta"]["time-wait"], 120);
        assert_eq!(v["rate"]["established"], -0.2);
        assert!(v.get("by").is_none());
    }

    #[test]
    fn rows_new_and_gone_add_up_to_the_total() {
        let mut s = Sampler::default();
        let first = s.sample(0.0, counts(5, 1), Some(node(vec![row(1, counts(5, 1))])));
        assert!(first.places[0].delta.is_none());
        // Namespace 1 went away, namespace 2 came with 7 TIME_WAIT.
        let second = s.sample(1.0, counts(7, 0), Some(node(vec![row(2, counts(7, 0))])));
        let inodes: Vec<u64> = second.places.iter().map(|p| p.id.netns[0].inode).collect();
        assert_eq!(inodes, vec![2, 1]);
        let tw = |p: &SampleRow| p.delta.unwrap().get(TcpState::TimeWait);
        assert_eq!(tw(&second.places[0]), 7);
        assert_eq!(tw(&second.places[1]), -5);
        assert_eq!(second.places[1].total, 0);
        let sum: i64 = second.places.iter().map(tw).sum();
        assert_eq!(sum, second.delta.unwrap().get(TcpState::TimeWait));
        // Gone rows are said once.
        let third = s.sample(2.0, counts(7, 0), Some(node(vec![row(2, counts(7, 0))])));
        assert_eq!(third.places.len(), 1);
    }
}
