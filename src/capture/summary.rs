//! Per-destination summary of flows: counts per outcome and handshake RTT percentiles.
//! Built incrementally, so flows need not be kept to be counted.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;

use super::model::{DestSummary, Flow, Outcome, Side};
use super::tracker::FxHasher;

#[derive(Default)]
struct Agg {
    counts: [u64; Outcome::ALL.len()],
    reset_by_server: u64,
    syn_retransmits: u64,
    rtts: Vec<u64>,
}

/// Destinations in first-seen order with an index by address; most flows go to the
/// destination of the flow before, so that one is checked first.
#[derive(Default)]
pub struct SummaryBuilder {
    dests: Vec<(SocketAddr, Agg)>,
    index: HashMap<SocketAddr, usize, BuildHasherDefault<FxHasher>>,
    last: usize,
}

impl SummaryBuilder {
    pub fn add(&mut self, f: &Flow) {
        let i = match self.dests.get(self.last) {
            Some((server, _)) if *server == f.server => self.last,
            _ => *self.index.entry(f.server).or_insert_with(|| {
                self.dests.push((f.server, Agg::default()));
                self.dests.len() - 1
            }),
        };
        self.last = i;
        let a = &mut self.dests[i].1;
        let i = Outcome::ALL
            .iter()
            .position(|o| *o == f.outcome)
            .unwrap_or(0);
        a.counts[i] += 1;
        if f.outcome == Outcome::Reset && f.reset_by == Some(Side::Server) {
            a.reset_by_server += 1;
        }
        a.syn_retransmits += u64::from(f.syn_attempts.saturating_sub(1));
        if let Some(rtt) = f.handshake_rtt_us {
            a.rtts.push(rtt);
        }
    }

    /// Destinations in address order.
    pub fn finish(mut self) -> Vec<DestSummary> {
        self.dests.sort_unstable_by_key(|(server, _)| *server);
        self.dests
            .into_iter()
            .map(|(server, mut a)| {
                a.rtts.sort_unstable();
                let c = a.counts;
                DestSummary {
                    server,
                    attempts: c.iter().sum(),
                    established: c[0],
                    refused: c[1],
                    unanswered: c[2],
                    reset: c[3],
                    reset_by_server: a.reset_by_server,
                    closed: c[4],
                    open: c[5],
                    pending: c[6],
                    aborted: c[7],
                    syn_retransmits: a.syn_retransmits,
                    rtt_min_us: a.rtts.first().copied(),
                    rtt_median_us: nearest_rank(&a.rtts, 50),
                    rtt_p99_us: nearest_rank(&a.rtts, 99),
                }
            })
            .collect()
    }
}

/// The nearest-rank percentile of sorted samples: an observed value, never interpolated.
pub fn nearest_rank(sorted: &[u64], pct: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (n * pct as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn percentiles_are_observed_values() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 99), Some(99));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[], 50), None);
    }
}
