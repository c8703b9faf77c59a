//! The sockscope binary: parse arguments, run one subcommand, map the result to an exit code.

use std::io::{self, BufWriter, Write};
use std::process;

use clap::{CommandFactory, Parser};
use sockscope::cli::{Cli, Command, Shell};
use sockscope::commands::{self, Outcome, RunError};
use sockscope::exit::ExitCode;

fn main() {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let result = run(&cli, &mut out).and_then(|o| out.flush().map(|_| o).map_err(RunError::Output));
    match result {
        Ok(outcome) => {
            for note in &outcome.notes {
                eprintln!("sockscope: {note}");
            }
            process::exit(outcome.code.code());
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

fn run(cli: &Cli, out: &mut dyn Write) -> Result<Outcome, RunError> {
    match &cli.command {
        Command::Sockets(a) => commands::sockets::run(a, out),
        Command::Listeners(a) => commands::listeners::run(a, out),
        Command::States(a) => commands::states::run(a, out),
        Command::Doctor(a) => commands::doctor::run(a, out),
        Command::Explain(a) => commands::explain::run(a, out),
        Command::Pool(a) => commands::pool::run(a, out),
        Command::Capture(a) => commands::capture::run(a, out),
        Command::Fds(a) => commands::fds::run(a, out),
        Command::Completions(a) => {
            let shell = match a.shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "sockscope", out);
            Ok(Outcome::ok())
        }
        Command::GenerateMan { dir } => {
            sockscope::manpages::write_all(dir).map_err(RunError::Output)?;
            Ok(Outcome::ok())
        }
    }
}
