//! `capture` output: one line per handshake event while capturing, then the flows, the
//! per-destination summary and libpcap's counters (or all of it as JSON).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

use serde::Serialize;

use super::{new_table, write_table};
use crate::capture::local::{ListenerNames, LocalProcess};
use crate::capture::model::{Broke, CaptureReport, Flow, Outcome, Segment, Side};
use crate::capture::tracker::Event;
use crate::capture::LiveEvent;
use crate::report::{Format, Output, Report};

/// Flows listed in the table before only the problem ones are shown.
const ALL_FLOWS_UP_TO: usize = 50;
/// Problem flows listed at most; `--json` has them all.
const PROBLEM_ROWS: usize = 200;

/// `12:00:01.000123  10.0.0.5:51234 → 10.0.0.9:443  SYN      (attempt 1)`.
pub fn event_line(seg: &Segment, ev: &Event) -> String {
    let f = seg.flags;
    let label = if f.rst() {
        "RST"
    } else if f.syn() && f.ack() {
        "SYN-ACK"
    } else if f.syn() {
        "SYN"
    } else if f.fin() {
        "FIN"
    } else {
        "ACK"
    };
    let note = match *ev {
        Event::Syn { attempt: 1 } => "(attempt 1)".to_string(),
        Event::Syn { attempt } => format!("(attempt {attempt}: retransmitted, no answer yet)"),
        Event::SynAck {
            rtt_us,
            repeat: false,
        } => format!("(answered in {})", micros(rtt_us)),
        Event::SynAck { repeat: true, .. } => "(retransmitted: our ACK was not seen)".into(),
        Event::Established {
            ack_rtt_us: Some(us),
            ..
        } => format!("→ established (ACK {} after SYN-ACK)", micros(us)),
        Event::Established {
            synack_captured: true,
            ..
        } => "→ established (the client acknowledges the SYN-ACK)".into(),
        Event::Established {
            synack_captured: false,
            ..
        } => "→ established (SYN-ACK not captured; later segments prove the handshake)".into(),
        Event::ChallengeAck => {
            "(challenge ACK: a stale connection on this four-tuple answers the SYN)".into()
        }
        Event::ChallengeRst => "(the client resets the stale connection; its SYN follows)".into(),
        Event::Refused => "→ refused (nothing listens there, or a firewall rejects)".into(),
        Event::Aborted => "→ aborted by the client before the handshake completed".into(),
        Event::Reset { by } => format!("→ reset by the {}", by.name()),
        Event::Fin { by, closed: false } => format!("({} closes)", by.name()),
        Event::Fin { closed: true, .. } => "→ closed".into(),
    };
    format!(
        "{}  {} → {}  {:<8} {}",
        clock(seg.ts_us),
        addr(&seg.src),
        addr(&seg.dst),
        label,
        note
    )
}

fn addr(a: &SocketAddr) -> String {
    a.to_string()
}

/// Local wall-clock time of day with microseconds, as tcpdump prints it.
pub fn clock(ts_us: u64) -> String {
    let secs = (ts_us / 1_000_000) as libc::time_t;
    let micros = ts_us % 1_000_000;
    // SAFETY: localtime_r writes only into the tm we pass; zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("{secs}.{micros:06}");
    }
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

/// A duration in microseconds for people: `45 µs`, `1.204 ms`, `3.001 s`.
pub fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{}.{:03} ms", us / 1_000, us % 1_000)
    } else {
        format!("{}.{:03} s", us / 1_000_000, (us % 1_000_000) / 1_000)
    }
}

/// The processes holding one end of a flow: `nginx(4242)`, with the container when in one:
/// `nginx(4242) in podman/web 3f2a9c…`. Names are untrusted text: escaped.
pub fn processes_label(ps: &[LocalProcess]) -> String {
    ps.iter()
        .map(|p| {
            let c = p
                .container
                .as_ref()
                .map(|c| format!(" in {}", super::container_label(c)))
                .unwrap_or_default();
            format!("{}({}){c}", super::escape(&p.name), p.pid)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An address with the processes behind it, when known.
fn addr_of(a: &SocketAddr, ps: Option<&[LocalProcess]>) -> String {
    match ps {
        Some(ps) if !ps.is_empty() => format!("{a} {}", processes_label(ps)),
        _ => addr(a),
    }
}

/// The server processes named for each destination (all of its flows' that were named,
/// distinct, in first-seen order).
fn servers_named(r: &CaptureReport) -> HashMap<SocketAddr, Vec<String>> {
    let mut named: HashMap<SocketAddr, Vec<String>> = HashMap::new();
    for (i, f) in r.flows.iter().enumerate() {
        let Some(l) = r.local.get(i).filter(|l| !l.server_processes.is_empty()) else {
            continue;
        };
        let label = processes_label(&l.server_processes);
        let v = named.entry(f.server).or_default();
        if !v.contains(&label) {
            v.push(label);
        }
    }
    named
}

fn opt_micros(us: Option<u64>) -> String {
    us.map(micros).unwrap_or_else(|| "-".into())
}

/// What a flow's row says beyond its outcome.
fn detail(f: &Flow) -> String {
    let mut parts = Vec::new();
    if f.syn_attempts > 1 {
        let first = f.syn_times_us.first();
        let times: Vec<String> = f
            .syn_times_us
            .iter()
            .skip(1)
            .map(|t| format!("+{}", micros(t.saturating_sub(first))))
            .collect();
        let unkept = (f.syn_attempts as usize).saturating_sub(f.syn_times_us.len());
        let more = if unkept > 0 {
            format!(" and {unkept} more")
        } else {
            String::new()
        };
        parts.push(format!("SYN retransmitted at {}{more}", times.join(", ")));
    }
    match (f.outcome, f.reset_by) {
        (Outcome::Reset, Some(Side::Client)) => parts.push("reset by the client".into()),
        (Outcome::Reset, Some(Side::Server)) => parts.push("reset by the server".into()),
        (Outcome::Aborted, _) => {
            parts.push("the client reset its own attempt before the handshake completed".into())
        }
        (Outcome::Pending, _) => parts.push("capture ended before an answer could arrive".into()),
        _ => {}
    }
    if f.synack_not_captured {
        parts.push("SYN-ACK not captured (later segments prove the handshake)".into());
    }
    if f.challenge_acks > 0 {
        parts.push(format!(
            "{} challenge ACK(s): a stale connection answered the SYN, the client reset it",
            f.challenge_acks
        ));
    }
    if let (Outcome::Closed, Some(by)) = (f.outcome, f.closed_by) {
        parts.push(format!("{} closed first", by.name()));
    }
    if f.evicted {
        parts.push("evicted from a full flow table".into());
    }
    parts.join("; ")
}

fn is_problem(o: Outcome) -> bool {
    matches!(
        o,
        Outcome::Refused | Outcome::Unanswered | Outcome::Reset | Outcome::Open | Outcome::Aborted
    )
}

/// The stderr progress line of a capture without live lines (rewritten in place with `\r`).
pub fn progress_line(frames: u64, attempts: u64, elapsed: std::time::Duration) -> String {
    format!(
        "sockscope: {frames} packets, {attempts} connection attempts in {} s",
        elapsed.as_secs()
    )
}

/// Rewrites the progress line in place (stderr, a terminal).
pub fn write_progress(
    err: &mut dyn Write,
    frames: u64,
    attempts: u64,
    started: std::time::Instant,
) -> io::Result<()> {
    write!(
        err,
        "\r{}",
        progress_line(frames, attempts, started.elapsed())
    )?;
    err.flush()
}

/// Ends the progress line so what follows starts on its own line.
pub fn end_progress(err: &mut dyn Write) -> io::Result<()> {
    writeln!(err)
}

pub fn write_report_table(out: &mut dyn Write, r: &CaptureReport) -> io::Result<()> {
    let show_all = r.flows.len() <= ALL_FLOWS_UP_TO;
    // With their index in the report, which keys their local processes.
    let shown: Vec<(usize, &Flow)> = r
        .flows
        .iter()
        .enumerate()
        .filter(|(_, f)| show_all || is_problem(f.outcome))
        .take(PROBLEM_ROWS)
        .collect();
    if r.flows.is_empty() {
        writeln!(out, "No connection attempts seen (no SYN captured).")?;
    } else {
        let mut t = new_table(
            &[
                "Client",
                "Server",
                "Outcome",
                "SYNs",
                "Connect",
                "SYN→SYN-ACK",
                "SYN-ACK→ACK",
                "Detail",
            ],
            &[3, 4, 5, 6],
        );
        for &(i, f) in &shown {
            let local = r.local.get(i);
            t.add_row(vec![
                addr_of(&f.client, local.map(|l| &l.client_processes[..])),
                addr_of(&f.server, local.map(|l| &l.server_processes[..])),
                f.outcome.name().to_string(),
                f.syn_attempts.to_string(),
                opt_micros(f.connect_us),
                opt_micros(f.handshake_rtt_us),
                opt_micros(f.ack_rtt_us),
                detail(f),
            ]);
        }
        if !shown.is_empty() {
            write_table(out, &t)?;
        }
        let hidden = r.flows.len() - shown.len();
        if hidden > 0 {
            writeln!(
                out,
                "({hidden} more flows not listed{}; --json lists them all)",
                if show_all { "" } else { ", only problems are" }
            )?;
        }
    }
    if !r.summary.is_empty() {
        writeln!(out)?;
        let mut t = new_table(
            &[
                "Destination",
                "Attempts",
                "Established",
                "Closed",
                "Refused",
                "Unanswered",
                "Reset",
                "Open",
                "Aborted",
                "Pending",
                "SYN retx",
                "RTT min",
                "RTT median",
                "RTT p99",
            ],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
        );
        let named = servers_named(r);
        for d in &r.summary {
            let server = match named.get(&d.server) {
                Some(labels) => format!("{} {}", d.server, labels.join("; ")),
                None => addr(&d.server),
            };
            t.add_row(vec![
                server,
                d.attempts.to_string(),
                d.established.to_string(),
                d.closed.to_string(),
                d.refused.to_string(),
                d.unanswered.to_string(),
                d.reset.to_string(),
                d.open.to_string(),
                d.aborted.to_string(),
                d.pending.to_string(),
                d.syn_retransmits.to_string(),
                opt_micros(d.rtt_min_us),
                opt_micros(d.rtt_median_us),
                opt_micros(d.rtt_p99_us),
            ]);
        }
        write_table(out, &t)?;
    }
    if !r.verdicts.is_empty() {
        writeln!(out, "\nWhat it means:")?;
        for v in &r.verdicts {
            writeln!(
                out,
                "  {} {} ({}): {}",
                addr(&v.server),
                v.symptom,
                v.rule,
                v.text
            )?;
        }
    }
    let s = &r.stats;
    writeln!(
        out,
        "\n{} packets received, {} dropped by the kernel, {} dropped by the interface; \
         {} TCP segments, {} not decoded, {} outside a tracked handshake (connections begun before the capture, or already finished)",
        s.received, s.dropped, s.if_dropped, s.tcp_segments, s.undecoded, s.midstream
    )?;
    if s.truncated > 0 {
        writeln!(
            out,
            "{} TCP headers cut by the snap length: decoded from their fixed 20 bytes, options lost",
            s.truncated
        )?;
    }
    if let Some(e) = &s.read_error {
        match s.broke {
            Some(Broke::Write) => writeln!(
                out,
                "Partial: the -w file is incomplete (the analysis above is not): {e}"
            )?,
            Some(Broke::Device) => writeln!(
                out,
                "Partial: reading packets failed, this is what came before: {e}"
            )?,
            _ => writeln!(
                out,
                "Partial: the input broke off, this is what came before: {e}"
            )?,
        }
    }
    if s.evicted > 0 || s.flows_omitted > 0 {
        writeln!(
            out,
            "Flow table full: {} flows evicted before they finished, {} finished flows counted but not listed (raise --max-flows)",
            s.evicted, s.flows_omitted
        )?;
    }
    Ok(())
}

/// The stderr line that starts a live capture.
pub fn write_banner(
    err: &mut dyn Write,
    device: &str,
    link: &str,
    netns: Option<&str>,
) -> io::Result<()> {
    writeln!(
        err,
        "sockscope: capturing handshakes on {} ({}){}; Ctrl-C to stop",
        super::escape(device),
        super::escape(link),
        netns
            .map(|n| format!(" in network namespace {}", super::escape(n)))
            .unwrap_or_default()
    )
}

/// Prints a capture in the format chosen, as it goes and at the end:
/// - table: a line per handshake event while capturing, then the tables;
/// - `--jsonl`: a `{"type": "flow", …}` line per flow as it ends, then one
///   `{"type": "summary", "summary", "verdicts", "stats"}` line;
/// - `--json`: one document at the end (`main` prints it: compact unless `--pretty`).
pub struct CapturePrinter {
    format: Format,
    /// Names the listener each new attempt goes to in the live lines.
    listeners: Listeners,
}

/// The listeners' names: read on another thread while the capture starts, waited for at the
/// first SYN that needs them.
enum Listeners {
    None,
    Reading(std::thread::JoinHandle<ListenerNames>),
    Read(ListenerNames),
}

impl CapturePrinter {
    pub fn new(output: &Output) -> CapturePrinter {
        CapturePrinter {
            format: output.format,
            listeners: Listeners::None,
        }
    }

    /// Whether a live capture should send its handshake events (the table's live lines).
    pub fn wants_events(&self) -> bool {
        self.format == Format::Table
    }

    /// Whether flows are written as they end (`--jsonl`).
    pub fn streams_flows(&self) -> bool {
        self.format == Format::Jsonl
    }

    /// Live lines name the listener a first SYN goes to, as these knew it at the start
    /// (read by `reading`, joined at the first SYN).
    pub fn name_listeners(&mut self, reading: std::thread::JoinHandle<ListenerNames>) {
        self.listeners = Listeners::Reading(reading);
    }

    pub fn event(&mut self, out: &mut dyn Write, ev: &LiveEvent) -> io::Result<()> {
        let first_syn = ev.event == Event::Syn { attempt: 1 };
        if first_syn && matches!(self.listeners, Listeners::Reading(_)) {
            if let Listeners::Reading(h) = std::mem::replace(&mut self.listeners, Listeners::None) {
                self.listeners = Listeners::Read(h.join().unwrap_or_default());
            }
        }
        let to = match &self.listeners {
            Listeners::Read(l) if first_syn => l.server(ev.segment.dst),
            _ => &[],
        };
        if to.is_empty() {
            writeln!(out, "{}", event_line(&ev.segment, &ev.event))
        } else {
            writeln!(
                out,
                "{} to {}",
                event_line(&ev.segment, &ev.event),
                processes_label(to)
            )
        }
    }

    /// One line per finished flow.
    pub fn flows(&mut self, out: &mut dyn Write, flows: &[Flow]) -> io::Result<()> {
        super::flow_json::write_lines(out, flows.iter().map(|f| (f, None)))
    }

    /// The end of the output. Flows still in the report are written first when they stream;
    /// the rest is the report `main` prints. `live`: event lines came before.
    pub fn finish(
        self,
        out: &mut dyn Write,
        mut report: CaptureReport,
        live: bool,
    ) -> io::Result<Box<dyn Report>> {
        match self.format {
            Format::Table => Ok(Box::new(CaptureTable { report, live })),
            Format::Jsonl => {
                let flows = std::mem::take(&mut report.flows);
                let local = std::mem::take(&mut report.local);
                super::flow_json::write_lines(
                    out,
                    flows.iter().enumerate().map(|(i, f)| (f, local.get(i))),
                )?;
                Ok(Box::new(SummaryLine(report)))
            }
            Format::Json => Ok(Box::new(report)),
        }
    }
}

impl Report for CaptureReport {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_report_table(out, self)
    }
    /// Not through serde: a capture's report holds up to 100k flows (see flow_json). Indented
    /// JSON (`--pretty`), for people, takes serde's way.
    fn write_json(&self, out: &mut dyn Write, output: &Output) -> io::Result<()> {
        if output.format == Format::Json && output.pretty {
            return crate::report::write_versioned(out, self, output);
        }
        super::flow_json::write_report(out, self)
    }
}

/// The tables, after a blank line when live event lines came before them.
struct CaptureTable {
    report: CaptureReport,
    live: bool,
}

impl Report for CaptureTable {
    fn json(&self) -> &dyn erased_serde::Serialize {
        &self.report
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        if self.live {
            writeln!(out)?;
        }
        write_report_table(out, &self.report)
    }
}

/// The last `--jsonl` line: everything but the flows, which were written as they ended.
struct SummaryLine(CaptureReport);

impl Serialize for SummaryLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            summary: &'a [crate::capture::DestSummary],
            verdicts: &'a [crate::capture::Verdict],
            stats: &'a crate::capture::CaptureStats,
        }
        Line {
            kind: "summary",
            summary: &self.0.summary,
            verdicts: &self.0.verdicts,
            stats: &self.0.stats,
        }
        .serialize(s)
    }
}

impl Report for SummaryLine {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_report_table(out, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::model::TcpFlags;

    #[test]
    fn durations_keep_their_unit() {
        assert_eq!(micros(45), "45 µs");
        assert_eq!(micros(1_204), "1.204 ms");
        assert_eq!(micros(3_001_000), "3.001 s");
    }

    #[test]
    fn lines_read_like_the_issue() {
        let seg = Segment {
            ts_us: 1_000_123,
            src: "10.0.0.9:443".parse().unwrap(),
            dst: "10.0.0.5:51234".parse().unwrap(),
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            seq: 0,
            ack: 1,
            payload_len: 0,
            fingerprint: 0,
            cut: false,
        };
        let l = event_line(&seg, &Event::Refused);
        assert!(l.ends_with("10.0.0.9:443 → 10.0.0.5:51234  RST      → refused (nothing listens there, or a firewall rejects)"), "{l}");
        assert!(l.contains(".000123  "), "{l}");
    }

    #[test]
    fn processes_are_named_with_their_containers_and_escaped() {
        use crate::procs::cgroup::Runtime;
        use crate::procs::container::Container;
        let ps = [
            LocalProcess {
                pid: 4242,
                name: "nginx".into(),
                container: Some(Container {
                    runtime: Runtime::Podman,
                    id: "3f2a9c0123456789abcdef".into(),
                    name: Some("web".into()),
                    pod: None,
                    pod_namespace: None,
                }),
            },
            LocalProcess {
                pid: 7,
                name: "evil\x1b[2J".into(),
                container: None,
            },
        ];
        let l = processes_label(&ps);
        assert!(
            l.starts_with("nginx(4242) in podman/web 3f2a9c012345, evil"),
            "{l}"
        );
        assert!(!l.contains('\x1b'), "{l}");
        assert!(l.ends_with("(7)"), "{l}");
    }

    #[test]
    fn progress_reads_as_a_sentence() {
        assert_eq!(
            progress_line(12_345, 678, std::time::Duration::from_millis(83_900)),
            "sockscope: 12345 packets, 678 connection attempts in 83 s"
        );
    }

    #[test]
    fn retransmit_times_past_those_kept_are_counted() {
        let times: Vec<u64> = (0..8).map(|i| (1u64 << i) * 1_000_000).collect();
        let f = Flow {
            client: "10.0.0.5:51234".parse().unwrap(),
            server: "10.0.0.9:443".parse().unwrap(),
            outcome: Outcome::Unanswered,
            syn_attempts: 10,
            syn_times_us: crate::capture::model::SynTimes::from_times(&times).unwrap(),
            start_us: times[0],
            last_us: times[7],
            handshake_rtt_us: None,
            connect_us: None,
            ack_rtt_us: None,
            synack_not_captured: false,
            challenge_acks: 0,
            reset_by: None,
            closed_by: None,
            evicted: false,
        };
        assert_eq!(
            detail(&f),
            "SYN retransmitted at +1.000 s, +3.000 s, +7.000 s, +15.000 s, +31.000 s, \
             +63.000 s, +127.000 s and 2 more"
        );
    }

    /// The report tables of recorded captures (read from the fixtures, not built by hand, so
    /// a new field in the flow model does not break the test).
    #[test]
    fn capture_tables() {
        for name in ["ipv4", "edge-fast-syn-retransmits", "edge-challenge-ack"] {
            let path = format!("{}/fixtures/pcap/{name}.pcap", env!("CARGO_MANIFEST_DIR"));
            let r = crate::capture::offline::read_file(path.as_ref(), None, None, 100_000).unwrap();
            let mut out = Vec::new();
            write_report_table(&mut out, &r).unwrap();
            insta::assert_snapshot!(format!("capture_{name}"), String::from_utf8(out).unwrap());
        }
    }
}
