//! `sockets --watch` and `listeners --watch`: the table read again every interval, with what
//! appeared and what went away; on a terminal a redrawn screen, elsewhere a log of changes, or
//! one JSON record per change (`new`, `gone`) and a `tick` per reading.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::RunError;
use crate::report::{Done, Format, Listing, Output, Rows};
use crate::sockets::listeners::Listener;
use crate::sockets::model::Socket;
use crate::sockets::placed::Placed;
use crate::sockets::watch::{diff, Key, ProcessRate, Rate, Rated};

/// A row a watch follows: a socket, or something built on one.
pub(crate) trait Watched: Clone + Serialize {
    fn socket(&self) -> &Socket;
    /// Its throughput since the last reading (`--rate`).
    fn rate(&self) -> Option<Rate> {
        None
    }
}

impl Watched for Rated {
    fn socket(&self) -> &Socket {
        &self.socket
    }
    fn rate(&self) -> Option<Rate> {
        self.rate
    }
}

impl Watched for Socket {
    fn socket(&self) -> &Socket {
        self
    }
}

impl Watched for Listener {
    fn socket(&self) -> &Socket {
        &self.socket
    }
}

/// A change record of `--jsonl`: the row with its kind in front.
#[derive(Serialize)]
struct Change<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    row: &'a T,
}

/// A process's sums of `--rate -p`, once per reading.
#[derive(Serialize)]
struct ProcessRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    rate: &'a ProcessRate,
}

/// The record that closes each reading.
#[derive(Serialize)]
struct Tick {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Seconds since the watch began.
    t: f64,
    total: usize,
    new: usize,
    gone: usize,
}

/// Runs until Ctrl-C, SIGTERM or SIGHUP (exit 0: a watch has no end of its own). `collect`
/// reads the table once; `view` makes the renderer of a table; `sums` the per-process rates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T, V>(
    interval: Duration,
    output: &Output,
    out: &mut dyn Write,
    key: &'static str,
    view: impl Fn() -> V,
    mut collect: impl FnMut(f64) -> Result<Vec<T>, RunError>,
    sums: impl Fn(&[T]) -> Vec<ProcessRate>,
) -> Result<Done, RunError>
where
    T: Watched,
    V: for<'r> Rows<Record<'r> = Placed<'r, T>>,
{
    let stop = crate::commands::stop_on_signals()?;
    let records = output.format != Format::Table;
    let screen = !records && io::stdout().is_terminal();
    let start = Instant::now();
    let mut before: HashMap<Key, T> = HashMap::new();
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let now = collect(start.elapsed().as_secs_f64())?;
        let rates = sums(&now);
        let changes = diff(&mut before, &now, |t| Key::of(t.socket()));
        if records {
            for &i in &changes.new {
                write_record(
                    out,
                    &Change {
                        kind: "new",
                        row: &now[i],
                    },
                )?;
            }
            for t in &changes.gone {
                write_record(
                    out,
                    &Change {
                        kind: "gone",
                        row: t,
                    },
                )?;
            }
            for t in now.iter().filter(|t| t.rate().is_some()) {
                write_record(
                    out,
                    &Change {
                        kind: "rate",
                        row: t,
                    },
                )?;
            }
            for r in &rates {
                write_record(
                    out,
                    &ProcessRecord {
                        kind: "process",
                        rate: r,
                    },
                )?;
            }
            write_record(
                out,
                &Tick {
                    kind: "tick",
                    t: start.elapsed().as_secs_f64(),
                    total: now.len(),
                    new: changes.new.len(),
                    gone: changes.gone.len(),
                },
            )?;
        } else {
            let mut marks = vec![' '; now.len()];
            if !first {
                for &i in &changes.new {
                    marks[i] = '+';
                }
            }
            let mut rows: Vec<&T> = now.iter().collect();
            if !screen {
                // A log: only what changed (everything, the first time).
                rows = changes.new.iter().map(|&i| &now[i]).collect();
                marks = vec![if first { ' ' } else { '+' }; rows.len()];
            }
            rows.extend(changes.gone.iter());
            marks.extend(changes.gone.iter().map(|_| '-'));
            let mut table = Vec::new();
            let mut list = Listing::new(&mut table, output, key, view());
            for t in &rows {
                list.push(&Placed::bare(*t))?;
            }
            list.finish()?;
            let mut text = Vec::new();
            if screen {
                // Home and clear: one screen per reading.
                text.extend_from_slice(b"\x1b[H\x1b[2J");
                writeln!(
                    text,
                    "every {}s: {} {key}, {} new (+), {} gone (-); Ctrl-C to stop",
                    interval.as_secs_f64(),
                    now.len(),
                    changes.new.len(),
                    changes.gone.len()
                )?;
            }
            if screen || first || !rows.is_empty() {
                let mut lines = table.split(|&b| b == b'\n');
                let header = lines.next().unwrap_or_default();
                if screen || first {
                    text.extend_from_slice(b"  ");
                    text.extend_from_slice(header);
                    text.push(b'\n');
                }
                for (line, mark) in lines.zip(&marks) {
                    write!(text, "{mark} ")?;
                    text.extend_from_slice(line);
                    text.push(b'\n');
                }
            }
            if screen {
                crate::render::sockets::process_rates(&mut text, &rates)?;
            }
            out.write_all(&text)?;
        }
        out.flush()?;
        first = false;
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
    Ok(Done::streamed())
}

fn write_record(out: &mut dyn Write, r: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, r).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
