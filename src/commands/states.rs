//! `sockscope states`.

mod watch;

use std::collections::HashSet;
use std::io::Write;

use super::sockets::{node_owners_note, NodeOwners};
use super::RunError;
use crate::cli::{GroupBy, StatesArgs};
use crate::host::Host;
use crate::netns::{self, NetnsSpec};
use crate::procs::owners::{read_owners, Owners};
use crate::procs::unreadable::current_netns;
use crate::report::{Done, Output};
use crate::scope::{for_each_netns, live_roots, Found, NetnsRef, Where};
use crate::sockets::filter::Selection;
use crate::sockets::node::{group, group_by_process, NodeStates};
use crate::sockets::owned::{OwnedStates, OwnerCounter};
use crate::sockets::states::StateCounter;
use crate::sockets::states::StateSummary;
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};
use crate::sockets::{for_each_socket, Extras};

pub fn run(
    host: &dyn Host,
    args: &StatesArgs,
    out: &mut dyn Write,
    output: &Output,
) -> Result<Done, RunError> {
    // clap lets `--by netns --netns X` through (the two conflict with --all-netns).
    if matches!(args.by, Some(GroupBy::Netns | GroupBy::Container)) && !args.node.all_netns {
        return Err(RunError::Input(
            "--by netns and --by container group the namespaces of --all-netns: add --all-netns (or use --by process)".into(),
        ));
    }
    if let Some(interval) = args.watch {
        return watch::run(host, args, interval, out, output);
    }
    Ok(match read(host, args)? {
        (Reading::One(s), notes) => Done::new(s).notes(notes),
        (Reading::Node(n), notes) => Done::new(n).notes(notes),
    })
}

/// One reading of the states: one namespace's summary, or rows (--all-netns, --by process).
pub(super) enum Reading {
    One(StateSummary),
    Node(NodeStates),
}

/// Reads the states once, with the notes for stderr. Enters --netns (on the calling thread)
/// when one is given.
pub(super) fn read(host: &dyn Host, args: &StatesArgs) -> Result<(Reading, Vec<String>), RunError> {
    let by = args.by.unwrap_or_default();
    if by == GroupBy::Process {
        let (n, notes) = by_process(host, args)?;
        return Ok((Reading::Node(n), notes));
    }
    if args.node.all_netns {
        let roots = live_roots(args.node.fs_root.as_ref());
        let run = for_each_netns(host, &roots, || count(host, args.top))?;
        return Ok((Reading::Node(group(run.found, by, args.top)), run.notes));
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    Ok((Reading::One(count(host, args.top)?), Vec::new()))
}

/// The summary of the calling thread's namespace.
fn count(host: &dyn Host, top: usize) -> Result<StateSummary, RunError> {
    // Read after entering the namespace: these sysctls are per namespace.
    let range = read_port_range(host);
    let settings = read_time_wait_settings(host);
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    for_each_socket(host, &sel, Extras::default(), &mut |s| counter.add(&s))?;
    Ok(counter.finish(top, settings))
}

/// `--by process`: one walk of every process's fds (fds are not per namespace, and an inode
/// is unique on the host, so one map serves every namespace), then each namespace's sockets
/// counted per holder.
fn by_process(host: &dyn Host, args: &StatesArgs) -> Result<(NodeStates, Vec<String>), RunError> {
    let roots = live_roots(args.node.fs_root.as_ref());
    let owners = read_owners(host, crate::host::PROC, None).map_err(RunError::Proc)?;
    let (found, mut notes) = if args.node.all_netns {
        let run = for_each_netns(host, &roots, || count_owned(host, args.top, &owners))?;
        (run.found, run.notes)
    } else {
        netns::enter_opt(host, args.common.netns.as_ref())?;
        let found = Found {
            place: here(host, args.common.netns.as_ref()),
            value: count_owned(host, args.top, &owners)?,
        };
        (vec![found], Vec::new())
    };
    let unknown_in: HashSet<u64> = found
        .iter()
        .filter(|f| f.value.unknown.total > 0)
        .map(|f| f.place.netns.inode)
        .collect();
    let mut named = NodeOwners::new(host, &roots);
    let node = group_by_process(found, args.top, &mut |pid| named.container(pid));
    notes.append(&mut named.attributor.notes);
    notes.extend(node_owners_note(&owners.denied, &unknown_in));
    Ok((node, notes))
}

/// The calling thread's namespace counted per holder.
fn count_owned(host: &dyn Host, top: usize, owners: &Owners) -> Result<OwnedStates, RunError> {
    let range = read_port_range(host);
    let settings = read_time_wait_settings(host);
    let sel = Selection::every_tcp();
    let mut counter = OwnerCounter::new(range);
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        let held = owners.by_inode.get(&s.inode).map_or(&[][..], |v| &v[..]);
        counter.add(&s, held);
    })?;
    Ok(counter.finish(top, settings))
}

/// The namespace the calling thread is in (this one, or the --netns one it entered), named
/// as --all-netns would name it.
fn here(host: &dyn Host, spec: Option<&NetnsSpec>) -> Where {
    let inode = current_netns(host).unwrap_or(0);
    let host_inode =
        crate::procs::discover::host_netns_inode(host, std::path::Path::new(crate::host::PROC));
    Where {
        netns: NetnsRef {
            inode,
            name: match spec {
                Some(NetnsSpec::Name(n)) => Some(n.clone()),
                _ => None,
            },
            host: host_inode == Some(inode),
        },
        container: None,
    }
}
