//! The `fds` table and JSON, and the `--watch` samples and summary.
//!
//! JSON schema (`fds --json`):
//! `{"system": {"allocated", "free", "max", "nr_open"} | null, "matched": N, "unreadable": N,
//!   "processes": [{"pid", "name", "fds", "soft_limit", "hard_limit", "percent_used",
//!   "reserved"?, "sockets"?, "kinds"?: {"tcp", "udp", "unix", "other_socket", "file", "pipe",
//!   "anon_inode", "device", "other"}}]}`; `fds`, limits and `percent_used` are null when
//! unreadable or unlimited. `reserved` (rows whose fds were read) counts fd slots taken but not
//! open, such as the one a blocked `accept()` holds: `fds` is then the open fds (the kinds sum
//! to it) and `percent_used` is (fds + reserved) / soft_limit, as EMFILE counts.
//!
//! `--watch --jsonl` streams `{"schema_version", "type": "sample", …WatchSample}` per sample and
//! ends with `{"schema_version", "type": "summary", …WatchSummary}`; `--watch --json` prints one
//! document at the end, `{"schema_version", "samples": [WatchSample…], "summary": WatchSummary}`.
//! With `--kinds` each shown process also has `kinds`, `kinds_grew` (the kinds that changed
//! since they were first read) and `reserved`, `fds` then being the open fds the kinds sum to.

use std::io::{self, Write};

use serde::Serialize;

use super::{escape, new_table, percent, write_json_line, write_table};
use crate::procs::growth::Trend;
use crate::procs::kinds::FdKind;
use crate::procs::model::{FdUsage, SystemFds};
use crate::procs::report::{FdsByContainer, FdsReport, WatchSample, WatchSummary};
use crate::report::{Format, Output, Report, SCHEMA_VERSION};

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    usage: &'a FdUsage,
    percent_used: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved: Option<u64>,
    /// `--all-netns`: where the process lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<&'a crate::scope::NetnsRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a crate::procs::container::Container>,
}

/// The share of the soft limit in use: open fds plus reserved slots, as the kernel counts
/// them for EMFILE.
fn used(u: &FdUsage, reserved: Option<u64>) -> Option<f64> {
    match (u.fds, u.soft_limit) {
        (Some(n), Some(lim)) if lim > 0 => {
            Some((n + reserved.unwrap_or(0)) as f64 * 100.0 / lim as f64)
        }
        _ => None,
    }
}

#[derive(Serialize)]
struct Json<'a> {
    system: &'a Option<SystemFds>,
    matched: usize,
    unreadable: usize,
    processes: Vec<Row<'a>>,
}

/// The documented schema (module comment): each row with its share of the limit.
impl Serialize for FdsReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let processes = self
            .processes
            .iter()
            .map(|u| {
                let reserved = self.reserved.get(&u.pid).copied();
                let place = self.places.get(&u.pid);
                Row {
                    usage: u,
                    percent_used: used(u, reserved),
                    reserved,
                    netns: place.map(|p| &p.netns),
                    container: place.and_then(|p| p.container.as_ref()),
                }
            })
            .collect();
        Json {
            system: &self.system,
            matched: self.matched,
            unreadable: self.unreadable,
            processes,
        }
        .serialize(s)
    }
}

impl Report for FdsReport {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_fds_table(out, self)
    }
}

/// The system line: how close the host is to ENFILE.
pub fn system_line(s: &Option<SystemFds>) -> String {
    match s {
        Some(s) => {
            let used = if s.max > 0 {
                format!(
                    " ({} used)",
                    percent(s.allocated as f64 * 100.0 / s.max as f64)
                )
            } else {
                String::new()
            };
            let nr_open = s
                .nr_open
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unreadable".into());
            format!(
                "System file table: {} allocated, {} free, max {}{used}; fs.nr_open {nr_open}",
                s.allocated, s.free, s.max
            )
        }
        None => "System file table: /proc/sys/fs/file-nr unreadable".to_string(),
    }
}

fn limit(v: Option<u64>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "unlimited".into())
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

pub fn write_fds_table(out: &mut dyn Write, r: &FdsReport) -> io::Result<()> {
    writeln!(out, "{}", system_line(&r.system))?;
    // Shown only when some row has one, with a line saying what it is.
    let any_reserved = r.reserved.values().any(|&n| n > 0);
    let mut header = vec!["PID", "Name", "FDs"];
    if any_reserved {
        header.push("Reserved");
    }
    header.extend(["Soft", "Hard", "Used"]);
    if r.sockets_read {
        header.push("Sockets");
    }
    let with_where = !r.places.is_empty();
    if with_where {
        header.push("Where");
    }
    if r.kinds_read {
        header.extend([
            "TCP",
            "UDP",
            "UNIX",
            "OtherSock",
            "File",
            "Pipe",
            "AnonInode",
            "Device",
            "Other",
        ]);
    }
    let right: Vec<usize> = (0..header.len())
        .filter(|&i| i != 1 && header[i] != "Where")
        .collect();
    let mut t = new_table(&header, &right);
    for u in &r.processes {
        let reserved = r.reserved.get(&u.pid).copied();
        let mut row = vec![
            u.pid.to_string(),
            escape(&u.name),
            u.fds
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unreadable".into()),
        ];
        if any_reserved {
            row.push(opt(reserved));
        }
        row.extend([
            limit(u.soft_limit),
            limit(u.hard_limit),
            used(u, reserved).map(percent).unwrap_or_else(|| "-".into()),
        ]);
        if r.sockets_read {
            row.push(opt(u.sockets));
        }
        if with_where {
            row.push(r.places.get(&u.pid).map_or("-".into(), where_label));
        }
        if r.kinds_read {
            for k in FdKind::ALL {
                row.push(opt(u.kinds.as_ref().and_then(|m| m.get(k.key()).copied())));
            }
        }
        t.add_row(row);
    }
    write_table(out, &t)?;
    if any_reserved {
        writeln!(
            out,
            "Reserved: fd slots taken but not yet open (a blocked accept() holds one); not in \
             FDs or the kinds, but the soft limit counts them, so Used does too."
        )?;
    }
    if r.processes.len() < r.matched {
        writeln!(
            out,
            "({} of {} processes shown; --top N or --all for more)",
            r.processes.len(),
            r.matched
        )?;
    }
    Ok(())
}

/// `NETNS` or `NETNS CONTAINER` (`host`, `ssc-1 podman/web 3f2a9c0d1e4b`).
fn where_label(w: &crate::scope::Where) -> String {
    let netns = escape(&w.netns.label());
    match &w.container {
        Some(c) => format!("{netns} {}", super::container_label(c)),
        None => netns,
    }
}

impl Report for FdsByContainer {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_by_container_table(out, self)
    }
}

/// One row per container, worst first; processes outside containers are `-`.
pub fn write_by_container_table(out: &mut dyn Write, r: &FdsByContainer) -> io::Result<()> {
    writeln!(out, "{}", system_line(&r.system))?;
    let mut t = new_table(
        &[
            "Container",
            "Processes",
            "FDs",
            "Worst PID",
            "Worst name",
            "Worst FDs",
            "Soft",
            "Used",
        ],
        &[1, 2, 3, 5, 6, 7],
    );
    for g in &r.containers {
        let w = g.worst.as_ref();
        t.add_row(vec![
            g.container
                .as_ref()
                .map_or("-".to_string(), super::container_label),
            g.processes.to_string(),
            if g.unreadable > 0 {
                format!("{} ({} unreadable)", g.fds, g.unreadable)
            } else {
                g.fds.to_string()
            },
            w.map_or("-".into(), |w| w.pid.to_string()),
            w.map_or("-".into(), |w| escape(&w.name)),
            opt(w.and_then(|w| w.fds)),
            w.map_or("-".into(), |w| limit(w.soft_limit)),
            g.worst_percent_used
                .map(percent)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    write_table(out, &t)
}

/// "12.5s", "3m20s", "5h12m", "3d04h": the time left until a limit.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    }
}

/// "tcp +40, file -2": the kinds that changed, biggest change first.
pub fn kinds_grew_cell(grew: &std::collections::BTreeMap<String, i64>) -> String {
    if grew.is_empty() {
        return "-".into();
    }
    let mut v: Vec<(&String, &i64)> = grew.iter().collect();
    v.sort_by(|a, b| b.1.abs().cmp(&a.1.abs()).then_with(|| a.0.cmp(b.0)));
    v.iter()
        .map(|(k, d)| format!("{k} {d:+}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn trends_table(out: &mut dyn Write, trends: &[Trend]) -> io::Result<()> {
    let with_kinds = trends.iter().any(|t| t.kinds_grew.is_some());
    // As in `fds`: shown only when some row holds one, with a line saying what it is.
    let any_reserved = trends.iter().any(|t| t.reserved.is_some_and(|n| n > 0));
    let mut header = vec!["PID", "Name", "FDs"];
    if any_reserved {
        header.push("Reserved");
    }
    header.extend(["Soft", "Used", "Growth/s", "Grew", "Soft limit in"]);
    if with_kinds {
        header.push("Grew by kind");
    }
    let right: Vec<usize> = (0..header.len())
        .filter(|&i| i != 1 && header[i] != "Grew by kind")
        .collect();
    let mut t = new_table(&header, &right);
    for tr in trends {
        // The kernel's count (open + reserved): what the limit and the growth rate see.
        let used = match (tr.in_use(), tr.soft_limit) {
            (Some(f), Some(s)) if s > 0 => percent(f as f64 * 100.0 / s as f64),
            _ => "-".into(),
        };
        let grew = match (tr.in_use(), tr.first_fds) {
            (Some(now), Some(first)) => format!("{:+}", now as i64 - first as i64),
            _ => "-".into(),
        };
        let mut row = vec![
            tr.pid.to_string(),
            escape(&tr.name),
            tr.fds
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unreadable".into()),
        ];
        if any_reserved {
            row.push(opt(tr.reserved));
        }
        row.extend([
            limit(tr.soft_limit),
            used,
            tr.rate_per_s
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "-".into()),
            grew,
            tr.seconds_to_limit
                .map(duration)
                .unwrap_or_else(|| "-".into()),
        ]);
        if with_kinds {
            row.push(
                tr.kinds_grew
                    .as_ref()
                    .map(kinds_grew_cell)
                    .unwrap_or_else(|| "-".into()),
            );
        }
        t.add_row(row);
    }
    write_table(out, &t)?;
    if any_reserved {
        writeln!(
            out,
            "Reserved: fd slots taken but not yet open (a blocked accept() holds one); not in \
             FDs or the kinds, but the soft limit counts them, so Used and Grew do too."
        )?;
    }
    Ok(())
}

pub fn write_watch_sample_table(out: &mut dyn Write, s: &WatchSample) -> io::Result<()> {
    writeln!(
        out,
        "--- sample {} at +{:.1}s: {} process(es) ---",
        s.sample,
        s.elapsed_us as f64 / 1e6,
        s.matched
    )?;
    writeln!(out, "{}", system_line(&s.system))?;
    trends_table(out, &s.processes)?;
    writeln!(out)
}

/// One line of a `--watch --jsonl` stream: `{"schema_version", "type", …value}`.
#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    schema_version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    value: &'a T,
}

fn tagged<'a, T: Serialize>(kind: &'static str, value: &'a T) -> Tagged<'a, T> {
    Tagged {
        schema_version: SCHEMA_VERSION,
        kind,
        value,
    }
}

/// Prints a `--watch` as it goes, in the format chosen: a table per sample, or one JSON line
/// per sample (`--jsonl`); `--json` keeps the samples for one document at the end.
pub struct WatchPrinter {
    format: Format,
    kept: Vec<WatchSample>,
}

impl WatchPrinter {
    pub fn new(output: &Output) -> WatchPrinter {
        WatchPrinter {
            format: output.format,
            kept: Vec::new(),
        }
    }

    pub fn sample(&mut self, out: &mut dyn Write, s: WatchSample) -> io::Result<()> {
        match self.format {
            Format::Table => write_watch_sample_table(out, &s)?,
            Format::Jsonl => write_json_line(out, &tagged("sample", &s))?,
            Format::Json => {
                self.kept.push(s);
                return Ok(());
            }
        }
        out.flush()
    }

    /// The report that ends the watch: the summary (the last line with `--jsonl`), or with
    /// `--json` the one document `{"samples": […], "summary": {…}}`.
    pub fn finish(self, summary: WatchSummary) -> WatchEnd {
        WatchEnd {
            samples: (self.format == Format::Json).then_some(self.kept),
            summary,
        }
    }
}

/// The end of a watch (see [`WatchPrinter::finish`]).
pub struct WatchEnd {
    samples: Option<Vec<WatchSample>>,
    summary: WatchSummary,
}

impl Serialize for WatchEnd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Document<'a> {
            samples: &'a [WatchSample],
            summary: &'a WatchSummary,
        }
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            value: &'a WatchSummary,
        }
        match &self.samples {
            Some(samples) => Document {
                samples,
                summary: &self.summary,
            }
            .serialize(s),
            None => Line {
                kind: "summary",
                value: &self.summary,
            }
            .serialize(s),
        }
    }
}

impl Report for WatchEnd {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        write_watch_summary_table(out, &self.summary)
    }
}

pub fn write_watch_summary_table(out: &mut dyn Write, s: &WatchSummary) -> io::Result<()> {
    writeln!(
        out,
        "Watched for {:.1}s ({} samples){}.",
        s.elapsed_us as f64 / 1e6,
        s.samples,
        if s.interrupted {
            ", stopped by Ctrl-C"
        } else {
            ""
        }
    )?;
    if s.growing.is_empty() {
        return writeln!(out, "No process grew its fd count.");
    }
    writeln!(out, "Growing, soonest to hit its soft limit first:")?;
    trends_table(out, &s.growing)
}

/// The stderr line that starts a watch.
pub fn write_watch_banner(err: &mut dyn Write, interval_s: f64) -> io::Result<()> {
    writeln!(
        err,
        "sockscope: sampling every {interval_s}s; Ctrl-C stops and prints a summary"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report() -> FdsReport {
        let mut kinds = std::collections::BTreeMap::new();
        for k in FdKind::ALL {
            kinds.insert(k.key().to_string(), 0);
        }
        kinds.insert("tcp".into(), 3);
        FdsReport {
            system: Some(SystemFds {
                allocated: 500,
                free: 0,
                max: 1000,
                nr_open: Some(1048576),
            }),
            processes: vec![
                FdUsage {
                    pid: 7,
                    name: "evil\x1b]0;pwned\x07".into(),
                    fds: Some(192),
                    soft_limit: Some(256),
                    hard_limit: None,
                    sockets: Some(3),
                    kinds: Some(kinds),
                },
                FdUsage {
                    pid: 8,
                    name: "locked".into(),
                    fds: None,
                    soft_limit: Some(1024),
                    hard_limit: Some(4096),
                    sockets: None,
                    kinds: None,
                },
            ],
            matched: 5,
            unreadable: 1,
            reserved: Default::default(),
            sockets_read: true,
            kinds_read: true,
            places: Default::default(),
        }
    }

    #[test]
    fn table_escapes_names_and_marks_unknowns() {
        let mut buf = Vec::new();
        write_fds_table(&mut buf, &report()).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s}");
        assert!(s.contains("evil\\x1b]0;pwned\\x07"), "{s}");
        assert!(s.starts_with(
            "System file table: 500 allocated, 0 free, max 1000 (50% used); fs.nr_open 1048576\n"
        ));
        let row = s.lines().find(|l| l.contains("evil")).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &cols[..7],
            [
                "7",
                "evil\\x1b]0;pwned\\x07",
                "192",
                "256",
                "unlimited",
                "75%",
                "3"
            ]
        );
        let row = s.lines().find(|l| l.contains("locked")).unwrap();
        assert!(row.contains("unreadable"), "{row}");
        assert!(s.contains("(2 of 5 processes shown"), "{s}");
    }

    #[test]
    fn json_has_the_documented_schema() {
        let v = serde_json::to_value(report()).unwrap();
        assert_eq!(v["system"]["max"], 1000);
        assert_eq!(v["unreadable"], 1);
        let p = &v["processes"][0];
        assert_eq!(p["pid"], 7);
        assert_eq!(p["hard_limit"], serde_json::Value::Null);
        assert_eq!(p["percent_used"], 75.0);
        assert_eq!(p["kinds"]["tcp"], 3);
        assert_eq!(p["kinds"].as_object().unwrap().len(), 9);
        assert_eq!(v["processes"][1]["fds"], serde_json::Value::Null);
        assert!(v["processes"][1].get("kinds").is_none());
    }

    /// A server blocked in accept(): 192 open, one slot reserved. The table says so in its own
    /// column and a line; Used and percent_used count the slot, as EMFILE does.
    #[test]
    fn reserved_slots_are_shown_and_counted_in_used() {
        let mut r = report();
        r.reserved.insert(7, 1);
        let mut buf = Vec::new();
        write_fds_table(&mut buf, &r).unwrap();
        let s = String::from_utf8(buf).unwrap();
        let header: Vec<&str> = s.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            header[..7],
            ["PID", "Name", "FDs", "Reserved", "Soft", "Hard", "Used"]
        );
        let row: Vec<&str> = s
            .lines()
            .find(|l| l.contains("evil"))
            .unwrap()
            .split_whitespace()
            .collect();
        let pct = percent(193.0 * 100.0 / 256.0);
        assert_eq!(row[2..7], ["192", "1", "256", "unlimited", pct.as_str()]);
        let locked: Vec<&str> = s
            .lines()
            .find(|l| l.contains("locked"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(locked[2..4], ["unreadable", "-"]);
        assert!(
            s.contains("\nReserved: fd slots taken but not yet open"),
            "{s}"
        );

        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["processes"][0]["reserved"], 1);
        assert_eq!(v["processes"][0]["fds"], 192);
        assert_eq!(v["processes"][0]["percent_used"], 193.0 * 100.0 / 256.0);
        assert!(v["processes"][1].get("reserved").is_none());

        // No reserved slot anywhere: no column, no line.
        r.reserved.insert(7, 0);
        let mut buf = Vec::new();
        write_fds_table(&mut buf, &r).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(!s.contains("Reserved"), "{s}");
    }

    fn jsonl() -> Output {
        Output {
            format: Format::Jsonl,
            color: false,
            pretty: true,
            discard: false,
        }
    }

    /// `--jsonl` streams a line per sample (with the schema version); `--json` keeps them for
    /// one document at the end, `{samples, summary}`.
    #[test]
    fn watch_streams_jsonl_and_gathers_json() {
        let sample = |n| WatchSample {
            sample: n,
            elapsed_us: n as u64 * 1_000_000,
            system: None,
            matched: 1,
            processes: vec![grower(9, "svc", None)],
        };
        let summary = || WatchSummary {
            samples: 2,
            elapsed_us: 2000000,
            interrupted: false,
            growing: vec![],
        };
        let mut buf = Vec::new();
        let mut p = WatchPrinter::new(&jsonl());
        p.sample(&mut buf, sample(1)).unwrap();
        p.sample(&mut buf, sample(2)).unwrap();
        let end = p.finish(summary());
        crate::report::print(&end, &jsonl(), &mut buf).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["type"], "sample");
        assert_eq!(lines[1]["sample"], 2);
        assert_eq!(lines[1]["schema_version"], SCHEMA_VERSION);
        assert_eq!(lines[2]["type"], "summary");
        assert_eq!(lines[2]["schema_version"], SCHEMA_VERSION);

        let json = Output {
            format: Format::Json,
            color: false,
            pretty: true,
            discard: false,
        };
        let mut buf = Vec::new();
        let mut p = WatchPrinter::new(&json);
        p.sample(&mut buf, sample(1)).unwrap();
        p.sample(&mut buf, sample(2)).unwrap();
        assert!(buf.is_empty(), "nothing before the end");
        crate::report::print(&p.finish(summary()), &json, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["samples"].as_array().unwrap().len(), 2);
        assert_eq!(v["samples"][1]["processes"][0]["pid"], 9);
        assert_eq!(v["summary"]["samples"], 2);
        assert!(v.get("type").is_none());
    }

    /// `--watch --kinds` of a server blocked in accept(): FDs is what the kinds sum to, the
    /// reserved slot has its own column, and Used counts it.
    #[test]
    fn watch_rows_show_reserved_slots() {
        let mut tr = grower(9, "srv", Some(BTreeMap::new()));
        tr.fds = Some(127);
        tr.reserved = Some(1);
        let mut buf = Vec::new();
        trends_table(&mut buf, &[tr]).unwrap();
        let out = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(header[..5], ["PID", "Name", "FDs", "Reserved", "Soft"]);
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(row[2..8], ["127", "1", "256", "50%", "8.00", "+88"]);
        assert!(lines[2].starts_with("Reserved: fd slots taken"), "{out}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(200.0), "3m20s");
        assert_eq!(duration(18_720.0), "5h12m");
        assert_eq!(duration(273_600.0), "3d04h");
    }

    /// A process that grew from 40 to 120 fds at 8/s, 17 s from its soft limit of 256.
    fn grower(pid: u32, name: &str, kinds_grew: Option<BTreeMap<String, i64>>) -> Trend {
        Trend {
            pid,
            name: name.into(),
            fds: Some(120),
            reserved: None,
            soft_limit: Some(256),
            hard_limit: Some(4096),
            rate_per_s: Some(8.0),
            seconds_to_limit: Some(17.0),
            first_fds: Some(40),
            samples: 11,
            kinds: None,
            kinds_grew,
        }
    }

    #[test]
    fn watch_summary_lists_growers_escaped() {
        let grower = grower(9, "leak\x1b[31m", None);
        let s = WatchSummary {
            samples: 11,
            elapsed_us: 10000000,
            interrupted: true,
            growing: vec![grower],
        };
        let mut buf = Vec::new();
        write_watch_summary_table(&mut buf, &s).unwrap();
        let out = String::from_utf8(buf).unwrap();
        assert!(out.starts_with("Watched for 10.0s (11 samples), stopped by Ctrl-C.\n"));
        let row: Vec<&str> = out.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "9",
                "leak\\x1b[31m",
                "120",
                "256",
                "46.88%",
                "8.00",
                "+80",
                "17.0s"
            ]
        );
        let end = WatchPrinter::new(&jsonl()).finish(s);
        let v = serde_json::to_value(&end).unwrap();
        assert_eq!(v["type"], "summary");
        assert_eq!(v["growing"][0]["seconds_to_limit"], 17.0);
        assert!(v["growing"][0].get("kinds_grew").is_none());
    }

    #[test]
    fn watch_with_kinds_says_which_kind_grew() {
        let grew: BTreeMap<String, i64> = [("file", -2), ("tcp", 78), ("pipe", 4)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(kinds_grew_cell(&grew), "tcp +78, pipe +4, file -2");
        assert_eq!(kinds_grew_cell(&Default::default()), "-");
        let tr = |pid, grew| grower(pid, "svc", grew);
        let s = WatchSummary {
            samples: 11,
            elapsed_us: 10000000,
            interrupted: false,
            growing: vec![tr(9, Some(grew)), tr(10, None)],
        };
        let mut buf = Vec::new();
        write_watch_summary_table(&mut buf, &s).unwrap();
        let out = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[2].ends_with("Grew by kind"), "{out}");
        assert!(
            lines[3].ends_with("17.0s  tcp +78, pipe +4, file -2"),
            "{out}"
        );
        assert!(lines[4].ends_with("17.0s  -"), "{out}");
    }

    fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fds_tables() {
        let r = report();
        insta::assert_snapshot!("fds_plain", render(|o| write_fds_table(o, &r)));
        let mut r = report();
        r.reserved.insert(7, 1);
        let place = crate::render::sockets::tests::place();
        r.places.insert(7, place.clone());
        insta::assert_snapshot!("fds_reserved_all_netns", render(|o| write_fds_table(o, &r)));

        let worst = report().processes[0].clone();
        let by = FdsByContainer {
            system: report().system,
            matched: 5,
            unreadable: 1,
            containers: vec![
                crate::procs::report::ContainerFds {
                    container: place.container.clone(),
                    processes: 3,
                    fds: 400,
                    unreadable: 0,
                    worst: Some(worst),
                    worst_percent_used: Some(75.0),
                },
                crate::procs::report::ContainerFds {
                    container: None,
                    processes: 2,
                    fds: 12,
                    unreadable: 1,
                    worst: None,
                    worst_percent_used: None,
                },
            ],
        };
        insta::assert_snapshot!(
            "fds_by_container",
            render(|o| write_by_container_table(o, &by))
        );

        let mut grew = BTreeMap::new();
        grew.insert("tcp".to_string(), 80);
        grew.insert("pipe".to_string(), -2);
        let sample = WatchSample {
            sample: 3,
            elapsed_us: 2000000,
            system: report().system,
            matched: 2,
            processes: vec![grower(9, "leak", Some(grew)), grower(10, "steady", None)],
        };
        insta::assert_snapshot!(
            "fds_watch_sample",
            render(|o| write_watch_sample_table(o, &sample))
        );
        let summary = WatchSummary {
            samples: 3,
            elapsed_us: 2000000,
            interrupted: true,
            growing: sample.processes.clone(),
        };
        insta::assert_snapshot!(
            "fds_watch_summary",
            render(|o| write_watch_summary_table(o, &summary))
        );
    }
}
