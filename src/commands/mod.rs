//! One function per subcommand wiring collect → analyse → render. They return what the binary
//! needs to finish the run (exit code, notes for stderr) and never print on their own.

pub mod capture;
pub mod counters;
pub mod doctor;
pub mod explain;
pub mod exporter;
pub mod fds;
pub mod listeners;
pub mod pool;
pub mod snapshot;
pub mod sockets;
pub mod states;
pub mod summary;

use std::io;

use crate::cli::FamilyArgs;
use crate::exit::ExitCode;
use crate::host::Host;
use crate::netns::NetnsError;
use crate::procs::unreadable::{could_own, current_netns, Denied};
use crate::sockets::diag::DiagError;
use crate::sockets::model::{Proto, Socket};

/// How the chosen subcommand's report is printed.
pub fn output_of(cli: &crate::cli::Cli) -> crate::report::Output {
    use crate::cli::Command;
    match &cli.command {
        Command::Sockets(a) => a.common.output(),
        Command::Listeners(a) => a.common.output(),
        Command::States(a) => a.common.output(),
        Command::Summary(a) => a.common.output(),
        Command::Counters(a) => a.common.output(),
        Command::Doctor(a) => a.common.output(),
        Command::Capture(a) => crate::report::Output {
            pretty: a.pretty,
            ..a.common.output()
        },
        Command::Fds(a) => a.common.output(),
        Command::Explain(a) => a.output.output(),
        Command::Pool(a) => a.output.output(),
        _ => crate::report::Output::table(),
    }
}

/// Runs the subcommand of a parsed command line: one dispatch for `main` and for `snapshot`,
/// which replays the collecting commands while it records. Completions and man pages, which
/// describe the CLI itself, stay in `main`.
///
/// `host` is `'static` because capture, doctor's probe capture and the exporter hand it to
/// threads of their own: `main` keeps the live host (a static) or leaks the snapshot it opened.
pub fn dispatch(
    cli: &crate::cli::Cli,
    host: &'static dyn Host,
    out: &mut dyn std::io::Write,
) -> Result<crate::report::Done, RunError> {
    dispatch_as(cli, host, out, &output_of(cli))
}

/// [`dispatch`] with the output given (a snapshot discards what it does not keep).
pub fn dispatch_as(
    cli: &crate::cli::Cli,
    host: &'static dyn Host,
    out: &mut dyn std::io::Write,
    output: &crate::report::Output,
) -> Result<crate::report::Done, RunError> {
    use crate::cli::Command;
    Ok(match &cli.command {
        Command::Snapshot(a) => snapshot::run(a)?,
        Command::Sockets(a) => sockets::run(host, a, out, output)?,
        Command::Listeners(a) => listeners::run(host, a, out, output)?,
        Command::States(a) => states::run(host, a, out, output)?,
        Command::Summary(a) => summary::run(host, a)?,
        Command::Counters(a) => counters::run(host, a)?,
        Command::Doctor(a) => doctor::run(host, a)?,
        Command::Explain(a) => explain::run(a)?,
        Command::Pool(a) => pool::run(a)?,
        Command::Capture(a) => capture::run(host, a, out)?,
        Command::Fds(a) => fds::run(host, a, out)?,
        Command::Exporter(a) => exporter::run(host, a)?,
        Command::Completions(_) | Command::Complete { .. } | Command::GenerateMan { .. } => {
            return Err(RunError::Input(
                "completions and man pages are written by the binary itself".into(),
            ))
        }
    })
}

/// How a subcommand ended, when it did not fail.
#[derive(Debug)]
pub struct Outcome {
    pub code: ExitCode,
    /// Things the user should know that are not the output (shown on stderr).
    pub notes: Vec<String>,
}

/// Commands not yet returning a report print their own output; what is left is the same as a
/// streamed [`Done`].
impl From<Outcome> for crate::report::Done {
    fn from(o: Outcome) -> Self {
        crate::report::Done::streamed().code(o.code).notes(o.notes)
    }
}

impl Outcome {
    pub fn ok() -> Self {
        Outcome {
            code: ExitCode::Ok,
            notes: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Diag(#[from] DiagError),
    #[error("cannot list processes in /proc: {0}")]
    Proc(#[source] io::Error),
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    #[error(transparent)]
    Doctor(#[from] crate::doctor::error::DoctorError),
    /// A kernel file that could not be read (`/proc/net/sockstat`…): an environment error.
    #[error("{0}")]
    Unreadable(String),
    /// A missing privilege or kernel feature, named in the message.
    #[error("{0}")]
    Refused(String),
    /// Input that parses but names nothing real (a pid that does not exist).
    #[error("{0}")]
    Input(String),
}

impl RunError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Output(_) => ExitCode::Environment,
            RunError::Doctor(e) => e.exit_code(),
            RunError::Capture(e) if e.is_input() => ExitCode::Usage,
            RunError::Input(_) => ExitCode::Usage,
            _ => ExitCode::Environment,
        }
    }

    /// A closed stdout (`sockscope … | head`) is not an error worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, RunError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Checks each `--pid` names a process before any work: a wrong pid is the user's mistake.
pub fn require_pids(host: &dyn Host, root: &str, pids: &[u32]) -> Result<(), RunError> {
    for &pid in pids {
        if host.exists(&format!("{root}/{pid}")).is_err() {
            return Err(RunError::Input(format!(
                "no process {pid}: it does not exist (or has exited); check with `ps -p {pid}`"
            )));
        }
    }
    Ok(())
}

/// What the user does not get for the processes whose fds could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Socket views: their sockets show no owner.
    Owners,
    /// `sockets --pid/--name`: their sockets cannot be listed.
    Sockets,
    /// `fds`: their rows lack counts, sockets or kinds.
    Fds,
    /// `doctor`: their fd use is not checked.
    FdUse,
}

/// The one note for processes whose fds could not be read, said once per run: names them
/// (the first five), says what is missing because of it and, when not root, which privilege
/// would show it. Callers pass only the processes that matter to what is shown.
pub fn unreadable_note(denied: &[Denied], missing: Missing) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    unreadable_words(denied, missing, unsafe { libc::geteuid() } == 0)
}

/// [`unreadable_note`] with the privilege given (pure, for tests).
pub fn unreadable_words(denied: &[Denied], missing: Missing, root: bool) -> Option<String> {
    const NAMED: usize = 5;
    if denied.is_empty() {
        return None;
    }
    let one = denied.len() == 1;
    let named: Vec<String> = denied
        .iter()
        .take(NAMED)
        .map(|d| format!("{} ({})", d.pid, crate::render::escape(&d.name)))
        .collect();
    let more = denied.len().saturating_sub(NAMED);
    let who = format!(
        "{} {}{}",
        if one { "pid" } else { "pids" },
        named.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    let its = if one { "its" } else { "their" };
    let lost = match missing {
        Missing::Owners => format!("{its} sockets show no owner"),
        Missing::Sockets => format!("{its} sockets cannot be listed"),
        Missing::Fds => format!("{its} fds are marked unreadable"),
        Missing::FdUse => format!("{its} fd use is not checked"),
    };
    Some(if root {
        format!(
            "{who} {} access to {its} fds even to root (LSM policy or a sandbox): {lost}",
            if one { "denies" } else { "deny" }
        )
    } else {
        format!(
            "{who} {} to another user: {lost}; run as root, or grant CAP_SYS_PTRACE and \
             CAP_DAC_READ_SEARCH",
            if one { "belongs" } else { "belong" }
        )
    })
}

/// The note for a socket view: only when a socket shown has no owner and an unreadable
/// process could hold it (it is in this namespace, or its namespace is unknown).
pub fn owners_note<'a>(
    host: &dyn Host,
    denied: &[Denied],
    shown: impl IntoIterator<Item = &'a Socket>,
) -> Option<String> {
    let unowned = shown
        .into_iter()
        .any(|s| s.inode != 0 && s.processes.as_ref().is_none_or(|p| p.is_empty()));
    unreadable_note(
        &could_own(denied, current_netns(host), unowned),
        Missing::Owners,
    )
}

/// Protocols and families to dump for the -t/-u/-4/-6 flags.
pub fn protos_families(f: &FamilyArgs) -> (Vec<Proto>, Vec<u8>) {
    let protos = match (f.tcp, f.udp) {
        (true, false) => vec![Proto::Tcp],
        (false, true) => vec![Proto::Udp],
        _ => vec![Proto::Tcp, Proto::Udp],
    };
    let families = match (f.ipv4, f.ipv6) {
        (true, false) => vec![4],
        (false, true) => vec![6],
        _ => vec![4, 6],
    };
    (protos, families)
}

/// The signals that end a long run (`--watch`, a capture, an interval) with its report: Ctrl-C,
/// SIGTERM and SIGHUP (a closed terminal). The first sets the returned flag, and the run
/// finishes what it has (a complete report: exit 0, README "Exit codes"); a second exits at
/// once with 130, should stopping ever hang.
pub const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

pub fn stop_on_signals() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, RunError> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in STOP_SIGNALS {
        signal_hook::flag::register_conditional_shutdown(sig, 130, std::sync::Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, std::sync::Arc::clone(&stop)))
            .map_err(RunError::Output)?;
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(pid: u32, name: &str) -> Denied {
        Denied {
            pid,
            name: name.into(),
            netns: None,
        }
    }

    #[test]
    fn one_wording_names_the_processes() {
        assert_eq!(unreadable_words(&[], Missing::Owners, true), None);
        assert_eq!(
            unreadable_words(&[d(1, "init")], Missing::Owners, true).unwrap(),
            "pid 1 (init) denies access to its fds even to root (LSM policy or a sandbox): its \
             sockets show no owner"
        );
        assert_eq!(
            unreadable_words(&[d(1, "init"), d(9, "x\x1b")], Missing::FdUse, false).unwrap(),
            "pids 1 (init), 9 (x\\x1b) belong to another user: their fd use is not checked; run \
             as root, or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"
        );
        let many: Vec<Denied> = (1..=8).map(|p| d(p, "w")).collect();
        let note = unreadable_words(&many, Missing::Fds, true).unwrap();
        assert!(
            note.starts_with("pids 1 (w), 2 (w), 3 (w), 4 (w), 5 (w) and 3 more deny access"),
            "{note}"
        );
    }
}
