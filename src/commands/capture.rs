//! `sockscope capture`: live (Capture on its own thread, lines as events arrive, report on
//! stop) or `-r FILE` (the same analysis offline).

use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, RunError};
use crate::capture::filter::capture_filter;
use crate::capture::offline::read_file;
use crate::capture::{Capture, CaptureSpec};
use crate::cli::CaptureArgs;
use crate::exit::ExitCode;
use crate::render::capture::{event_line, progress_line, write_report_json, write_report_table};

pub fn run(args: &CaptureArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let mut outcome = Outcome::ok();
    if args.print_filter {
        writeln!(out, "{}", capture_filter(args.full, args.port, args.host))?;
        return Ok(outcome);
    }
    if args.full && args.write.is_none() {
        return Err(RunError::Input(
            "--full widens what -w writes: give -w FILE (or --print-filter)".into(),
        ));
    }
    let report = match &args.read {
        Some(path) => {
            let report = read_file(path, args.port, args.host, args.max_flows)?;
            // What was read is still shown; a damaged input is bad input all the same.
            if let Some(e) = &report.stats.read_error {
                outcome.notes.push(e.clone());
                outcome.code = ExitCode::Usage;
            }
            report
        }
        None => live(args, out, &mut outcome)?,
    };
    if args.common.json {
        write_report_json(out, &report)?;
    } else {
        // The blank line separates the live event lines from the summary; a file has none.
        if args.read.is_none() {
            writeln!(out)?;
        }
        write_report_table(out, &report)?;
    }
    Ok(outcome)
}

fn live(
    args: &CaptureArgs,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> Result<crate::capture::CaptureReport, RunError> {
    // Ctrl-C, SIGTERM and SIGHUP (a closed terminal, a `kill -HUP`) end the capture
    // normally: the file is flushed and closed, the report printed, exit 0. A second one
    // exits at once (130), should stopping ever hang.
    // Without live lines the main thread sleeps on a pipe that a signal or the end of the
    // capture writes to: no periodic wakeups to cost CPU during a long capture.
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_rx, wake_tx) = UnixStream::pair().map_err(RunError::Output)?;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .map_err(RunError::Output)?;
        signal_hook::flag::register(sig, stop.clone()).map_err(RunError::Output)?;
        signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)
            .map_err(RunError::Output)?;
    }
    let lines = !args.common.json;
    let spec = CaptureSpec {
        device: args.interface.clone(),
        port: args.port,
        host: args.host,
        write: args.write.clone(),
        packet_buffered: args.packet_buffered,
        full: args.full,
        count: args.count.map(|c| c as u64),
        duration: args.duration,
        netns: args.common.netns.clone(),
        max_flows: args.max_flows,
        // Per-packet wakeups only when someone watches the lines on a terminal.
        immediate: lines && std::io::stdout().is_terminal(),
        live_events: lines,
        notify_end: Some(Arc::new(wake_tx)),
    };
    let mut cap = Capture::start(&spec)?;
    let events = cap.take_events();
    let link = pcap::Linktype(cap.linktype)
        .get_name()
        .unwrap_or_else(|_| cap.linktype.to_string());
    eprintln!(
        "sockscope: capturing handshakes on {} ({link}){}; Ctrl-C to stop",
        crate::render::escape(&spec.device),
        spec.netns
            .as_ref()
            .map(|n| format!(" in network namespace {n}"))
            .unwrap_or_default()
    );
    // Without live lines, a terminal on stderr gets a progress line once a second.
    let progress = !lines && std::io::stderr().is_terminal();
    if progress {
        wake_rx
            .set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(RunError::Output)?;
    }
    let started = Instant::now();
    let mut progress_shown = false;
    loop {
        if stop.load(Ordering::SeqCst) || cap.is_finished() {
            break;
        }
        match &events {
            Some(rx) => {
                if let Ok(ev) = rx.recv_timeout(Duration::from_millis(50)) {
                    writeln!(out, "{}", event_line(&ev.segment, &ev.event))?;
                    while let Ok(ev) = rx.try_recv() {
                        writeln!(out, "{}", event_line(&ev.segment, &ev.event))?;
                    }
                    out.flush()?;
                }
            }
            None => match (&wake_rx).read(&mut [0u8; 1]) {
                // A signal (the flag is set before the byte is written) or the end.
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    let (frames, attempts) = cap.progress();
                    eprint!("\r{}", progress_line(frames, attempts, started.elapsed()));
                    progress_shown = true;
                }
                Err(e) => return Err(RunError::Output(e)),
            },
        }
    }
    if progress_shown {
        eprintln!();
    }
    let lost = cap.lost_events();
    let report = cap.stop()?;
    // Events the capture thread produced while it drained its buffer.
    for ev in events.iter().flat_map(|rx| rx.try_iter()) {
        writeln!(out, "{}", event_line(&ev.segment, &ev.event))?;
    }
    if lost > 0 {
        outcome.notes.push(format!(
            "{lost} live lines skipped because the terminal could not keep up (the report counts everything)"
        ));
    }
    Ok(report)
}
