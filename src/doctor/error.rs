//! What can stop `doctor`, `explain` and `pool`, each message saying what to do.

use std::io;

use crate::exit::ExitCode;
use crate::sockets::diag::DiagError;

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("cannot read {what}: {source}")]
    Proc {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Diag(#[from] DiagError),
    /// The target names no host we can find (usage: the user typed it).
    #[error("{0}; give an IP address or a name this host can resolve")]
    Resolve(String),
    #[error("cannot create the probe socket: {0}")]
    ProbeSocket(#[source] io::Error),
    #[error(
        "unknown error or symptom '{name}'; {closest} (`sockscope explain --help` lists what \
         it takes)"
    )]
    UnknownName { name: String, closest: String },
}

impl DoctorError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DoctorError::Resolve(_) | DoctorError::UnknownName { .. } => ExitCode::Usage,
            _ => ExitCode::Environment,
        }
    }
}
