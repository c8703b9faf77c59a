//! `sockets -K`: kill the sockets a filter matches (SOCK_DESTROY), after asking on a terminal.

use std::io::{self, BufRead, IsTerminal, Write};

use super::RunError;
use crate::cli::SocketsArgs;
use crate::exit::ExitCode;
use crate::host::Host;
use crate::netns;
use crate::render::socket_endpoint;
use crate::render::sockets::SocketsView;
use crate::report::{Done, Listing};
use crate::sockets::destroy::{self, Target};
use crate::sockets::filter::Selection;
use crate::sockets::placed::Placed;

pub(super) fn run(
    host: &dyn Host,
    args: &SocketsArgs,
    sel: &Selection,
    mut list: Listing<'_, SocketsView>,
) -> Result<Done, RunError> {
    // Usage first, then privilege, then the namespace: each refusal before any socket dies.
    if sel.user.is_empty() {
        return Err(RunError::Input(
            "-K needs a filter naming what to kill (a port, an address or an expression such \
             as `dport = :443`): without one it would kill every socket"
                .into(),
        ));
    }
    if host.filters_in_user_space() {
        return Err(RunError::Input(
            "a snapshot cannot kill sockets: -K works on the live host only".into(),
        ));
    }
    let ask = !args.yes;
    if ask && !(io::stdin().is_terminal() && io::stderr().is_terminal()) {
        return Err(RunError::Input(
            "-K asks before killing and this is not a terminal: add --yes to kill without asking"
                .into(),
        ));
    }
    if !destroy::has_net_admin() {
        return Err(RunError::Refused(
            "killing sockets needs CAP_NET_ADMIN (run as root, or grant the capability)".into(),
        ));
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    let targets = destroy::targets(host, sel)?;
    if targets.is_empty() {
        list.finish()?;
        return Ok(
            Done::streamed().notes(["no socket matches the filter: nothing killed".to_string()])
        );
    }
    if ask {
        for t in &targets {
            list.push(&Placed::bare(&t.socket))?;
        }
        list.finish()?;
        if !confirm(targets.len())? {
            return Ok(Done::streamed().notes(["nothing killed".to_string()]));
        }
        let (killed, refused) = kill_all(host, &targets)?;
        return Ok(report(targets.len(), killed.len(), &refused));
    }
    let (killed, refused) = kill_all(host, &targets)?;
    for t in &killed {
        list.push(&Placed::bare(&t.socket))?;
    }
    list.finish()?;
    Ok(report(targets.len(), killed.len(), &refused))
}

type Refused<'a> = Vec<(&'a Target, i32)>;

/// Kills each target in turn. A refusal every socket would get (no privilege, no kernel
/// support) is an error when it comes first; any other is kept per socket.
fn kill_all<'a>(
    host: &dyn Host,
    targets: &'a [Target],
) -> Result<(Vec<&'a Target>, Refused<'a>), RunError> {
    let mut killed = Vec::new();
    let mut refused = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let answer = destroy::destroy(host, t, i as u32 + 1)
            .map_err(|e| RunError::Refused(format!("cannot send SOCK_DESTROY: {e}")))?;
        match answer {
            Ok(()) => killed.push(t),
            Err(libc::EPERM) | Err(libc::EACCES) if killed.is_empty() => {
                return Err(RunError::Refused(
                    "the kernel refused to kill: CAP_NET_ADMIN is needed in the socket's network \
                     namespace"
                        .into(),
                ))
            }
            Err(libc::EOPNOTSUPP) if killed.is_empty() => {
                return Err(RunError::Refused(
                    "this kernel cannot kill sockets (built without CONFIG_INET_DIAG_DESTROY)"
                        .into(),
                ))
            }
            Err(errno) => refused.push((t, errno)),
        }
    }
    Ok((killed, refused))
}

/// What was killed, on stderr, and each refusal: any refusal is exit 1.
fn report(matched: usize, killed: usize, refused: &[(&Target, i32)]) -> Done {
    let mut notes = vec![format!(
        "killed {killed} of {matched} matching socket{}",
        if matched == 1 { "" } else { "s" }
    )];
    notes.extend(refused.iter().map(|(t, errno)| refusal(t, *errno)));
    let code = if refused.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Problems
    };
    Done::streamed().code(code).notes(notes)
}

/// Asks on stderr, reads the answer from stdin: only `y` or `yes` kills.
fn confirm(n: usize) -> io::Result<bool> {
    let mut err = io::stderr().lock();
    write!(
        err,
        "kill {n} socket{}? [y/N] ",
        if n == 1 { "" } else { "s" }
    )?;
    err.flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let a = line.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}

/// One socket the kernel would not kill, and why.
fn refusal(t: &Target, errno: i32) -> String {
    let s = &t.socket;
    let why = match errno {
        libc::ENOENT => {
            "it was gone (closed, or replaced by another connection) before the kill".to_string()
        }
        e => io::Error::from_raw_os_error(e).to_string(),
    };
    format!(
        "not killed: {} {} -> {}: {why}",
        s.proto.name(),
        socket_endpoint(s, &s.local),
        socket_endpoint(s, &s.peer)
    )
}
