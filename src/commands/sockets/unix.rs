//! `sockscope sockets -x`: UNIX sockets, here, in one namespace or across the node, with both
//! ends' owners from one walk of every process's fds (a peer's inode is unique on the host).

use std::collections::HashSet;

use super::super::{unreadable_note, Missing, RunError};
use super::{node_owners_note, state_mask, NodeOwners};
use crate::cli::SocketsArgs;
use crate::host::Host;
use crate::netns;
use crate::procs::owners::{read_owners, Owners};
use crate::procs::unreadable::{could_own, current_netns};
use crate::render::sockets::UnixView;
use crate::report::{Done, Listing};
use crate::scope::{for_each_netns, live_roots};
use crate::sockets::placed::Placed;
use crate::sockets::unix::UnixSocket;
use crate::sockets::unix_diag::for_each_unix_socket;

pub fn run(
    host: &dyn Host,
    args: &SocketsArgs,
    mut list: Listing<'_, UnixView>,
) -> Result<Done, RunError> {
    let states = state_mask(args, None).unwrap_or(u32::MAX);
    let dump = || -> Result<Vec<UnixSocket>, RunError> {
        let mut v = Vec::new();
        for_each_unix_socket(host, states, &mut |s| v.push(s))?;
        Ok(v)
    };
    if args.node.all_netns {
        let roots = live_roots(args.node.fs_root.as_ref());
        let (run, owners) = std::thread::scope(|scope| {
            let walk = args
                .processes
                .then(|| scope.spawn(|| read_owners(host, crate::host::PROC, None)));
            (for_each_netns(host, &roots, dump), walk.map(|w| w.join()))
        });
        let run = run?;
        let mut notes = run.notes;
        let owners = joined(owners)?;
        let mut named = NodeOwners::new(host, &roots);
        let mut unowned_in = HashSet::new();
        for f in &run.found {
            for s in &f.value {
                let mut s = with_owners(s.clone(), owners.as_ref());
                // The row's owners (with their containers) are `held`; not said twice.
                s.processes = None;
                let held = owners.as_ref().map(|o| named.of(o, s.inode));
                if held.as_ref().is_some_and(|h| h.is_empty()) {
                    unowned_in.insert(f.place.netns.inode);
                }
                list.push(&Placed {
                    item: &s,
                    place: Some(&f.place),
                    owners: held.as_deref(),
                })?;
            }
        }
        list.finish()?;
        notes.append(&mut named.attributor.notes);
        if let Some(o) = &owners {
            notes.extend(node_owners_note(&o.denied, &unowned_in));
        }
        return Ok(Done::streamed().notes(notes));
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    let (sockets, owners) = std::thread::scope(|scope| {
        let walk = args
            .processes
            .then(|| scope.spawn(|| read_owners(host, crate::host::PROC, None)));
        (dump(), walk.map(|w| w.join()))
    });
    let owners = joined(owners)?;
    let mut unowned = false;
    for s in sockets? {
        let s = with_owners(s, owners.as_ref());
        unowned |= s.processes.as_ref().is_some_and(|p| p.is_empty());
        list.push(&Placed::bare(&s))?;
    }
    list.finish()?;
    let note = owners.and_then(|o| {
        unreadable_note(
            &could_own(&o.denied, current_netns(host), unowned),
            Missing::Owners,
        )
    });
    Ok(Done::streamed().notes(note))
}

fn joined(
    owners: Option<std::thread::Result<std::io::Result<Owners>>>,
) -> Result<Option<Owners>, RunError> {
    match owners {
        None => Ok(None),
        Some(Ok(r)) => r.map(Some).map_err(RunError::Proc),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}

/// Both ends' processes, when owners were asked for.
fn with_owners(mut s: UnixSocket, owners: Option<&Owners>) -> UnixSocket {
    if let Some(o) = owners {
        s.processes = Some(o.get(s.inode));
        if s.peer_inode != 0 {
            s.peer_processes = Some(o.get(s.peer_inode));
        }
    }
    s
}
