//! Leak detection for `fds --watch` (pure): a least-squares growth rate over each process's
//! samples and the time left until it reaches its soft limit at that rate.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::model::FdUsage;

/// Samples kept per process: enough for minutes of history at the default 1 s interval,
/// bounded so a long watch does not grow without end.
pub const MAX_SAMPLES: usize = 600;

/// The slope of `fds` over `t` (seconds) by ordinary least squares; `None` with fewer than two
/// distinct times.
pub fn rate(samples: &[(f64, f64)]) -> Option<f64> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut sty, mut stt) = (0.0, 0.0);
    for &(t, y) in samples {
        sty += (t - mean_t) * (y - mean_y);
        stt += (t - mean_t) * (t - mean_t);
    }
    (stt > 0.0).then(|| sty / stt)
}

/// Seconds until `fds` reaches `soft` at `rate` fds/s; only for a growing process with a limit.
pub fn seconds_to_limit(fds: u64, soft: Option<u64>, rate: Option<f64>) -> Option<f64> {
    match (soft, rate) {
        (Some(soft), Some(r)) if r > 0.0 => Some(soft.saturating_sub(fds) as f64 / r),
        _ => None,
    }
}

/// One process's history.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    samples: VecDeque<(f64, f64)>,
    first_fds: u64,
    /// The kinds when they were first read for this process (`--watch --kinds`).
    first_kinds: Option<BTreeMap<String, u64>>,
}

/// Per-process samples across a watch.
#[derive(Debug, Default)]
pub struct Tracker {
    series: HashMap<u32, Series>,
}

/// A process's trend as of the last sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trend {
    pub pid: u32,
    pub name: String,
    /// The kernel's count of the fds in use; with `--watch --kinds`, the open fds (what the
    /// kinds sum to), the slots reserved but not open being in `reserved`.
    pub fds: Option<u64>,
    /// Fd slots taken but not open (a blocked `accept()` holds one), when the fds were listed
    /// (`--watch --kinds`): `fds + reserved` is what the soft limit sees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved: Option<u64>,
    pub soft_limit: Option<u64>,
    pub hard_limit: Option<u64>,
    /// fds/s by least squares over the samples so far; `None` before two samples.
    pub rate_per_s: Option<f64>,
    /// At `rate_per_s`, seconds until `fds` reaches `soft_limit`; only when growing.
    pub seconds_to_limit: Option<f64>,
    /// fds at the first sample of this process, to show how much it grew.
    pub first_fds: Option<u64>,
    pub samples: usize,
    /// The fds by kind at this sample (`--watch --kinds`, shown rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<BTreeMap<String, u64>>,
    /// Change per kind since the kinds were first read for this process; kinds that did not
    /// change are left out. Says what leaks: sockets, files, pipes…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds_grew: Option<BTreeMap<String, i64>>,
}

impl Tracker {
    /// Adds one scan taken `t` seconds into the watch and returns every readable process's
    /// trend. A pid whose name changed is a new process (pid reuse): its history restarts;
    /// processes absent from the scan (exited) are forgotten.
    pub fn add(&mut self, t: f64, scan: &[FdUsage]) -> Vec<Trend> {
        let mut alive: HashMap<u32, Series> = HashMap::with_capacity(scan.len());
        let mut trends = Vec::with_capacity(scan.len());
        for u in scan {
            let mut s = match self.series.remove(&u.pid) {
                Some(s) if s.name == u.name => s,
                _ => Series {
                    name: u.name.clone(),
                    samples: VecDeque::new(),
                    first_fds: u.fds.unwrap_or(0),
                    first_kinds: None,
                },
            };
            if let Some(fds) = u.fds {
                if s.samples.len() == MAX_SAMPLES {
                    s.samples.pop_front();
                }
                s.samples.push_back((t, fds as f64));
            }
            let r = rate(s.samples.make_contiguous());
            trends.push(Trend {
                pid: u.pid,
                name: u.name.clone(),
                fds: u.fds,
                reserved: None,
                soft_limit: u.soft_limit,
                hard_limit: u.hard_limit,
                rate_per_s: r,
                seconds_to_limit: u.fds.and_then(|f| seconds_to_limit(f, u.soft_limit, r)),
                first_fds: u.fds.map(|_| s.first_fds),
                samples: s.samples.len(),
                kinds: None,
                kinds_grew: None,
            });
            alive.insert(u.pid, s);
        }
        self.series = alive;
        trends
    }
}

impl Tracker {
    /// Records the kinds just read for `trend`'s process and fills in its `kinds` and
    /// `kinds_grew` (against the first kinds read for it). Call after [`Tracker::add`].
    pub fn add_kinds(&mut self, trend: &mut Trend, kinds: BTreeMap<String, u64>) {
        let Some(s) = self.series.get_mut(&trend.pid) else {
            return;
        };
        let first = s.first_kinds.get_or_insert_with(|| kinds.clone());
        let grew = kinds
            .iter()
            .map(|(k, &now)| (k, now as i64 - first.get(k).copied().unwrap_or(0) as i64))
            .chain(
                first
                    .iter()
                    .filter(|(k, _)| !kinds.contains_key(*k))
                    .map(|(k, &was)| (k, -(was as i64))),
            )
            .filter(|(_, d)| *d != 0)
            .map(|(k, d)| (k.clone(), d))
            .collect();
        trend.kinds = Some(kinds);
        trend.kinds_grew = Some(grew);
    }
}

impl Trend {
    /// The fds the soft limit counts: open ones plus reserved slots.
    pub fn in_use(&self) -> Option<u64> {
        self.fds.map(|f| f + self.reserved.unwrap_or(0))
    }
}

/// Watch order: soonest to hit its limit first, then the rest by use as in `fds`.
pub fn rank_trends(trends: &mut [Trend]) {
    trends.sort_by(|a, b| {
        let eta = |t: &Trend| t.seconds_to_limit.unwrap_or(f64::INFINITY);
        let pct = |t: &Trend| match (t.in_use(), t.soft_limit) {
            (Some(f), Some(s)) if s > 0 => f as f64 / s as f64,
            _ => -1.0,
        };
        eta(a)
            .total_cmp(&eta(b))
            .then_with(|| pct(b).total_cmp(&pct(a)))
            .then_with(|| b.in_use().cmp(&a.in_use()))
            .then_with(|| a.pid.cmp(&b.pid))
    });
}

/// The processes that grew during the watch, soonest to exhaustion first.
pub fn growing(trends: &[Trend]) -> Vec<Trend> {
    let mut g: Vec<Trend> = trends
        .iter()
        .filter(|t| t.rate_per_s.is_some_and(|r| r > 0.0))
        .cloned()
        .collect();
    rank_trends(&mut g);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(pid: u32, name: &str, fds: u64) -> FdUsage {
        FdUsage {
            pid,
            name: name.into(),
            fds: Some(fds),
            soft_limit: Some(1000),
            hard_limit: Some(4096),
            sockets: None,
            kinds: None,
        }
    }

    #[test]
    fn least_squares_slope() {
        assert_eq!(rate(&[(0.0, 10.0)]), None);
        assert_eq!(rate(&[(1.0, 10.0), (1.0, 12.0)]), None);
        assert_eq!(rate(&[(0.0, 10.0), (1.0, 12.0), (2.0, 14.0)]), Some(2.0));
        // A noisy line: the fit is 23/5 (worked by hand: Σ(t-t̄)(y-ȳ)=23, Σ(t-t̄)²=5).
        let s = [(0.0, 4.0), (1.0, 7.0), (2.0, 14.0), (3.0, 17.0)];
        assert!((rate(&s).unwrap() - 4.6).abs() < 1e-9);
        assert_eq!(rate(&[(0.0, 7.0), (5.0, 7.0)]), Some(0.0));
    }

    #[test]
    fn time_to_limit_only_when_growing() {
        assert_eq!(seconds_to_limit(100, Some(256), Some(12.0)), Some(13.0));
        assert_eq!(seconds_to_limit(100, Some(256), Some(0.0)), None);
        assert_eq!(seconds_to_limit(100, Some(256), Some(-3.0)), None);
        assert_eq!(seconds_to_limit(100, None, Some(2.0)), None);
        assert_eq!(seconds_to_limit(300, Some(256), Some(2.0)), Some(0.0));
    }

    #[test]
    fn tracker_follows_processes_and_restarts_on_pid_reuse() {
        let mut t = Tracker::default();
        t.add(0.0, &[u(1, "leaky", 100), u(2, "calm", 50)]);
        t.add(1.0, &[u(1, "leaky", 110), u(2, "calm", 50)]);
        let tr = t.add(2.0, &[u(1, "leaky", 120), u(2, "calm", 50)]);
        assert_eq!(tr[0].rate_per_s, Some(10.0));
        assert_eq!(tr[0].seconds_to_limit, Some(88.0));
        assert_eq!(tr[0].first_fds, Some(100));
        assert_eq!(tr[1].rate_per_s, Some(0.0));
        assert_eq!(tr[1].seconds_to_limit, None);
        let g = growing(&tr);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].pid, 1);
        // pid 1 exits and its pid comes back as another program; pid 2 is gone.
        let tr = t.add(3.0, &[u(1, "other", 5)]);
        assert_eq!(tr.len(), 1);
        assert_eq!(tr[0].rate_per_s, None);
        assert_eq!(tr[0].samples, 1);
    }

    #[test]
    fn kinds_growth_is_counted_from_the_first_read() {
        let k = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
        };
        let mut t = Tracker::default();
        let mut tr = t.add(0.0, &[u(1, "leaky", 100)]);
        t.add_kinds(&mut tr[0], k(&[("tcp", 10), ("file", 80), ("pipe", 10)]));
        assert_eq!(tr[0].kinds_grew, Some(BTreeMap::new()));
        let mut tr = t.add(1.0, &[u(1, "leaky", 135)]);
        t.add_kinds(&mut tr[0], k(&[("tcp", 50), ("file", 78), ("pipe", 7)]));
        let want: BTreeMap<String, i64> = [("tcp", 40), ("file", -2), ("pipe", -3)]
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(tr[0].kinds_grew, Some(want));
        assert_eq!(tr[0].kinds.as_ref().unwrap()["tcp"], 50);
        // A kind that disappears counts as a drop to zero; one that appears, from zero.
        let mut tr = t.add(2.0, &[u(1, "leaky", 130)]);
        t.add_kinds(&mut tr[0], k(&[("tcp", 50), ("file", 80), ("udp", 2)]));
        let want: BTreeMap<String, i64> = [("tcp", 40), ("pipe", -10), ("udp", 2)]
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(tr[0].kinds_grew, Some(want));
        // A new process under a reused pid starts over.
        let mut tr = t.add(3.0, &[u(1, "other", 5)]);
        t.add_kinds(&mut tr[0], k(&[("file", 5)]));
        assert_eq!(tr[0].kinds_grew, Some(BTreeMap::new()));
    }

    #[test]
    fn watch_order_puts_soonest_exhaustion_first() {
        let mk = |pid, eta: Option<f64>, fds| Trend {
            pid,
            name: String::new(),
            fds: Some(fds),
            reserved: None,
            soft_limit: Some(100),
            hard_limit: None,
            rate_per_s: None,
            seconds_to_limit: eta,
            first_fds: None,
            samples: 1,
            kinds: None,
            kinds_grew: None,
        };
        let mut v = vec![mk(1, None, 90), mk(2, Some(50.0), 10), mk(3, Some(5.0), 10)];
        rank_trends(&mut v);
        assert_eq!(v.iter().map(|t| t.pid).collect::<Vec<_>>(), [3, 2, 1]);
    }
}
