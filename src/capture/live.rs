//! A live capture running on its own thread: `Capture::start(&spec)` opens the device (inside
//! `--netns` if given, on that thread, since setns is per thread), `stop()` ends it and hands
//! back the report. Used by `sockscope capture` and by `doctor --capture`.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::libpcap::{self, Packet};
use super::local::{dump_namespace, name_report, Dump, SocketIndex};
use super::model::{Broke, CaptureReport, Flow, Segment};
use super::pcapwrite::PcapWriter;
use super::pipeline::{ts_us, Pipeline};
use super::source::{
    open_live, pcap_err, Breaker, CaptureError, Live, Reader, FULL_SNAPLEN, SNAPLEN, TIMEOUT_MS,
};
use super::tracker::{Event, DEFAULT_MAX_FLOWS};
use crate::host::Host;
use crate::netns::{self, NetnsSpec};

/// What to capture. `Default` is: all devices (`any`), no restriction, no file, until stopped.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    /// Device name; `any` for all of them.
    pub device: String,
    pub port: Option<u16>,
    pub host: Option<IpAddr>,
    /// Write matching packets to this pcap file.
    pub write: Option<PathBuf>,
    /// Flush the file after every packet (tcpdump's `-U`), so a reader can follow it; else it
    /// is flushed at least once a second.
    pub packet_buffered: bool,
    /// Capture every TCP packet of the matched flows, whole (`--full`), not only the
    /// handshake-relevant ones at a short snap length. The analysis is the same.
    pub full: bool,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    pub netns: Option<NetnsSpec>,
    pub max_flows: usize,
    /// Deliver each packet at once (for a live view) instead of in batches (cheaper).
    pub immediate: bool,
    /// Send (segment, event) pairs to [`Capture::events`] as they happen.
    pub live_events: bool,
    /// Send each flow to [`Capture::take_flows`] once it finished (in batches, one per
    /// kernel block) instead of keeping them for the report.
    pub stream_flows: bool,
    /// Name the local processes of the flows (sock_diag dumps of the namespace at the start
    /// and the end, then one fd walk): see [`super::local`].
    pub name_processes: bool,
    /// Written one byte when the capture ends on its own, so a caller can block on it (with
    /// signals on the same pipe) instead of polling.
    pub notify_end: Option<Arc<UnixStream>>,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        CaptureSpec {
            device: "any".into(),
            port: None,
            host: None,
            write: None,
            packet_buffered: false,
            full: false,
            count: None,
            duration: None,
            netns: None,
            max_flows: DEFAULT_MAX_FLOWS,
            immediate: false,
            live_events: false,
            stream_flows: false,
            name_processes: false,
            notify_end: None,
        }
    }
}

/// One tracker event as it happened, for the live view.
#[derive(Debug, Clone, Copy)]
pub struct LiveEvent {
    pub segment: Segment,
    pub event: Event,
}

/// What the caller's thread and the capture thread share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// The reader's handle to wake a blocked read; set once the device is open.
    breaker: Mutex<Option<Breaker>>,
    /// Set once a second while writing a file: the capture loop flushes it (the reader's wait
    /// is broken to get there, since an idle device may keep it waiting forever).
    flush_due: AtomicBool,
    /// Live events dropped because the reader fell behind.
    lost_events: AtomicU64,
    /// Frames read and connection attempts seen so far, updated once per kernel block.
    frames: AtomicU64,
    attempts: AtomicU64,
}

impl Shared {
    fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(b) = self.breaker.lock() {
            if let Some(b) = b.as_ref() {
                b.wake();
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn request_flush(&self) {
        self.flush_due.store(true, Ordering::SeqCst);
        if let Ok(b) = self.breaker.lock() {
            if let Some(b) = b.as_ref() {
                b.wake();
            }
        }
    }
}

/// A running capture.
pub struct Capture {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<CaptureReport, CaptureError>>>,
    events: Option<Receiver<LiveEvent>>,
    flows: Option<Receiver<Vec<Flow>>>,
    /// libpcap link type of the device (DLT_*).
    pub linktype: i32,
    start_sockets: Option<SocketIndex>,
}

impl Capture {
    /// Opens the device and starts capturing. Returns once packets are being captured, so
    /// traffic made after this returns is seen; open errors come back here.
    /// `host` is `'static`: the capture thread outlives this call.
    pub fn start(host: &'static dyn Host, spec: &CaptureSpec) -> Result<Capture, CaptureError> {
        // Without libpcap, fail here: before a thread, a namespace or a file.
        libpcap::ensure_loaded().map_err(|e| pcap_err("load", e))?;
        let spec = spec.clone();
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(i32, SocketIndex), CaptureError>>();
        let (ev_tx, ev_rx) = if spec.live_events {
            let (tx, rx) = mpsc::sync_channel(65_536);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // Unbounded: every finished flow must reach the output; batches keep it to one send
        // per kernel block.
        let (flow_tx, flow_rx) = if spec.stream_flows {
            let (tx, rx) = mpsc::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("sockscope-capture".into())
                .spawn(move || {
                    let notify = spec.notify_end.clone();
                    let report = run(host, spec, &shared, ready_tx, ev_tx, flow_tx);
                    if let Some(n) = notify {
                        let _ = (&*n).write_all(b"e");
                    }
                    report
                })
                .map_err(|e| CaptureError::Pcap {
                    what: "start the capture thread".into(),
                    msg: e.to_string(),
                })?
        };
        match ready_rx.recv() {
            Ok(Ok((linktype, start_sockets))) => Ok(Capture {
                shared,
                thread: Some(thread),
                events: ev_rx,
                flows: flow_rx,
                linktype,
                start_sockets: Some(start_sockets),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => CaptureError::Pcap {
                    what: "start capturing".into(),
                    msg: "the capture thread ended early".into(),
                },
            }),
        }
    }

    /// Takes the receiver of live events (when the spec asked for them). It outlives the
    /// capture: events from the final drain arrive before `stop` returns.
    pub fn take_events(&mut self) -> Option<Receiver<LiveEvent>> {
        self.events.take()
    }

    /// Takes the receiver of finished flows (when the spec asked to stream them). Batches
    /// sent before the capture ended arrive before `stop` returns; the flows still in
    /// progress at the end are in the report.
    pub fn take_flows(&mut self) -> Option<Receiver<Vec<Flow>>> {
        self.flows.take()
    }

    /// The listeners of the namespace when the capture started (none unless the spec asked to
    /// name processes): enough to name the listener a SYN goes to in the live lines.
    pub fn take_start_sockets(&mut self) -> SocketIndex {
        self.start_sockets.take().unwrap_or_default()
    }

    /// Live events dropped because the reader fell behind.
    pub fn lost_events(&self) -> u64 {
        self.shared.lost_events.load(Ordering::Relaxed)
    }

    /// Frames read and connection attempts seen so far (for a progress line).
    pub fn progress(&self) -> (u64, u64) {
        (
            self.shared.frames.load(Ordering::Relaxed),
            self.shared.attempts.load(Ordering::Relaxed),
        )
    }

    /// True once the capture ended on its own (count or duration reached, or an error).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the capture (packets already in the kernel buffer are still read), closes the
    /// file and returns what was seen. A capture that broke off after it started (the device
    /// failed, the file could not be written) still returns its report, marked partial.
    pub fn stop(mut self) -> Result<CaptureReport, CaptureError> {
        self.shared.request_stop();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => Err(CaptureError::Pcap {
                what: "capture".into(),
                msg: "the capture thread panicked".into(),
            }),
        }
    }
}

/// A capture dropped without `stop` (an error path in the caller) still ends its thread and
/// closes its file; the report is discarded.
impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.request_stop();
            let _ = t.join();
        }
    }
}

fn run(
    host: &dyn Host,
    spec: CaptureSpec,
    shared: &Arc<Shared>,
    ready: mpsc::Sender<Result<(i32, SocketIndex), CaptureError>>,
    events: Option<SyncSender<LiveEvent>>,
    flows: Option<mpsc::Sender<Vec<Flow>>>,
) -> Result<CaptureReport, CaptureError> {
    let opened = (|| {
        netns::enter_opt(host, spec.netns.as_ref())?;
        let shown = spec.netns.as_ref().map(|n| n.to_string());
        let Live { cap, loopback } = open_live(
            &spec.device,
            spec.port,
            spec.host,
            spec.immediate,
            spec.full,
            shown.as_deref(),
        )?;
        let snaplen = if spec.full { FULL_SNAPLEN } else { SNAPLEN };
        let save = match &spec.write {
            Some(path) => Some(
                PcapWriter::create(path, cap.datalink(), snaplen as u32).map_err(|e| {
                    CaptureError::WriteFile {
                        path: path.clone(),
                        msg: e.to_string(),
                    }
                })?,
            ),
            None => None,
        };
        if let Ok(mut b) = shared.breaker.lock() {
            *b = Some(cap.breaker());
        }
        Ok((cap, save, loopback))
    })();
    let (mut cap, mut save, loopback) = match opened {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(Pipeline::new(0, 1).finish(None));
        }
    };
    let linktype = cap.datalink();
    // The start dump, before traffic made after `start` returns: it knows the listeners
    // that may be gone by the end. Listeners only: a tracked flow begins with a SYN after
    // this, so its sockets are in the end dump if anywhere (bar one opened in the moment
    // between opening the device and this dump, which then names it only if still there).
    let mut sockets = SocketIndex::default();
    let mut local_notes = Vec::new();
    if spec.name_processes {
        if let Err(e) = dump_namespace(host, &mut sockets, Dump::Listeners) {
            local_notes.push(format!("local processes of the flows not named: {e}"));
        }
    }
    let _ = ready.send(Ok((linktype, sockets.clone())));

    let mut pipe = Pipeline::new(linktype, spec.max_flows);
    if flows.is_some() {
        pipe.stream_flows();
    }
    let send_flows = |pipe: &mut Pipeline| {
        if let Some(tx) = &flows {
            let done = pipe.take_finished();
            if !done.is_empty() {
                let _ = tx.send(done);
            }
        }
    };
    let deadline = spec.duration.map(|d| Instant::now() + d);
    let limit = spec.count.unwrap_or(u64::MAX);
    let mut sink = Sink {
        save: save.take(),
        packet_buffered: spec.packet_buffered,
        write_error: None,
        events,
        shared: shared.clone(),
    };
    let mut failure = None;
    // A quiet device may keep the reader waiting past its timeout; a timer wakes it for
    // --duration like a stop request would, and once a second to flush the file.
    let flush_every = sink.save.is_some().then_some(Duration::from_secs(1));
    let _timer = (deadline.is_some() || flush_every.is_some())
        .then(|| Timer::start(deadline, flush_every, shared.clone()));
    loop {
        shared.frames.store(pipe.frames(), Ordering::Relaxed);
        shared.attempts.store(pipe.attempts(), Ordering::Relaxed);
        if shared.stopping()
            || pipe.frames() >= limit
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        // A dispatch hands over whole kernel blocks per call: far cheaper per packet than one
        // read per packet (pcap_next_ex) at tens of thousands of packets a second.
        let room = usize::try_from(limit - pipe.frames())
            .unwrap_or(usize::MAX)
            .min(i32::MAX as usize);
        let want = (limit != u64::MAX).then_some(room);
        let read = cap.dispatch(want, |p| sink.packet(&mut pipe, &p));
        send_flows(&mut pipe);
        match read {
            Ok(0) => {
                if let Some(s) = sink.save.as_mut() {
                    let _ = s.flush();
                }
            }
            Ok(_) => {}
            // A break (stop request or flush timer) answers Ok(0): the loop condition sees
            // the stop, the flush is done below. An error while stopping is not a failure.
            Err(_) if shared.stopping() => {}
            Err(e) => {
                let what = format!("read packets from {}", spec.device);
                let msg = e.to_string();
                let e = match cap {
                    Reader::Ring(_) => CaptureError::Device { what, msg },
                    Reader::Pcap(_) => CaptureError::Pcap { what, msg },
                };
                failure = Some((Broke::Device, e));
                break;
            }
        }
        if shared.flush_due.swap(false, Ordering::SeqCst) {
            sink.flush();
        }
    }
    // Drain: packets already captured by the kernel belong to this capture (a test's last
    // RST, the last second before Ctrl-C). The kernel hands a partly filled block over only
    // when its retire timer fires, which a loaded machine can delay well past the buffer
    // timeout, and a blocking read on an idle device never returns; so poll without blocking
    // while the kernel's own count says packets are still outstanding, and stop after a
    // quiet spell or a hard bound.
    let mut cap = Some(cap);
    if failure.is_none() && pipe.frames() < limit {
        // Only what was captured before the stop: under steady traffic the buffer never
        // empties, so packets stamped after it end the drain.
        let stopped_us = now_us();
        // Stopped by a signal or --duration: that is when the capture ended (with -c it
        // ended at the packet that reached the count).
        pipe.ended_at(stopped_us);
        cap = cap.and_then(|c| c.set_nonblocking().ok());
        let doubled = if loopback {
            Doubled::All
        } else if spec.device == "any" {
            Doubled::LoopbackAddressed
        } else {
            Doubled::None
        };
        if let Some(c) = cap.as_mut() {
            drain(c, &mut pipe, &mut sink, limit, stopped_us, doubled);
        }
    }
    let kernel = cap
        .as_mut()
        .and_then(|c| c.stats().ok())
        .map(|s| (s.received as u64, s.dropped as u64, s.if_dropped as u64));
    if let Some(mut s) = sink.save.take() {
        if let Some(e) = sink.write_error.take().or_else(|| s.flush().err()) {
            failure.get_or_insert((
                Broke::Write,
                CaptureError::WriteFile {
                    path: spec.write.clone().unwrap_or_default(),
                    msg: e.to_string(),
                },
            ));
        }
    }
    // What was captured before it broke off is still worth its report (marked partial).
    if let Some((why, e)) = failure {
        pipe.broke(why, e.to_string());
    }
    send_flows(&mut pipe);
    let mut report = pipe.finish(kernel);
    // The end dump, still in the capture's namespace: the connections opened meanwhile.
    if spec.name_processes && local_notes.is_empty() && !report.flows.is_empty() {
        match dump_namespace(host, &mut sockets, Dump::Every) {
            Ok(()) => name_report(host, &mut report, &sockets),
            Err(e) => local_notes.push(format!("local processes of the flows not named: {e}")),
        }
    }
    report.local_notes.splice(0..0, local_notes);
    Ok(report)
}

/// Which packets the kernel's `received` counts twice: those that crossed a loopback device,
/// seen by the tap going out and coming in (the reader drops the outgoing copy itself, as libpcap does).
#[derive(Debug, Clone, Copy)]
enum Doubled {
    /// A loopback device: every packet.
    All,
    /// `any`: the loopback device's packets among others. Those with loopback addresses at
    /// both ends are known; traffic between a host's own other addresses also crosses `lo`
    /// and is not, so the drain then waits out its bound, as it did before it knew any.
    LoopbackAddressed,
    None,
}

impl Doubled {
    fn count(self, pipe: &Pipeline) -> u64 {
        match self {
            Doubled::All => pipe.frames(),
            Doubled::LoopbackAddressed => pipe.loopback_segments(),
            Doubled::None => 0,
        }
    }
}

/// Reads what the kernel still holds after a stop (see the caller). `cap` is non-blocking.
fn drain(
    cap: &mut Reader,
    pipe: &mut Pipeline,
    sink: &mut Sink,
    limit: u64,
    stopped_us: u64,
    doubled: Doubled,
) {
    let started = Instant::now();
    let give_up = started + Duration::from_secs(3);
    // Packets still in flight when the stop came (the kernel has not counted them yet).
    let grace = Duration::from_millis(TIMEOUT_MS as u64 + 20);
    let mut last_packet = started;
    let mut read_after_stop = 0u64;
    while pipe.frames() < limit && read_after_stop == 0 && Instant::now() < give_up {
        let before = pipe.frames();
        let _ = cap.dispatch(None, |p| {
            if ts_us(&p.header.ts) <= stopped_us {
                sink.packet(pipe, &p)
            } else {
                read_after_stop += 1;
            }
        });
        if pipe.frames() > before {
            last_packet = Instant::now();
            continue;
        }
        let outstanding = cap.stats().ok().is_some_and(|s| {
            let kept = (s.received as u64).saturating_sub(s.dropped as u64);
            kept.saturating_sub(doubled.count(pipe)) > pipe.frames()
        });
        // Where the double count is not fully known "outstanding" may never clear: bounded.
        let waited = last_packet.elapsed();
        if (waited >= grace && !outstanding) || waited >= 12 * grace {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sets the stop flag and breaks the reader's wait at a deadline, and asks for a flush every
/// `flush_every`; ends early (within 50 ms) when dropped, so no thread outlives the capture
/// for long.
struct Timer {
    done: Arc<AtomicBool>,
    thread: thread::Thread,
}

impl Timer {
    /// Sleeps until the next thing due (the deadline, a flush), not in short polls: a
    /// wake-up every 50 ms was a few percent of a busy capture's CPU on a VM. Dropping the
    /// timer wakes it to end.
    fn start(at: Option<Instant>, flush_every: Option<Duration>, shared: Arc<Shared>) -> Timer {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let handle = thread::spawn(move || {
            let mut next_flush = flush_every.map(|every| Instant::now() + every);
            while !d.load(Ordering::SeqCst) {
                let now = Instant::now();
                if at.is_some_and(|at| now >= at) {
                    shared.request_stop();
                    return;
                }
                if let (Some(due), Some(every)) = (next_flush, flush_every) {
                    if now >= due {
                        shared.request_flush();
                        next_flush = Some(now + every);
                    }
                }
                match [at, next_flush].into_iter().flatten().min() {
                    Some(due) => thread::park_timeout(due.saturating_duration_since(now)),
                    None => return,
                }
            }
        });
        Timer {
            done,
            thread: handle.thread().clone(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Where captured packets go besides the tracker: the pcap file and the live view.
struct Sink {
    save: Option<PcapWriter>,
    /// Flush after every packet (`-U`).
    packet_buffered: bool,
    /// The first write error; the capture goes on (the analysis is still worth having).
    write_error: Option<std::io::Error>,
    events: Option<SyncSender<LiveEvent>>,
    shared: Arc<Shared>,
}

impl Sink {
    fn flush(&mut self) {
        if let Some(Err(e)) = self.save.as_mut().map(|s| s.flush()) {
            self.write_error.get_or_insert(e);
        }
    }

    fn packet(&mut self, pipe: &mut Pipeline, p: &Packet<'_>) {
        if let Some(s) = self.save.as_mut() {
            let h = p.header;
            let mut written = s.write(h.ts.tv_sec as u32, h.ts.tv_usec as u32, h.len, p.data);
            if self.packet_buffered {
                written = written.and_then(|_| s.flush());
            }
            if let Err(e) = written {
                self.write_error.get_or_insert(e);
            }
        }
        let t = ts_us(&p.header.ts);
        if let Some((segment, event)) = pipe.frame(t, p.data) {
            if let Some(tx) = &self.events {
                if let Err(TrySendError::Full(_)) = tx.try_send(LiveEvent { segment, event }) {
                    self.shared.lost_events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
