//! `sockscope sockets`.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{
    owners_note, protos_families, require_pids, unreadable_note, Missing, Outcome, RunError,
};
use crate::cli::SocketsArgs;
use crate::netns;
use crate::procs::fdwalk::list_pids;
use crate::procs::namespaces::spaces_of;
use crate::procs::owners::{read_owners, read_owners_of};
use crate::procs::procfile::comm;
use crate::render::escape;
use crate::render::sockets::{write_sockets_json, write_sockets_table, JsonArray, SocketsView};
use crate::sockets::filter::{Selection, UserFilter};
use crate::sockets::model::{Socket, TcpState};
use crate::sockets::ssfilter;
use crate::sockets::{for_each_socket, Extras};

pub fn run(args: &SocketsArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    // The filter words are input: checked before any syscall.
    let query = ssfilter::parse(&args.filter).map_err(|e| RunError::Input(e.to_string()))?;
    let (mut protos, families) = protos_families(&args.family);
    let states = state_mask(args, query.states);
    if states == Some(0) {
        // `exclude all`: no state left to show, so nothing is dumped (ss prints nothing too).
        protos.clear();
    }
    let sel = Selection {
        protos,
        families,
        states: states.unwrap_or(0),
        user: UserFilter {
            port: args.port,
            sport: args.sport,
            dport: args.dport,
            src: args.src,
            dst: args.dst,
            expr: query.expr,
        },
    };
    if !args.pids.is_empty() || args.name.is_some() {
        return by_process(args, &sel, out);
    }
    netns::enter_opt(args.common.netns.as_ref())?;
    if args.common.json && !args.processes {
        // Nothing to join: stream each socket straight out, memory flat at any table size.
        let mut array = JsonArray::default();
        let mut failed = None;
        for_each_socket(&sel, extras(args), &mut |s| {
            if failed.is_none() {
                failed = array.push(out, &s).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        array.finish(out)?;
        return Ok(Outcome::ok());
    }
    let mut outcome = Outcome::ok();
    let mut sockets = Vec::new();
    if args.processes {
        // The fd walk behind owners (nearly all kernel time) does not depend on the dump, so
        // both run at once; the walk then maps every socket inode on the host, not only the
        // ones shown, which costs little next to reading the links.
        let (dumped, owners) = std::thread::scope(|scope| {
            let walk = scope.spawn(|| read_owners("/proc", None));
            let dumped = for_each_socket(&sel, extras(args), &mut |s| sockets.push(s));
            (dumped, walk.join())
        });
        dumped?;
        let owners = match owners {
            Ok(r) => r.map_err(RunError::Proc)?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        for s in &mut sockets {
            s.processes = Some(if s.inode == 0 {
                Vec::new()
            } else {
                owners.get(s.inode)
            });
        }
        outcome.notes.extend(owners_note(&owners.denied, &sockets));
    } else {
        for_each_socket(&sel, extras(args), &mut |s| sockets.push(s))?;
    }
    write(args, out, &sockets, args.processes)?;
    Ok(outcome)
}

/// The state mask, as ss decides it: state words (`--state`, and the filter's `state` and
/// `exclude` clauses) win over -l; without either, every state (`None`).
fn state_mask(args: &SocketsArgs, clauses: Option<u32>) -> Option<u32> {
    let flags = args.state.iter().fold(0, |m, s| m | s.0);
    match (clauses, flags) {
        (Some(c), f) => Some(c | f),
        (None, 0) if args.listening => {
            // LISTEN for TCP; unconnected UDP sockets are in CLOSE.
            Some(TcpState::Listening.mask_bit() | TcpState::Close.mask_bit())
        }
        (None, 0) => None,
        (None, f) => Some(f),
    }
}

fn extras(args: &SocketsArgs) -> Extras {
    Extras {
        tcp_info: args.info,
        memory: args.memory,
    }
}

fn write(
    args: &SocketsArgs,
    out: &mut dyn Write,
    sockets: &[Socket],
    owners: bool,
) -> io::Result<()> {
    if args.common.json {
        write_sockets_json(out, sockets)
    } else {
        let view = SocketsView {
            processes: owners,
            info: args.info,
            memory: args.memory,
            extended: args.extended,
            timer: args.options,
        };
        write_sockets_table(out, sockets, &view)
    }
}

/// `--pid` / `--name`: the sockets those processes hold. Only their fds are read (not every
/// process's, as -p must), and each namespace they hold sockets in is dumped, entered from a
/// worker thread, unless --netns names one.
fn by_process(
    args: &SocketsArgs,
    sel: &Selection,
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    const ROOT: &str = "/proc";
    require_pids(ROOT, &args.pids)?;
    let mut outcome = Outcome::ok();
    let mut pids = args.pids.clone();
    if let Some(sub) = &args.name {
        for pid in list_pids(ROOT).map_err(RunError::Proc)? {
            if comm(ROOT, pid).is_ok_and(|n| n.contains(sub.as_str())) {
                pids.push(pid);
            }
        }
        if pids.is_empty() {
            outcome.notes.push(format!(
                "no process has a name containing '{}' (names are /proc/PID/comm, at most 15 bytes)",
                escape(sub)
            ));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let owners = read_owners_of(ROOT, &pids, None);
    // Processes the user named: each one refused is worth saying.
    outcome
        .notes
        .extend(unreadable_note(&owners.denied, Missing::Sockets));

    let mut sockets = Vec::new();
    let mut keep = |mut s: Socket| {
        if s.inode != 0 {
            let held = owners.get(s.inode);
            if !held.is_empty() {
                s.processes = Some(held);
                sockets.push(s);
            }
        }
    };
    match &args.common.netns {
        Some(spec) => {
            netns::enter(spec)?;
            for_each_socket(sel, extras(args), &mut keep)?;
        }
        None => {
            // The namespaces of the processes that hold sockets (a thread may sit in another
            // one than its process: every thread's is looked at).
            let holders: BTreeSet<u32> =
                owners.by_inode.values().flatten().map(|p| p.pid).collect();
            let spaces = spaces_of(ROOT, holders);
            if spaces.own {
                for_each_socket(sel, extras(args), &mut keep)?;
            }
            for path in spaces.others.values() {
                let found = netns::run_in(path, || -> Result<Vec<Socket>, RunError> {
                    let mut v = Vec::new();
                    for_each_socket(sel, extras(args), &mut |s| v.push(s))?;
                    Ok(v)
                });
                match found {
                    Ok(v) => v.into_iter().for_each(&mut keep),
                    Err(e) => outcome.notes.push(format!(
                        "sockets in the network namespace {} not read: {e}",
                        path.display()
                    )),
                }
            }
        }
    }
    write(args, out, &sockets, true)?;
    Ok(outcome)
}
