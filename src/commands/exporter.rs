//! `sockscope exporter`: bind (in the namespace sockscope started in), start the collector
//! thread (in the watched namespace), then serve HTTP or write the textfile until stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RunError;
use crate::cli::ExporterArgs;
use crate::exporter::collect::{Collector, Plan};
use crate::exporter::metrics::{render, Format};
use crate::exporter::server::{self, errors_total, log_errors};
use crate::exporter::{http, textfile};
use crate::host::Host;
use crate::netns;
use crate::report::Done;
use crate::scope::live_roots;

pub fn run(host: &'static dyn Host, args: &ExporterArgs) -> Result<Done, RunError> {
    let plan = Plan {
        netns: args
            .netns
            .as_ref()
            .map_or_else(|| "host".to_string(), |n| n.to_string()),
        netns_inode: match &args.netns {
            Some(spec) => Some(netns::inode(host, spec)?),
            None => None,
        },
        all_netns: args
            .node
            .all_netns
            .then(|| live_roots(args.node.fs_root.as_ref())),
        top: args.top,
        proc_root: crate::host::PROC.into(),
        fs_root: live_roots(args.node.fs_root.as_ref()).fs,
        skip_self: args.textfile.is_some() && args.netns.is_some(),
    };
    match (&args.listen, &args.textfile) {
        (Some(addr), _) => {
            let listener = std::net::TcpListener::bind(addr).map_err(|e| {
                RunError::Input(format!(
                    "cannot listen on {addr}: {e} (pick another port, or 127.0.0.1:0 for a free one)"
                ))
            })?;
            let bound = listener.local_addr().map_err(RunError::Output)?;
            let scrapes = server::start(host, args.netns.clone(), plan)?;
            // The one line a supervisor or a test needs: where to scrape.
            eprintln!("sockscope: exporter listening on http://{bound}/metrics");
            http::serve(listener, scrapes, stop_signal()).map_err(RunError::Output)?;
        }
        (None, Some(dir)) => {
            netns::enter_opt(host, args.netns.as_ref())?;
            write_textfiles(host, dir, args, &plan)?;
        }
        (None, None) => unreachable!("clap requires --listen or --textfile"),
    }
    Ok(Done::streamed())
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
}

/// Collects and writes every interval (once with --once) until SIGINT or SIGTERM.
fn write_textfiles(
    host: &dyn Host,
    dir: &std::path::Path,
    args: &ExporterArgs,
    plan: &Plan,
) -> Result<(), RunError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(RunError::Output)?;
    }
    let mut c = Collector::new();
    loop {
        let started = Instant::now();
        let sample = c.collect(host, plan);
        log_errors(&sample);
        let text = render(&sample, &errors_total(&c), Format::Prometheus);
        textfile::write_atomically(dir, &text).map_err(|e| {
            RunError::Input(format!(
                "cannot write {}: {e} (is --textfile an existing, writable directory?)",
                dir.join(textfile::FILE_NAME).display()
            ))
        })?;
        if args.once {
            return Ok(());
        }
        while started.elapsed() < args.interval {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100).min(args.interval));
        }
    }
}
