//! Entering another network namespace (`--netns NAME|PATH|pid:PID`).
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread* only, so callers enter the
//! namespace before opening netlink sockets, pcap handles or `/proc/thread-self/net/*` files, and
//! in the thread that will use them.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::host::Host;

/// Where the namespace lives, as the user named it. Parsing does no system calls; the file is
/// only opened by [`enter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsSpec {
    /// A name created by `ip netns add`, i.e. a file under `/run/netns`.
    Name(String),
    /// A path to a namespace file (a bind mount or `/proc/PID/ns/net`).
    Path(PathBuf),
    /// The namespace a running process is in: the container case.
    Pid(u32),
}

impl NetnsSpec {
    /// The namespace file to open.
    pub fn path(&self) -> PathBuf {
        match self {
            NetnsSpec::Name(name) => Path::new("/run/netns").join(name),
            NetnsSpec::Path(path) => path.clone(),
            NetnsSpec::Pid(pid) => PathBuf::from(format!("{}/{pid}/ns/net", crate::host::PROC)),
        }
    }
}

impl fmt::Display for NetnsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsSpec::Name(name) => write!(f, "{name}"),
            NetnsSpec::Path(path) => write!(f, "{}", path.display()),
            NetnsSpec::Pid(pid) => write!(f, "pid:{pid}"),
        }
    }
}

impl FromStr for NetnsSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(
                "empty namespace: give a name from `ip netns list`, a path, or pid:PID".into(),
            );
        }
        if let Some(pid) = s.strip_prefix("pid:") {
            return match pid.parse::<u32>() {
                Ok(pid) if pid > 0 => Ok(NetnsSpec::Pid(pid)),
                _ => Err(format!(
                    "'{pid}' is not a process id (expected pid:PID, e.g. pid:1234)"
                )),
            };
        }
        if s.contains('/') {
            return Ok(NetnsSpec::Path(PathBuf::from(s)));
        }
        if s == "." || s == ".." {
            return Err(format!("'{s}' is not a namespace name"));
        }
        Ok(NetnsSpec::Name(s.to_string()))
    }
}

/// Why a namespace could not be entered. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("no network namespace {spec} ({path} does not exist); list them with `ip netns list`")]
    NotFound { spec: String, path: String },
    #[error("no process {pid}, so no namespace pid:{pid}; find the process with `pgrep` or `ps`")]
    NoProcess { pid: u32 },
    #[error("{path} is not a network namespace file")]
    NotNetns { path: String },
    #[error(
        "entering network namespace {spec} needs CAP_SYS_ADMIN (and reading {path} may need \
         CAP_SYS_PTRACE): run as root, e.g. `sudo sockscope …`"
    )]
    Permission { spec: String, path: String },
    #[error(
        "network namespace {spec}: {path} is refused even to root, so that process is \
         protected (a sandbox, or an LSM such as SELinux or AppArmor); use another process of \
         the same container (pid:PID) or the namespace's name from `ip netns list`"
    )]
    DeniedToRoot { spec: String, path: String },
    #[error("cannot enter network namespace {spec} ({path}): {source}")]
    Io {
        spec: String,
        path: String,
        source: io::Error,
    },
}

/// Refused: a missing privilege, or (as root) a process protected from everyone.
fn denied(spec: &NetnsSpec, shown: &str) -> NetnsError {
    let (spec, path) = (spec.to_string(), shown.to_string());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        NetnsError::DeniedToRoot { spec, path }
    } else {
        NetnsError::Permission { spec, path }
    }
}

/// Why the namespace file could not be opened or looked at.
fn open_error(spec: &NetnsSpec, shown: &str, e: io::Error) -> NetnsError {
    match e.kind() {
        io::ErrorKind::NotFound => match spec {
            NetnsSpec::Pid(pid) => NetnsError::NoProcess { pid: *pid },
            _ => NetnsError::NotFound {
                spec: spec.to_string(),
                path: shown.to_string(),
            },
        },
        io::ErrorKind::PermissionDenied => denied(spec, shown),
        _ => NetnsError::Io {
            spec: spec.to_string(),
            path: shown.to_string(),
            source: e,
        },
    }
}

/// Moves the calling thread into the namespace (through the run's host: a replayed snapshot
/// only notes which recorded namespace the thread now reads).
pub fn enter(host: &dyn Host, spec: &NetnsSpec) -> Result<(), NetnsError> {
    host.enter_netns(spec)
}

/// The `setns` itself, for the live host.
pub fn setns(spec: &NetnsSpec) -> Result<(), NetnsError> {
    let path = spec.path();
    let shown = path.display().to_string();
    let file = File::open(&path).map_err(|e| open_error(spec, &shown, e))?;
    // SAFETY: plain syscall on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::EPERM) => denied(spec, &shown),
        Some(libc::EINVAL) => NetnsError::NotNetns { path: shown },
        _ => NetnsError::Io {
            spec: spec.to_string(),
            path: shown,
            source: err,
        },
    })
}

/// The inode of the namespace `spec` names, which identifies it (as in `/proc/PID/ns/net`),
/// without entering it: for selecting the processes inside a namespace.
pub fn inode(host: &dyn Host, spec: &NetnsSpec) -> Result<u64, NetnsError> {
    let path = spec.path();
    let shown = path.display().to_string();
    host.stat(&shown)
        .map(|m| m.ino)
        .map_err(|e| open_error(spec, &shown, e))
}

/// [`setns`] if a namespace was given (the live host's own, before any recording).
pub fn setns_opt(spec: Option<&NetnsSpec>) -> Result<(), NetnsError> {
    spec.map_or(Ok(()), setns)
}

/// Enters the namespace if one was asked for; the common case of every subcommand.
pub fn enter_opt(host: &dyn Host, spec: Option<&NetnsSpec>) -> Result<(), NetnsError> {
    match spec {
        Some(spec) => enter(host, spec),
        None => Ok(()),
    }
}

/// Runs `f` on a worker thread that has entered the namespace at `path` (setns moves only
/// the calling thread, so the caller's own namespace is untouched).
pub fn run_in<T, E, F>(host: &dyn Host, path: &Path, f: F) -> Result<T, E>
where
    T: Send,
    E: From<NetnsError> + Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    std::thread::scope(|s| {
        match s
            .spawn(|| {
                enter(host, &NetnsSpec::Path(path.to_path_buf()))?;
                f()
            })
            .join()
        {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("web".parse(), Ok(NetnsSpec::Name("web".into())));
        assert_eq!(
            "/var/run/netns/web".parse(),
            Ok(NetnsSpec::Path("/var/run/netns/web".into()))
        );
        assert_eq!("pid:42".parse(), Ok(NetnsSpec::Pid(42)));
        assert_eq!(
            NetnsSpec::Pid(42).path(),
            PathBuf::from(&format!("{}/42/ns/net", crate::host::PROC))
        );
        assert_eq!(
            NetnsSpec::Name("web".into()).path(),
            PathBuf::from("/run/netns/web")
        );
    }

    #[test]
    fn rejects_nonsense_before_any_syscall() {
        assert!("".parse::<NetnsSpec>().is_err());
        assert!("pid:".parse::<NetnsSpec>().is_err());
        assert!("pid:abc".parse::<NetnsSpec>().is_err());
        assert!("pid:0".parse::<NetnsSpec>().is_err());
        assert!("..".parse::<NetnsSpec>().is_err());
    }

    #[test]
    fn unknown_name_is_not_found() {
        let spec = NetnsSpec::Name("sockscope-no-such-ns-xyz".into());
        match enter(&crate::host::LiveHost, &spec) {
            Err(NetnsError::NotFound { .. }) => {}
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}
