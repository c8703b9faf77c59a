//! One captured frame → decode → tracker, with the counters. Shared by live captures and file
//! reads so both analyse exactly alike. Pure: fed timestamps and bytes.

use std::net::IpAddr;

use super::decode::decode;
use super::model::{Broke, CaptureReport, CaptureStats, Flow, Segment};
use super::tracker::{Event, Tracker};

pub struct Pipeline {
    linktype: i32,
    port: Option<u16>,
    host: Option<IpAddr>,
    tracker: Tracker,
    stats: CaptureStats,
    loopback_segments: u64,
    /// When a live capture stopped (Ctrl-C, --duration); None: at its last segment.
    ended_us: Option<u64>,
}

impl Pipeline {
    pub fn new(linktype: i32, max_flows: usize) -> Pipeline {
        Pipeline {
            linktype,
            port: None,
            host: None,
            tracker: Tracker::new(max_flows),
            stats: CaptureStats::default(),
            loopback_segments: 0,
            ended_us: None,
        }
    }

    /// Keeps only segments with this port / address at either end (for files: a live
    /// capture has the kernel do it).
    pub fn restrict(&mut self, port: Option<u16>, host: Option<IpAddr>) {
        self.port = port;
        self.host = host;
    }

    /// Feeds one frame captured at `ts_us`. Returns the segment and what it meant, when it
    /// meant something.
    pub fn frame(&mut self, ts_us: u64, data: &[u8]) -> Option<(Segment, Event)> {
        self.frame_of(self.linktype, ts_us, data)
    }

    /// [`Pipeline::frame`] for a frame of its own link type (pcapng files mix interfaces).
    pub fn frame_of(&mut self, linktype: i32, ts_us: u64, data: &[u8]) -> Option<(Segment, Event)> {
        self.stats.received += 1;
        match decode(linktype, ts_us, data) {
            Ok(seg) => {
                if self
                    .port
                    .is_some_and(|p| seg.src.port() != p && seg.dst.port() != p)
                    || self
                        .host
                        .is_some_and(|h| seg.src.ip() != h && seg.dst.ip() != h)
                {
                    return None;
                }
                self.stats.tcp_segments += 1;
                self.stats.truncated += u64::from(seg.cut);
                if seg.src.ip().is_loopback() && seg.dst.ip().is_loopback() {
                    self.loopback_segments += 1;
                }
                self.tracker.feed(&seg).map(|e| (seg, e))
            }
            Err(_) => {
                self.stats.undecoded += 1;
                None
            }
        }
    }

    /// The input broke off (a damaged file): the report will say it is partial, and why.
    pub fn read_error(&mut self, msg: String) {
        self.broke(Broke::Input, msg);
    }

    /// The capture broke off (`why`): the report will say it is partial, and why. The first
    /// cause is kept.
    pub fn broke(&mut self, why: Broke, msg: String) {
        self.stats.partial = true;
        if self.stats.read_error.is_none() {
            self.stats.read_error = Some(msg);
            self.stats.broke = Some(why);
        }
    }

    /// Hands out each flow as it finishes ([`Pipeline::take_finished`]) instead of keeping
    /// a list: `--jsonl` writes them as they end, so no cap applies.
    pub fn stream_flows(&mut self) {
        self.tracker.stream_flows();
    }

    /// The flows finished since the last call (streaming mode).
    pub fn take_finished(&mut self) -> Vec<Flow> {
        self.tracker.take_finished()
    }

    /// Segments between two loopback addresses so far (they crossed the `lo` device).
    pub fn loopback_segments(&self) -> u64 {
        self.loopback_segments
    }

    /// Connection attempts (flows begun by a SYN) so far.
    pub fn attempts(&self) -> u64 {
        self.tracker.flows_started()
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u64 {
        self.stats.received
    }

    /// Records that a live capture was stopped at `ts_us` (a signal or --duration): a SYN is
    /// `pending` or `unanswered` by its age then. Without it (a file; `-c`, which ends at the
    /// packet that reached the count) the capture ends at its last packet.
    pub fn ended_at(&mut self, ts_us: u64) {
        self.ended_us = Some(ts_us);
    }

    /// Ends the analysis. `kernel` carries libpcap's received/dropped counters for a live
    /// capture (they replace the count of frames read, which excludes drops).
    pub fn finish(self, kernel: Option<(u64, u64, u64)>) -> CaptureReport {
        let mut stats = self.stats;
        if let Some((received, dropped, if_dropped)) = kernel {
            stats.received = received.max(stats.received);
            stats.dropped = dropped;
            stats.if_dropped = if_dropped;
        }
        let r = match self.ended_us {
            Some(end) => self.tracker.finish_at(end),
            None => self.tracker.finish(),
        };
        stats.midstream = r.midstream;
        stats.evicted = r.evicted;
        stats.flows_omitted = r.flows_omitted;
        let verdicts = super::verdict::verdicts(&r.summary);
        CaptureReport::new(r.flows, r.summary, verdicts, stats)
    }
}

/// Microseconds since the epoch from a pcap timeval (negative times clamp to 0).
pub fn ts_us(tv: &libc::timeval) -> u64 {
    // time_t and suseconds_t are i64 on 64-bit Linux; the allow keeps 32-bit builds working.
    #[allow(clippy::useless_conversion)]
    let (sec, usec) = (i64::from(tv.tv_sec), i64::from(tv.tv_usec));
    (sec.max(0) as u64)
        .saturating_mul(1_000_000)
        .saturating_add(usec.max(0) as u64)
}
