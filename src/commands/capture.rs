//! `sockscope capture`: live (Capture on its own thread, lines or flows as they happen, report
//! on stop) or `-r FILE` (the same analysis offline).

use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RunError;
use crate::capture::filter::capture_filter;
use crate::capture::local::ListenerNames;
use crate::capture::model::Broke;
use crate::capture::offline::read_file;
use crate::capture::{Capture, CaptureReport, CaptureSpec};
use crate::cli::CaptureArgs;
use crate::exit::ExitCode;
use crate::host::Host;
use crate::render::capture::{end_progress, write_banner, write_progress, CapturePrinter};
use crate::report::Done;

/// `out` takes what streams (live lines, `--jsonl` flows); the rest is in the `Done`.
pub fn run(
    host: &'static dyn Host,
    args: &CaptureArgs,
    out: &mut dyn Write,
) -> Result<Done, RunError> {
    if args.print_filter {
        writeln!(out, "{}", capture_filter(args.full, args.port, args.host))?;
        return Ok(Done::streamed());
    }
    if args.full && args.write.is_none() {
        return Err(RunError::Input(
            "--full widens what -w writes: give -w FILE (or --print-filter)".into(),
        ));
    }
    let mut printer = CapturePrinter::new(&args.common.output());
    let mut notes = Vec::new();
    let report = match &args.read {
        Some(path) => read_file(path, args.port, args.host, args.max_flows)?,
        None => live(host, args, out, &mut printer, &mut notes)?,
    };
    // What was captured is still shown; the exit code says why it is partial: a damaged
    // input file or an unwritable -w file is the user's (2), a failing device the host's (3).
    let code = match report.stats.broke {
        None => ExitCode::Ok,
        Some(Broke::Input | Broke::Write) => ExitCode::Usage,
        Some(Broke::Device) => ExitCode::Environment,
    };
    notes.extend(report.stats.read_error.clone());
    notes.extend(report.local_notes.iter().cloned());
    let report = printer.finish(out, report, args.read.is_none())?;
    Ok(Done::from_box(report).code(code).notes(notes))
}

fn live(
    host: &'static dyn Host,
    args: &CaptureArgs,
    out: &mut dyn Write,
    printer: &mut CapturePrinter,
    notes: &mut Vec<String>,
) -> Result<CaptureReport, RunError> {
    // Ctrl-C, SIGTERM and SIGHUP (a closed terminal, a `kill -HUP`) end the capture
    // normally: the file is flushed and closed, the report printed, exit 0. A second one
    // exits at once (130), should stopping ever hang.
    // Without live output the main thread sleeps on a pipe that a signal or the end of the
    // capture writes to: no periodic wakeups to cost CPU during a long capture.
    let stop = crate::commands::stop_on_signals()?;
    let (wake_rx, wake_tx) = UnixStream::pair().map_err(RunError::Output)?;
    for sig in crate::commands::STOP_SIGNALS {
        signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)
            .map_err(RunError::Output)?;
    }
    let lines = printer.wants_events();
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
        stream_flows: printer.streams_flows(),
        name_processes: true,
        notify_end: Some(Arc::new(wake_tx)),
    };
    let mut cap = Capture::start(host, &spec)?;
    let start_sockets = cap.take_start_sockets();
    if lines {
        // Packets are already being captured: the fd walk (seconds on a host with hundreds
        // of thousands of fds) delays at most the first SYN's line, never the capture.
        printer.name_listeners(std::thread::spawn(move || {
            ListenerNames::read(host, start_sockets)
        }));
    }
    let events = cap.take_events();
    let flows = cap.take_flows();
    let link = crate::capture::libpcap::link_name(cap.linktype)
        .unwrap_or_else(|| cap.linktype.to_string());
    let netns = spec.netns.as_ref().map(|n| n.to_string());
    let _ = write_banner(
        &mut std::io::stderr(),
        &spec.device,
        &link,
        netns.as_deref(),
    );
    // Without live output, a terminal on stderr gets a progress line once a second.
    let progress = events.is_none() && flows.is_none() && std::io::stderr().is_terminal();
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
        if let Some(rx) = &events {
            if let Ok(ev) = rx.recv_timeout(Duration::from_millis(50)) {
                printer.event(out, &ev)?;
                while let Ok(ev) = rx.try_recv() {
                    printer.event(out, &ev)?;
                }
                out.flush()?;
            }
        } else if let Some(rx) = &flows {
            // Batches come once per kernel block; a short wait keeps Ctrl-C prompt.
            if let Ok(batch) = rx.recv_timeout(Duration::from_millis(100)) {
                printer.flows(out, &batch)?;
                out.flush()?;
            }
        } else {
            match (&wake_rx).read(&mut [0u8; 1]) {
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
                    let _ = write_progress(&mut std::io::stderr(), frames, attempts, started);
                    progress_shown = true;
                }
                Err(e) => return Err(RunError::Output(e)),
            }
        }
    }
    if progress_shown {
        let _ = end_progress(&mut std::io::stderr());
    }
    let lost = cap.lost_events();
    let report = cap.stop()?;
    // What the capture thread produced while it drained its buffer.
    for ev in events.iter().flat_map(|rx| rx.try_iter()) {
        printer.event(out, &ev)?;
    }
    for batch in flows.iter().flat_map(|rx| rx.try_iter()) {
        printer.flows(out, &batch)?;
    }
    if lost > 0 {
        notes.push(format!(
            "{lost} live lines skipped because the terminal could not keep up (the report counts everything)"
        ));
    }
    Ok(report)
}
