//! The sockscope binary: parse arguments, run one subcommand, map the result to an exit code.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process;

use clap::{CommandFactory, Parser};
use sockscope::cli::{looks_like_ss, ss_flag_hint, Cli, Command, Shell};
use sockscope::commands::{self, RunError};
use sockscope::exit::ExitCode;
use sockscope::report::{self, Done, Output};

fn main() {
    let cli = parse(std::env::args_os().collect());
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let output = output_of(&cli);
    let result = run(&cli, &mut out).and_then(|done| {
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

/// How the chosen subcommand's report is printed.
fn output_of(cli: &Cli) -> Output {
    match &cli.command {
        Command::Sockets(a) => a.common.output(),
        Command::Listeners(a) => a.common.output(),
        Command::States(a) => a.common.output(),
        Command::Doctor(a) => a.common.output(),
        Command::Capture(a) => a.common.output(),
        Command::Fds(a) => a.common.output(),
        _ => Output::table(),
    }
}

fn run(cli: &Cli, out: &mut dyn Write) -> Result<Done, RunError> {
    Ok(match &cli.command {
        Command::Sockets(a) => commands::sockets::run(a, out, &output_of(cli))?,
        Command::Listeners(a) => commands::listeners::run(a, out, &output_of(cli))?,
        Command::States(a) => commands::states::run(a)?,
        Command::Doctor(a) => commands::doctor::run(a, out)?.into(),
        Command::Explain(a) => commands::explain::run(a, out)?.into(),
        Command::Pool(a) => commands::pool::run(a, out)?.into(),
        Command::Capture(a) => commands::capture::run(a, out)?.into(),
        Command::Fds(a) => commands::fds::run(a, out)?.into(),
        Command::Completions(a) => {
            let shell = match a.shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "sockscope", out);
            Done::streamed()
        }
        Command::GenerateMan { dir } => {
            sockscope::manpages::write_all(dir).map_err(RunError::Output)?;
            Done::streamed()
        }
    })
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
