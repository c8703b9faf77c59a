//! `sockscope sockets`.

use std::io::Write;

use super::{protos_families, unreadable_note, Outcome, RunError};
use crate::cli::SocketsArgs;
use crate::netns;
use crate::procs::owners::read_owners;
use crate::render::sockets::{write_sockets_json, write_sockets_table, JsonArray, SocketsView};
use crate::sockets::filter::{Selection, UserFilter};
use crate::sockets::for_each_socket;

pub fn run(args: &SocketsArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let (protos, families) = protos_families(&args.family);
    let sel = Selection {
        protos,
        families,
        states: args.state.iter().fold(0, |m, s| m | s.0),
        user: UserFilter {
            port: args.port,
            sport: args.sport,
            dport: args.dport,
            src: args.src,
            dst: args.dst,
        },
    };
    netns::enter_opt(args.common.netns.as_ref())?;
    if args.common.json && !args.processes {
        // Nothing to join: stream each socket straight out, memory flat at any table size.
        let mut array = JsonArray::default();
        let mut failed = None;
        for_each_socket(&sel, args.info, &mut |s| {
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
            let dumped = for_each_socket(&sel, args.info, &mut |s| sockets.push(s));
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
        outcome.notes.extend(unreadable_note(owners.unreadable));
    } else {
        for_each_socket(&sel, args.info, &mut |s| sockets.push(s))?;
    }
    if args.common.json {
        write_sockets_json(out, &sockets)?;
    } else {
        let view = SocketsView {
            processes: args.processes,
            info: args.info,
        };
        write_sockets_table(out, &sockets, &view)?;
    }
    Ok(outcome)
}
