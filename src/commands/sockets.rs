//! `sockscope sockets`.

use std::collections::HashSet;
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
    let mut sockets = Vec::new();
    for_each_socket(&sel, args.info, &mut |s| sockets.push(s))?;

    let mut outcome = Outcome::ok();
    if args.processes {
        let wanted: HashSet<u32> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect();
        let owners = read_owners("/proc", Some(&wanted)).map_err(RunError::Proc)?;
        for s in &mut sockets {
            s.processes = Some(owners.get(s.inode));
        }
        outcome.notes.extend(unreadable_note(owners.unreadable));
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
