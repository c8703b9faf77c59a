//! One function per subcommand wiring collect → analyse → render. They return what the binary
//! needs to finish the run (exit code, notes for stderr) and never print on their own.

pub mod capture;
pub mod doctor;
pub mod explain;
pub mod exporter;
pub mod fds;
pub mod listeners;
pub mod pool;
pub mod sockets;
pub mod states;

use std::io;

use crate::cli::FamilyArgs;
use crate::exit::ExitCode;
use crate::netns::NetnsError;
use crate::sockets::diag::DiagError;
use crate::sockets::model::Proto;

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
pub fn require_pids(root: &str, pids: &[u32]) -> Result<(), RunError> {
    for &pid in pids {
        if std::fs::symlink_metadata(format!("{root}/{pid}")).is_err() {
            return Err(RunError::Input(format!(
                "no process {pid}: it does not exist (or has exited); check with `ps -p {pid}`"
            )));
        }
    }
    Ok(())
}

/// The note shown when some processes' fds could not be read.
pub fn unreadable_note(unreadable: usize) -> Option<String> {
    if unreadable == 0 {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    Some(if root {
        format!("{unreadable} process(es) denied access to their fds even to root (kernel threads or LSM policy); their sockets show no owner")
    } else {
        format!(
            "{unreadable} process(es) belong to other users and could not be read, so their sockets show no owner: \
             run as root, or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"
        )
    })
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
