//! The one way out: every subcommand hands back a [`Report`] and `main` prints it once, in the
//! format the user chose ([`Output`]). Commands never decide between a table and JSON; they
//! build data, and the data knows how to be a table (its renderer in `render/`) and how to be
//! JSON (serde). Notes for stderr travel with the report so they are printed once, one way.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::exit::ExitCode;

/// The version of every JSON document's schema. Bumped when a field changes meaning or goes
/// away; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// How output is written: decided once from the command line and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    /// Colour in tables (severity): off for pipes, under `NO_COLOR`, and with `--color never`.
    pub color: bool,
    /// `--json` indented (the default: read by people as often as by jq), or compact on one
    /// line: `capture` unless `--pretty`, whose 100k-flow report would spend more CPU on
    /// indentation than the capture took.
    pub pretty: bool,
    /// Nothing is written: `snapshot` without `--reports` runs the commands for what they
    /// read, and rendering 100k sockets nobody sees was a tenth of its time.
    pub discard: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON document (indented unless [`Output::pretty`] is off).
    Json,
    /// One JSON object per line: what streams (watch samples, flows, events), or the whole
    /// report as one line.
    Jsonl,
}

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

impl Output {
    /// Resolves the flags against the environment (`NO_COLOR`, whether stdout is a terminal).
    pub fn resolve(json: bool, jsonl: bool, color: ColorChoice) -> Output {
        let format = match (json, jsonl) {
            (_, true) => Format::Jsonl,
            (true, false) => Format::Json,
            (false, false) => Format::Table,
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            format,
            color: color_enabled(color, no_color, io::stdout().is_terminal()),
            pretty: true,
            discard: false,
        }
    }

    pub fn table() -> Output {
        Output {
            format: Format::Table,
            color: false,
            pretty: true,
            discard: false,
        }
    }
}

/// The colour decision as a pure function (<https://no-color.org>: `NO_COLOR` beats auto, and
/// an explicit `--color always` beats `NO_COLOR`).
pub fn color_enabled(choice: ColorChoice, no_color: bool, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    }
}

/// Something a command produced: JSON through serde, a table through its renderer.
pub trait Report {
    /// The JSON value of the report (one document, or one line with `--jsonl`); an object,
    /// to which `schema_version` is added.
    fn json(&self) -> &dyn erased_serde::Serialize;
    /// The human table.
    fn table(&self, out: &mut dyn Write, output: &Output) -> io::Result<()>;
    /// The JSON document (or line), `schema_version` first. By default through
    /// [`Report::json`], which is type-erased: a dynamic call per value. A report that can hold
    /// 100k records overrides it with [`write_versioned`] on its own type (for capture's flows
    /// the erased path cost a third of the whole run's CPU).
    fn write_json(&self, out: &mut dyn Write, output: &Output) -> io::Result<()> {
        write_versioned(out, self.json(), output)
    }
}

/// What a subcommand returns: its report (absent when it streamed its output as it went), the
/// exit code, and the notes for stderr.
pub struct Done {
    pub report: Option<Box<dyn Report>>,
    pub code: ExitCode,
    pub notes: Vec<String>,
}

impl Done {
    pub fn new(report: impl Report + 'static) -> Done {
        Done {
            report: Some(Box::new(report)),
            code: ExitCode::Ok,
            notes: Vec::new(),
        }
    }

    /// A report already boxed (a command that picks its report's type at run time).
    pub fn from_box(report: Box<dyn Report>) -> Done {
        Done {
            report: Some(report),
            code: ExitCode::Ok,
            notes: Vec::new(),
        }
    }

    /// Output already written (streamed); only the code and notes are left.
    pub fn streamed() -> Done {
        Done {
            report: None,
            code: ExitCode::Ok,
            notes: Vec::new(),
        }
    }

    pub fn code(mut self, code: ExitCode) -> Done {
        self.code = code;
        self
    }

    pub fn notes(mut self, notes: impl IntoIterator<Item = String>) -> Done {
        self.notes.extend(notes);
        self
    }
}

/// Writes a report in the chosen format: the one print call.
pub fn print(report: &dyn Report, output: &Output, out: &mut dyn Write) -> io::Result<()> {
    if output.discard {
        return Ok(());
    }
    match output.format {
        Format::Table => report.table(out, output),
        Format::Json | Format::Jsonl => report.write_json(out, output),
    }
}

/// Writes `value` as the JSON document (indented unless `output.pretty` is off) or line
/// (`--jsonl`), `schema_version` first, then the value's own fields.
pub fn write_versioned<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
    output: &Output,
) -> io::Result<()> {
    let doc = Versioned {
        schema_version: SCHEMA_VERSION,
        report: value,
    };
    match output.format {
        Format::Json if output.pretty => crate::render::write_json(out, &doc),
        _ => crate::render::write_json_line(out, &doc),
    }
}

/// Every JSON document carries `schema_version` first, then the report's own fields.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize + ?Sized> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a T,
}

/// A listing that streams: records go out as a command finds them, so a dump of 100k sockets
/// is never held whole. Commands push records; the format is decided here, once:
///
/// - `--json`: one document, `{"schema_version": 1, "<key>": [` then one record per line, then
///   `]}`: the same shape as every other report (`jq '.sockets[]'`), written as it comes.
/// - `--jsonl`: one record per line and nothing else (`jq -c 'select(…)'` as it streams); each
///   line is exactly an element of `--json`'s array (no `schema_version` on records).
/// - a table: the first [`crate::render::columns::CHUNK`] rows are held to measure the columns;
///   a short listing is therefore aligned exactly, a long one from that chunk and the widest
///   values its [`Rows`] declares, then each row is written as it arrives.
///
/// Reusable by any command: implement [`Rows`] for a view in `render/` (its columns and how a
/// record fills them) and push records into [`Listing::new`].
pub struct Listing<'w, V: Rows> {
    // A concrete buffer: serde and the table writer make many small writes, which through
    // `dyn Write` alone would each be a dynamic call.
    out: io::BufWriter<&'w mut dyn Write>,
    key: &'static str,
    view: V,
    how: How,
    cells: Cells,
}

/// One row's cells, their strings kept from row to row: a 100k-row table formats into the
/// same few buffers instead of allocating every cell.
#[derive(Default)]
pub struct Cells {
    v: Vec<String>,
    n: usize,
}

impl Cells {
    /// The next cell, empty, to write into (`write!(cells.cell(), …)`).
    pub fn cell(&mut self) -> &mut String {
        if self.n == self.v.len() {
            self.v.push(String::new());
        }
        let c = &mut self.v[self.n];
        c.clear();
        self.n += 1;
        c
    }

    /// A cell with this text.
    pub fn push(&mut self, text: &str) {
        self.cell().push_str(text);
    }

    /// The cells of the row so far.
    pub fn row(&self) -> &[String] {
        &self.v[..self.n]
    }

    pub fn clear(&mut self) {
        self.n = 0;
    }
}

/// What a streamed listing's records look like as table rows: the renderer's half.
pub trait Rows {
    /// The record pushed (borrowing what the command holds, hence the lifetime).
    type Record<'r>: Serialize;
    /// The columns, in order.
    fn columns(&self) -> Vec<Column>;
    /// Pushes one record's cells, one per column, escaped for a terminal.
    fn cells(&self, record: &Self::Record<'_>, cells: &mut Cells);
}

/// One table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// Numbers align right.
    pub right: bool,
    /// The widest value the column can hold, when it is known and small (an IPv4 endpoint is
    /// at most 21 characters): used once a listing outgrows its first chunk, so rows that
    /// come later still line up.
    pub widest: Option<usize>,
}

impl Column {
    pub fn left(name: &'static str) -> Column {
        Column {
            name,
            right: false,
            widest: None,
        }
    }
    pub fn right(name: &'static str) -> Column {
        Column {
            name,
            right: true,
            widest: None,
        }
    }
    pub fn widest(mut self, w: usize) -> Column {
        self.widest = Some(w);
        self
    }
}

enum How {
    Discard,
    Json { n: usize },
    Jsonl,
    Table(crate::render::columns::Streamer),
}

impl<'w, V: Rows> Listing<'w, V> {
    /// Starts a listing of `key` (`"sockets"`) records in the chosen format.
    pub fn new(
        out: &'w mut dyn Write,
        output: &Output,
        key: &'static str,
        view: V,
    ) -> Listing<'w, V> {
        let how = match output.format {
            _ if output.discard => How::Discard,
            Format::Json => How::Json { n: 0 },
            Format::Jsonl => How::Jsonl,
            Format::Table => How::Table(crate::render::columns::Streamer::new(view.columns())),
        };
        Listing {
            out: io::BufWriter::with_capacity(64 * 1024, out),
            key,
            view,
            how,
            cells: Cells::default(),
        }
    }

    /// Writes (or, for the first rows of a table, holds) one record.
    pub fn push(&mut self, record: &V::Record<'_>) -> io::Result<()> {
        match &mut self.how {
            How::Discard => Ok(()),
            How::Json { n } => {
                if *n == 0 {
                    write!(
                        self.out,
                        "{{\"schema_version\":{SCHEMA_VERSION},\"{}\":[\n  ",
                        self.key
                    )?;
                } else {
                    self.out.write_all(b",\n  ")?;
                }
                *n += 1;
                serde_json::to_writer(&mut self.out, record).map_err(io::Error::from)
            }
            How::Jsonl => {
                serde_json::to_writer(&mut self.out, record).map_err(io::Error::from)?;
                self.out.write_all(b"\n")
            }
            How::Table(t) => {
                self.cells.clear();
                self.view.cells(record, &mut self.cells);
                t.push(&mut self.out, self.cells.row())
            }
        }
    }

    /// Ends the listing: closes the JSON document, or writes a table's held rows.
    pub fn finish(mut self) -> io::Result<()> {
        match &mut self.how {
            How::Json { n: 0 } => writeln!(
                self.out,
                "{{\"schema_version\":{SCHEMA_VERSION},\"{}\":[]}}",
                self.key
            )?,
            How::Json { .. } => self.out.write_all(b"\n]}\n")?,
            How::Jsonl | How::Discard => {}
            How::Table(t) => t.finish(&mut self.out)?,
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_no_color_and_the_terminal() {
        use ColorChoice::*;
        assert!(color_enabled(Auto, false, true));
        assert!(!color_enabled(Auto, true, true), "NO_COLOR beats auto");
        assert!(!color_enabled(Auto, false, false), "no colour into a pipe");
        assert!(
            color_enabled(Always, true, false),
            "--color always beats NO_COLOR"
        );
        assert!(!color_enabled(Never, false, true));
    }

    #[derive(Serialize)]
    struct Tiny {
        count: u32,
    }

    struct TinyReport(Tiny);

    impl Report for TinyReport {
        fn json(&self) -> &dyn erased_serde::Serialize {
            &self.0
        }
        fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
            writeln!(out, "count {}", self.0.count)
        }
    }

    fn printed(format: Format) -> String {
        let mut out = Vec::new();
        let output = Output {
            format,
            color: false,
            pretty: true,
            discard: false,
        };
        print(&TinyReport(Tiny { count: 3 }), &output, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_report_three_formats() {
        assert_eq!(printed(Format::Table), "count 3\n");
        assert_eq!(
            printed(Format::Jsonl),
            "{\"schema_version\":1,\"count\":3}\n"
        );
        let doc: serde_json::Value = serde_json::from_str(&printed(Format::Json)).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["count"], 3);
        assert!(
            printed(Format::Json).contains("\n  "),
            "indented for --json"
        );
        // Compact (capture without --pretty): the same document on one line.
        let mut out = Vec::new();
        let compact = Output {
            format: Format::Json,
            color: false,
            pretty: false,
            discard: false,
        };
        print(&TinyReport(Tiny { count: 3 }), &compact, &mut out).unwrap();
        assert_eq!(out, b"{\"schema_version\":1,\"count\":3}\n");
    }

    struct TinyRows;

    impl Rows for TinyRows {
        type Record<'r> = Tiny;
        fn columns(&self) -> Vec<Column> {
            vec![Column::right("Count")]
        }
        fn cells(&self, r: &Tiny, cells: &mut Cells) {
            cells.push(&r.count.to_string());
        }
    }

    fn listed(format: Format, n: u32) -> String {
        let mut out = Vec::new();
        let output = Output {
            format,
            color: false,
            pretty: true,
            discard: false,
        };
        let mut l = Listing::new(&mut out, &output, "tiny", TinyRows);
        for count in 0..n {
            l.push(&Tiny { count }).unwrap();
        }
        l.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_listing_streams_in_three_formats() {
        assert_eq!(
            listed(Format::Json, 2),
            "{\"schema_version\":1,\"tiny\":[\n  {\"count\":0},\n  {\"count\":1}\n]}\n"
        );
        assert_eq!(
            listed(Format::Json, 0),
            "{\"schema_version\":1,\"tiny\":[]}\n"
        );
        let doc: serde_json::Value = serde_json::from_str(&listed(Format::Json, 3)).unwrap();
        assert_eq!(doc["tiny"][2]["count"], 2);
        assert_eq!(listed(Format::Jsonl, 2), "{\"count\":0}\n{\"count\":1}\n");
        assert_eq!(listed(Format::Jsonl, 0), "");
        assert_eq!(listed(Format::Table, 2), "Count\n    0\n    1\n");
    }
}
