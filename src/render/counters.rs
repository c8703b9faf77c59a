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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counter;

    fn render(r: &CounterReport) -> String {
        let mut out = Vec::new();
        write_counters(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counters_tables() {
        let counters = vec![
            Counter {
                name: "TcpExtListenOverflows".into(),
                value: 3,
                meaning: Some("handshakes completed while a listener's accept queue was full: connection dropped"),
                explain: Some("accept-queue"),
            },
            Counter {
                name: "TcpOutRsts".into(),
                value: 5,
                meaning: Some("RSTs sent"),
                explain: Some("refused"),
            },
            Counter {
                name: "IpExtInOctets".into(),
                value: 1544,
                meaning: None,
                explain: None,
            },
        ];
        let delta = CounterReport {
            mode: "delta",
            interval_us: Some(1_000_412),
            interrupted: false,
            counters: counters.clone(),
        };
        insta::assert_snapshot!("counters_delta", render(&delta));
        let interrupted = CounterReport {
            interrupted: true,
            counters: vec![],
            ..delta
        };
        insta::assert_snapshot!("counters_interrupted_none", render(&interrupted));
        let absolute = CounterReport {
            mode: "absolute",
            interval_us: None,
            interrupted: false,
            counters,
        };
        insta::assert_snapshot!("counters_absolute", render(&absolute));
    }
}
