//! `states --watch`: each sample's counts against the previous sample's, as a change and a
//! rate per second, for the whole view and for each row (namespace, container or process).
//! Pure: the command feeds it readings and their times.

use std::collections::HashMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::model::{ProcessRef, TcpState};
use super::node::{NodeStates, PlaceStates};
use super::owned::Holder;
use super::states::StateCounts;
use crate::procs::container::Container;
use crate::scope::NetnsRef;

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
    pub netns: Vec<NetnsRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Holder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
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
                let key = p.key(n.by);
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
        netns: p.netns,
        container: p.container,
        owner: p.owner,
        process: p.process,
        total: p.total,
        states: p.states,
        delta: None,
        rate: None,
    };
    row.set(change);
    row
}
