//! Output of `doctor` (one finding per line, then what was checked), `explain` (a table row as
//! text) and `pool` (the sizing as a two-column table).

use std::io::{self, Write};

pub use super::write_json;
use super::{escape, new_table, percent, write_table};
use crate::doctor::model::Report;
use crate::doctor::pool::PoolPlan;
use crate::doctor::table::Row;

pub fn write_report_json(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    write_json(out, r)
}

pub fn write_report_table(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    if r.findings.is_empty() {
        writeln!(out, "No problems found.")?;
    } else {
        let mut t = new_table(
            &["Severity", "Symptom", "Evidence", "Likely cause", "Fix"],
            &[],
        );
        for f in &r.findings {
            t.add_row(vec![
                f.severity.name().to_string(),
                f.symptom.to_string(),
                escape(&f.evidence),
                escape(&f.cause),
                escape(&f.fix),
            ]);
        }
        write_table(out, &t)?;
        writeln!(out)?;
    }
    writeln!(out, "Checked:")?;
    for c in &r.checked {
        writeln!(out, "  - {}", escape(c))?;
    }
    Ok(())
}

pub fn write_row_json(out: &mut dyn Write, row: &Row) -> io::Result<()> {
    write_json(out, row)
}

pub fn write_row_text(out: &mut dyn Write, row: &Row) -> io::Result<()> {
    let errnos = if row.errnos.is_empty() {
        String::new()
    } else {
        format!(" ({})", row.errnos.join(", "))
    };
    writeln!(out, "{}: {}{errnos}", row.id, row.title)?;
    writeln!(out, "  What it means: {}", row.meaning)?;
    writeln!(out, "  Likely cause:  {}", row.cause)?;
    writeln!(out, "  Fix:           {}", row.fix)?;
    writeln!(out, "  Confirm with:  {}", row.confirm.join("  |  "))?;
    writeln!(
        out,
        "  Check it here: sockscope doctor (whole host) or sockscope doctor HOST:PORT"
    )
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn write_pool_table(out: &mut dyn Write, p: &PoolPlan) -> io::Result<()> {
    let mut t = new_table(&["Quantity", "Value", "How"], &[1]);
    t.add_row(vec![
        "in flight at peak".to_string(),
        num(p.in_flight),
        format!(
            "Little's law: {} req/s × {} ms",
            num(p.qps),
            num(p.latency_ms)
        ),
    ]);
    t.add_row(vec![
        "pool max per upstream".to_string(),
        p.pool_max.to_string(),
        format!(
            "ceil(in flight) + {}% headroom, rounded up",
            p.headroom_percent
        ),
    ]);
    t.add_row(vec![
        "fds for all pools".to_string(),
        p.pool_fds.to_string(),
        format!("{} upstream(s) × {}", p.upstreams, p.pool_max),
    ]);
    t.add_row(vec![
        "fd limit".to_string(),
        if p.fd_limit == u64::MAX {
            "unlimited".to_string()
        } else {
            p.fd_limit.to_string()
        },
        format!(
            "{}; pools use {}: {}",
            p.fd_limit_source,
            percent(p.fd_percent),
            if p.fits { "fits" } else { "DOES NOT FIT" }
        ),
    ]);
    t.add_row(vec![
        "keep-alive idle timeout".to_string(),
        format!("{} s", num(p.keepalive_idle_s)),
        format!(
            "below the upstream's {} s idle timeout, so it never resets a connection you reuse",
            num(p.upstream_idle_timeout_s)
        ),
    ]);
    if let Some(s) = &p.setup {
        t.add_row(vec![
            "new connection".to_string(),
            format!("{} ms", num(s.new_connection_ms)),
            format!("TCP + TLS 1.3 handshakes, 2 × {} ms RTT", num(s.rtt_ms)),
        ]);
        t.add_row(vec![
            "1,000 sequential calls".to_string(),
            format!(
                "{} s / {} s",
                num(s.thousand_calls_without_pool_s),
                num(s.thousand_calls_with_pool_s)
            ),
            format!(
                "without reuse ({} ms each) / with a pool ({} ms each)",
                num(s.call_without_pool_ms),
                num(s.call_with_pool_ms)
            ),
        ]);
    }
    write_table(out, &t)?;
    if !p.fits {
        writeln!(
            out,
            "\nThe pools need more fds than the limit: raise it (systemd LimitNOFILE=, ulimit -n) \
             or share connections across upstreams."
        )?;
    }
    Ok(())
}
