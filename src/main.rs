//! The sockscope binary: parse arguments, run one subcommand, map the result to an exit code.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process;

use clap::Parser;
use sockscope::cli::{looks_like_ss, ss_flag_hint, Cli, Command};
use sockscope::commands::{self, RunError};
use sockscope::exit::ExitCode;
use sockscope::host::{Host, LiveHost};
use sockscope::report::{self, Done};

fn main() {
    let mut cli = parse(std::env::args_os().collect());
    // The host every collector reads: this one, or a snapshot (--from), leaked so that the
    // commands running threads of their own can hold it ('static, see `commands::dispatch`).
    let host: &'static dyn Host = match commands::snapshot::use_snapshot(&mut cli.command) {
        Ok(Some(replay)) => Box::leak(Box::new(replay)),
        Ok(None) => &LiveHost,
        Err(e) => {
            eprintln!("sockscope: {e}");
            process::exit(e.exit_code().code());
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, Stdout::new(stdout.lock()));
    let output = commands::output_of(&cli);
    let result = run(&cli, host, &mut out).and_then(|done| {
        if let Some(r) = &done.report {
            report::print(r.as_ref(), &output, &mut out)?;
        }
        out.flush()?;
        Ok(done)
    });
    match result {
        Ok(done) => {
            for note in &done.notes {
                eprintln!("sockscope: {note}");
            }
            process::exit(done.code.code());
        }
        Err(e) if e.is_broken_pipe() => process::exit(ExitCode::Ok.code()),
        Err(e) => {
            drop(out);
            // Each message already carries its cause and the fix.
            eprintln!("sockscope: {e}");
            process::exit(e.exit_code().code());
        }
    }
}

/// Parses the command line. One written as for ss (`sockscope -tlnp`, `sockscope state
/// established`) runs as `sockscope sockets …`, which is what it means.
fn parse(args: Vec<OsString>) -> Cli {
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let sub = subcommand_of(&args);
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(_) if looks_like_ss(first) => {
            let mut forwarded = args.clone();
            forwarded.insert(1, "sockets".into());
            Cli::try_parse_from(&forwarded).unwrap_or_else(|e| usage_error(e, "sockets"))
        }
        Err(e) => usage_error(e, &sub),
    }
}

/// The subcommand word of a command line, or "" when there is none.
fn subcommand_of(args: &[OsString]) -> String {
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .unwrap_or("")
        .to_string()
}

/// Help and version go out as clap prints them. A usage error becomes one line, like every
/// other sockscope error, so scripts and tired eyes see the cause at once; clap's "tip" (the
/// likely intended flag) is kept on that line.
fn usage_error(e: clap::Error, subcommand: &str) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    let mut msg = one_line(&e.to_string());
    if let (ErrorKind::UnknownArgument, Some(ContextValue::String(flag))) =
        (e.kind(), e.get(ContextKind::InvalidArg))
    {
        if let Some(hint) = ss_flag_hint(flag, subcommand) {
            // clap's tip for this case ("to pass '-x' as a value") would mislead: the hint
            // replaces it.
            msg = format!("unexpected argument '{flag}': {hint}");
        }
    }
    eprintln!("sockscope: {msg}; see --help");
    process::exit(ExitCode::Usage.code())
}

/// clap's multi-line message as one line: the first line, the items listed under it when it
/// ends with a colon (missing arguments), and clap's tip in parentheses.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("bad usage");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let rest: Vec<&str> = lines.collect();
    let mut msg = first.to_string();
    if let Some(head) = first.strip_suffix(':') {
        let items: Vec<&str> = rest
            .iter()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
            .copied()
            .collect();
        if !items.is_empty() {
            msg = format!("{head}: {}", items.join(", "));
        }
    }
    if let Some(tip) = rest.iter().find_map(|l| l.strip_prefix("tip: ")) {
        msg.push_str(&format!(" ({tip})"));
    }
    msg
}

fn run(cli: &Cli, host: &'static dyn Host, out: &mut dyn Write) -> Result<Done, RunError> {
    Ok(match &cli.command {
        Command::Completions(a) => {
            sockscope::completions::write(a.shell, out).map_err(RunError::Output)?;
            Done::streamed()
        }
        Command::Complete { what } => {
            sockscope::completions::write_dynamic(*what, out).map_err(RunError::Output)?;
            Done::streamed()
        }
        Command::GenerateMan { dir } => {
            sockscope::manpages::write_all(dir).map_err(RunError::Output)?;
            Done::streamed()
        }
        _ => commands::dispatch(cli, host, out)?,
    })
}

/// Standard output for the one buffered writer: a duplicate of fd 1 where there is one.
/// Std's own stdout is line-buffered and scans every write for its last newline (a tenth of
/// writing a 40 MB capture report); commands flush `out` themselves where lines must show
/// at once (watches, live capture lines).
enum Stdout<'a> {
    Fd(std::fs::File),
    Std(io::StdoutLock<'a>),
}

impl<'a> Stdout<'a> {
    fn new(lock: io::StdoutLock<'a>) -> Stdout<'a> {
        use std::os::fd::AsFd;
        match lock.as_fd().try_clone_to_owned() {
            Ok(fd) => Stdout::Fd(fd.into()),
            Err(_) => Stdout::Std(lock),
        }
    }
}

impl Write for Stdout<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stdout::Fd(f) => f.write(buf),
            Stdout::Std(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stdout::Fd(f) => f.flush(),
            Stdout::Std(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_messages_become_one_line() {
        assert_eq!(
            one_line(
                "error: the following required arguments were not provided:\n  --rps <N>\n  \
                 --latency <TIME>\n\nUsage: sockscope pool --rps <N> --latency <TIME>\n\n\
                 For more information, try '--help'.\n"
            ),
            "the following required arguments were not provided: --rps <N>, --latency <TIME>"
        );
        assert_eq!(
            one_line(
                "error: unexpected argument '--prot' found\n\n  tip: a similar argument \
                 exists: '--port'\n\nUsage: sockscope sockets [OPTIONS]\n"
            ),
            "unexpected argument '--prot' found (a similar argument exists: '--port')"
        );
    }
}
