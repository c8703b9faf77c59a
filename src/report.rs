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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON document (pretty-printed: it is read by people as often as by jq).
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
        }
    }

    pub fn table() -> Output {
        Output {
            format: Format::Table,
            color: false,
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
    match output.format {
        Format::Table => report.table(out, output),
        Format::Json => crate::render::write_json(out, &versioned(report)),
        Format::Jsonl => crate::render::write_json_line(out, &versioned(report)),
    }
}

/// Every JSON document carries `schema_version` first, then the report's own fields.
#[derive(Serialize)]
struct Versioned<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a dyn erased_serde::Serialize,
}

fn versioned(report: &dyn Report) -> Versioned<'_> {
    Versioned {
        schema_version: SCHEMA_VERSION,
        report: report.json(),
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
        assert!(printed(Format::Json).contains('\n'), "pretty for --json");
    }
}
