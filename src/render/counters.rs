//! The `counters` report: one line per counter, its value, what it means and where
//! `sockscope explain` says more.

use std::io::{self, Write};
use std::time::Duration;

use super::{new_table, write_table};
use crate::counters::CounterReport;
use crate::report::{Output, Report};

impl Report for CounterReport {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_counters(out, self)
    }
}

/// Said on stderr when the wait is long enough to wonder about (2 s or more).
pub fn write_banner(err: &mut dyn Write, interval: Duration) -> io::Result<()> {
    if interval >= Duration::from_secs(2) {
        writeln!(
            err,
            "sockscope: counting for {:.1}s (Ctrl-C ends it early with what moved so far)",
            interval.as_secs_f64()
        )?;
    }
    Ok(())
}

pub fn write_counters(out: &mut dyn Write, r: &CounterReport) -> io::Result<()> {
    match r.interval_us {
        Some(us) => writeln!(
            out,
            "Counters that moved in the last {:.3}s{}:",
            us as f64 / 1e6,
            if r.interrupted { " (interrupted)" } else { "" }
        )?,
        None => writeln!(
            out,
            "Counters since the namespace was created (boot, for the host):"
        )?,
    }
    if r.counters.is_empty() {
        return writeln!(
            out,
            "  none{}",
            if r.interval_us.is_some() {
                " (-a shows every counter)"
            } else {
                ""
            }
        );
    }
    let mut t = new_table(&["Counter", "Value", "Explain", "Meaning"], &[1]);
    for c in &r.counters {
        t.add_row(vec![
            c.name.clone(),
            c.value.to_string(),
            c.explain.unwrap_or("-").to_string(),
            c.meaning.unwrap_or("").to_string(),
        ]);
    }
    write_table(out, &t)
}
