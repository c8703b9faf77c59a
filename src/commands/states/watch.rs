//! `states --watch`: the counts read again every interval, each sample with its change since
//! the previous one; a redrawn screen on a terminal, one JSON line per sample elsewhere.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{read, Reading};
use crate::cli::StatesArgs;
use crate::commands::RunError;
use crate::host::Host;
use crate::report::{self, Done, Format, Output};
use crate::sockets::state_watch::Sampler;

/// Runs until Ctrl-C, SIGTERM or SIGHUP, which end it after the sample in progress (exit 0: a
/// watch has no end of its own); a second signal while stopping exits at once (130).
pub(super) fn run(
    host: &dyn Host,
    args: &StatesArgs,
    interval: Duration,
    out: &mut dyn Write,
    output: &Output,
) -> Result<Done, RunError> {
    let stop = crate::commands::stop_on_signals()?;
    // Off a terminal a redrawn screen means nothing: records, one per sample.
    let screen = output.format == Format::Table && io::stdout().is_terminal();
    let format = Output {
        format: if screen { Format::Table } else { Format::Jsonl },
        ..*output
    };
    let start = Instant::now();
    let mut sampler = Sampler::default();
    // The same note (an unreadable process…) would come with every sample: said once.
    let mut notes = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64();
        let (reading, said) = read(host, args)?;
        notes.extend(said);
        let sample = match reading {
            Reading::One(s) => sampler.sample(t, s.states, None),
            Reading::Node(n) => sampler.sample(t, n.states.clone(), Some(n)),
        };
        let mut text = Vec::new();
        if screen {
            // Home and clear: one screen per sample.
            text.extend_from_slice(b"\x1b[H\x1b[2J");
            writeln!(text, "every {}s; Ctrl-C to stop", interval.as_secs_f64())?;
        }
        report::print(&sample, &format, &mut text)?;
        out.write_all(&text)?;
        out.flush()?;
        // Sleeps in slices so a signal ends the watch within 50 ms.
        let until = Instant::now() + interval;
        while !stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
    Ok(Done::streamed().notes(notes))
}
