//! `sockscope sockets`.

mod kill;
pub(super) mod sort;
mod unix;
pub(super) mod watch;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Write};

use super::{
    owners_note, protos_families, require_pids, unreadable_note, Missing, Outcome, RunError,
};
use crate::cli::{SocketsArgs, SortKey};
use crate::host::Host;
use crate::netns;
use crate::procs::container::{Attributor, Container};
use crate::procs::discover::Roots;
use crate::procs::fdwalk::list_pids;
use crate::procs::namespaces::spaces_of;
use crate::procs::owners::{read_owners, read_owners_of, Owners};
use crate::procs::procfile::comm;
use crate::procs::unreadable::Denied;
use crate::render::escape;
use crate::render::sockets::{RatedView, SocketsView, UnixView};
use crate::report::{Done, Listing, Output};
use crate::scope::{for_each_netns, live_roots};
use crate::sockets::filter::{Selection, UserFilter};
use crate::sockets::model::{Socket, TcpState};
use crate::sockets::placed::{Owner, Placed};
use crate::sockets::ssfilter;
use crate::sockets::watch::{per_process, Rater};
use crate::sockets::{for_each_socket, Extras};

pub fn run(
    host: &dyn Host,
    args: &SocketsArgs,
    out: &mut dyn Write,
    output: &Output,
) -> Result<Done, RunError> {
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
    if args.unix {
        let view = UnixView {
            processes: args.processes,
            place: args.node.all_netns,
        };
        return unix::run(host, args, Listing::new(out, output, "sockets", view));
    }
    if args.sort == Some(SortKey::Fill) {
        return Err(RunError::Input(
            "--sort fill is for listeners (sockscope listeners --sort fill)".into(),
        ));
    }
    let by_pid = !args.pids.is_empty() || args.name.is_some();
    let owner_sort = args.sort == Some(SortKey::Owner);
    let view = SocketsView {
        processes: args.processes || by_pid || owner_sort,
        info: args.info,
        memory: args.memory,
        extended: args.extended,
        timer: args.options,
        place: args.node.all_netns,
        families: sel.families.clone(),
    };
    if let Some(interval) = args.watch {
        netns::enter_opt(host, args.common.netns.as_ref())?;
        if args.rate {
            let mut rater = Rater::default();
            return watch::run(
                interval,
                output,
                out,
                "sockets",
                || RatedView(view.clone()),
                |t| Ok(rater.reading(read_once(host, args, &sel)?, t)),
                |rows| {
                    if args.processes {
                        per_process(rows)
                    } else {
                        Vec::new()
                    }
                },
            );
        }
        return watch::run(
            interval,
            output,
            out,
            "sockets",
            || view.clone(),
            |_| read_once(host, args, &sel),
            |_| Vec::new(),
        );
    }
    let list = Listing::new(out, output, "sockets", view);
    if args.kill {
        return kill::run(host, args, &sel, list);
    }
    if by_pid {
        return by_process(host, args, &sel, list);
    }
    if args.node.all_netns {
        return node(host, args, &sel, list);
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    if !(args.processes || owner_sort) {
        if let Some(key) = args.sort {
            // Sorting holds every row: only when asked for.
            let mut sockets = Vec::new();
            for_each_socket(host, &sel, extras(args), &mut |s| sockets.push(s))?;
            sort::sockets(&mut sockets, key);
            write_all(list, &sockets)?;
            return Ok(Done::streamed());
        }
        // Nothing to join: each socket goes straight out, memory flat at any table size.
        let mut list = list;
        let mut failed = None;
        for_each_socket(host, &sel, extras(args), &mut |s| {
            if failed.is_none() {
                failed = list.push(&Placed::bare(&s)).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        list.finish()?;
        return Ok(Done::streamed());
    }
    // The fd walk behind owners (nearly all kernel time) does not depend on the dump, so both
    // run at once; the walk then maps every socket inode on the host, not only the ones shown,
    // which costs little next to reading the links.
    let mut sockets = Vec::new();
    let (dumped, owners) = std::thread::scope(|scope| {
        let walk = scope.spawn(|| read_owners(host, crate::host::PROC, None));
        let dumped = for_each_socket(host, &sel, extras(args), &mut |s| sockets.push(s));
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
    let note = owners_note(host, &owners.denied, &sockets);
    if let Some(key) = args.sort {
        sort::sockets(&mut sockets, key);
    }
    write_all(list, &sockets)?;
    Ok(Done::streamed().notes(note))
}

/// `--all-netns`: every namespace's sockets (dumped on parallel workers), each row with its
/// namespace and container. With -p the fd walk runs once for the host, next to the dumps:
/// fds are not per namespace, and a socket inode is unique on the host, so one map serves
/// every namespace; each owner is named with its own container.
fn node(
    host: &dyn Host,
    args: &SocketsArgs,
    sel: &Selection,
    mut list: Listing<'_, SocketsView>,
) -> Result<Done, RunError> {
    let roots = live_roots(args.node.fs_root.as_ref());
    let (run, owners) = std::thread::scope(|scope| {
        let walk = args
            .processes
            .then(|| scope.spawn(|| read_owners(host, crate::host::PROC, None)));
        let run = for_each_netns(host, &roots, || {
            let mut v = Vec::new();
            for_each_socket(host, sel, extras(args), &mut |s| v.push(s))?;
            Ok(v)
        });
        (run, walk.map(|w| w.join()))
    });
    let run = run?;
    let mut notes = run.notes;
    let Some(owners) = owners else {
        for f in &run.found {
            for s in &f.value {
                list.push(&Placed {
                    item: s,
                    place: Some(&f.place),
                    owners: None,
                })?;
            }
        }
        list.finish()?;
        return Ok(Done::streamed().notes(notes));
    };
    let owners = match owners {
        Ok(r) => r.map_err(RunError::Proc)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let mut named = NodeOwners::new(host, &roots);
    let mut unowned_in = HashSet::new();
    for f in &run.found {
        for s in &f.value {
            let held = named.of(&owners, s.inode);
            if s.inode != 0 && held.is_empty() {
                unowned_in.insert(f.place.netns.inode);
            }
            list.push(&Placed {
                item: s,
                place: Some(&f.place),
                owners: Some(&held),
            })?;
        }
    }
    list.finish()?;
    notes.append(&mut named.attributor.notes);
    notes.extend(node_owners_note(&owners.denied, &unowned_in));
    Ok(Done::streamed().notes(notes))
}

/// Owners named with their containers, each process's cgroup read once.
pub(super) struct NodeOwners<'h> {
    proc: std::path::PathBuf,
    pub attributor: Attributor<'h>,
    containers: HashMap<u32, Option<Container>>,
}

impl<'h> NodeOwners<'h> {
    pub fn new(host: &'h dyn Host, roots: &Roots) -> NodeOwners<'h> {
        NodeOwners {
            proc: roots.proc.clone(),
            attributor: Attributor::new(host, &roots.fs),
            containers: HashMap::new(),
        }
    }

    /// The processes holding `inode`, with their containers.
    pub fn of(&mut self, owners: &Owners, inode: u32) -> Vec<Owner> {
        if inode == 0 {
            return Vec::new();
        }
        let Some(held) = owners.by_inode.get(&inode) else {
            return Vec::new();
        };
        held.iter()
            .map(|p| Owner {
                pid: p.pid,
                name: p.name.clone(),
                container: self.container(p.pid),
            })
            .collect()
    }

    pub fn container(&mut self, pid: u32) -> Option<Container> {
        if let Some(c) = self.containers.get(&pid) {
            return c.clone();
        }
        // Through the host, so a snapshot of the node records and replays the names.
        let path = self.proc.join(format!("{pid}/cgroup"));
        let c = self
            .attributor
            .host()
            .read_file(&path.to_string_lossy())
            .ok()
            .and_then(|b| self.attributor.of_cgroup(&String::from_utf8_lossy(&b)));
        self.containers.insert(pid, c.clone());
        c
    }
}

/// The unreadable-process note for a node-wide view: the refused processes that could hold an
/// unowned socket shown, i.e. those in a namespace where one was shown (or in an unknown one).
pub(super) fn node_owners_note(denied: &[Denied], unowned_in: &HashSet<u64>) -> Option<String> {
    let mut could: Vec<Denied> = denied
        .iter()
        .filter(|d| d.netns.is_none_or(|n| unowned_in.contains(&n)))
        .cloned()
        .collect();
    if unowned_in.is_empty() {
        could.clear();
    }
    could.sort_by_key(|d| d.pid);
    could.dedup_by_key(|d| d.pid);
    unreadable_note(&could, Missing::Owners)
}

/// One reading for `--watch`: the sockets, with their owners under -p.
fn read_once(
    host: &dyn Host,
    args: &SocketsArgs,
    sel: &Selection,
) -> Result<Vec<Socket>, RunError> {
    let mut sockets = Vec::new();
    for_each_socket(host, sel, extras(args), &mut |s| sockets.push(s))?;
    if args.processes {
        let wanted: HashSet<u32> = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect();
        let owners = read_owners(host, crate::host::PROC, Some(&wanted)).map_err(RunError::Proc)?;
        for s in &mut sockets {
            s.processes = Some(owners.get(s.inode));
        }
    }
    Ok(sockets)
}

fn write_all(mut list: Listing<'_, SocketsView>, sockets: &[Socket]) -> io::Result<()> {
    for s in sockets {
        list.push(&Placed::bare(s))?;
    }
    list.finish()
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
        // --rate reads the byte counters of tcp_info.
        tcp_info: args.info || args.rate,
        memory: args.memory,
    }
}

/// `--pid` / `--name`: the sockets those processes hold. Only their fds are read (not every
/// process's, as -p must), and each namespace they hold sockets in is dumped, entered from a
/// worker thread, unless --netns names one.
fn by_process(
    host: &dyn Host,
    args: &SocketsArgs,
    sel: &Selection,
    list: Listing<'_, SocketsView>,
) -> Result<Done, RunError> {
    const ROOT: &str = crate::host::PROC;
    require_pids(host, ROOT, &args.pids)?;
    let mut outcome = Outcome::ok();
    let mut pids = args.pids.clone();
    if let Some(sub) = &args.name {
        for pid in list_pids(host, ROOT).map_err(RunError::Proc)? {
            if comm(host, ROOT, pid).is_ok_and(|n| n.contains(sub.as_str())) {
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
    let owners = read_owners_of(host, ROOT, &pids, None);
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
            netns::enter(host, spec)?;
            for_each_socket(host, sel, extras(args), &mut keep)?;
        }
        None => {
            // The namespaces of the processes that hold sockets (a thread may sit in another
            // one than its process: every thread's is looked at).
            let holders: BTreeSet<u32> =
                owners.by_inode.values().flatten().map(|p| p.pid).collect();
            let spaces = spaces_of(host, ROOT, holders);
            if spaces.own {
                for_each_socket(host, sel, extras(args), &mut keep)?;
            }
            for path in spaces.others.values() {
                let found = netns::run_in(host, path, || -> Result<Vec<Socket>, RunError> {
                    let mut v = Vec::new();
                    for_each_socket(host, sel, extras(args), &mut |s| v.push(s))?;
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
    if let Some(key) = args.sort {
        sort::sockets(&mut sockets, key);
    }
    write_all(list, &sockets)?;
    Ok(outcome.into())
}
