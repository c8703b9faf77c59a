//! `sockscope listeners`.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use super::sockets::{node_owners_note, NodeOwners};
use super::{owners_note, protos_families, RunError};
use crate::cli::ListenersArgs;
use crate::exit::ExitCode;
use crate::host::Host;
use crate::netns;
use crate::procs::owners::read_owners;
use crate::render::escape;
use crate::render::listeners::ListenersView;
use crate::render::socket_endpoint;
use crate::report::{Done, Listing, Output};
use crate::scope::{for_each_netns, live_roots, Where};
use crate::sockets::filter::{Selection, UserFilter};
use crate::sockets::listeners::{
    is_listener, order_key, sort_listeners, takes_ipv4, to_listener, Listener,
};
use crate::sockets::model::TcpState;
use crate::sockets::placed::Placed;
use crate::sockets::{for_each_socket, Extras};

pub fn run(
    host: &dyn Host,
    args: &ListenersArgs,
    out: &mut dyn Write,
    output: &Output,
) -> Result<Done, RunError> {
    let list = Listing::new(
        out,
        output,
        "listeners",
        ListenersView {
            place: args.node.all_netns,
        },
    );
    if args.node.all_netns {
        return node(host, args, list);
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    if let Some(interval) = args.watch {
        drop(list);
        return super::sockets::watch::run(
            interval,
            output,
            out,
            "listeners",
            || ListenersView { place: false },
            |_| {
                let mut found = listeners_here(host, args)?;
                let wanted: HashSet<u32> = found
                    .iter()
                    .map(|l| l.socket.inode)
                    .filter(|&i| i != 0)
                    .collect();
                let owners =
                    read_owners(host, crate::host::PROC, Some(&wanted)).map_err(RunError::Proc)?;
                for l in &mut found {
                    l.socket.processes = Some(owners.get(l.socket.inode));
                }
                sort_listeners(&mut found);
                Ok(found)
            },
            |_| Vec::new(),
        );
    }
    let mut found = listeners_here(host, args)?;
    if let Some(wait) = args.wait {
        // The dump is filtered to one port by the kernel: cheap enough to repeat every 50 ms.
        let deadline = Instant::now() + wait;
        while found.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
            found = listeners_here(host, args)?;
        }
    }
    let mut notes = Vec::new();
    let wanted: HashSet<u32> = found
        .iter()
        .map(|l| l.socket.inode)
        .filter(|&i| i != 0)
        .collect();
    let owners = read_owners(host, crate::host::PROC, Some(&wanted)).map_err(RunError::Proc)?;
    for l in &mut found {
        l.socket.processes = Some(owners.get(l.socket.inode));
    }
    notes.extend(owners_note(
        host,
        &owners.denied,
        found.iter().map(|l| &l.socket),
    ));
    sort_listeners(&mut found);
    if let Some(key) = args.sort {
        super::sockets::sort::listeners(&mut found, key, |l| l);
    }
    let mut list = list;
    for l in &found {
        list.push(&Placed::bare(l))?;
    }
    list.finish()?;
    notes.extend(found.iter().filter_map(|l| overflow_note(l, None)));
    let mut where_ = args
        .common
        .netns
        .as_ref()
        .map(|n| format!(" in network namespace {n}"))
        .unwrap_or_default();
    if let Some(wait) = args.wait {
        where_.push_str(&format!(" (waited {})", humanize(wait)));
    }
    Ok(finish(args, found.is_empty(), &where_, notes))
}

/// The selection and filter of the listeners of the calling thread's namespace.
fn listeners_here(host: &dyn Host, args: &ListenersArgs) -> Result<Vec<Listener>, RunError> {
    let (protos, mut families) = protos_families(&args.family);
    // A dual-stack listener (`[::]` with IPV6_V6ONLY off) takes IPv4 connections, but it is an
    // AF_INET6 socket: an AF_INET dump (and the kernel's family filter) never shows it. For
    // `-4`, the IPv6 listeners are dumped too and only the dual-stack ones kept.
    let v4_only = families == [4];
    if v4_only {
        families.push(6);
    }
    let sel = Selection {
        protos,
        families,
        // LISTEN for TCP; unconnected UDP sockets are in CLOSE.
        states: TcpState::Listening.mask_bit() | TcpState::Close.mask_bit(),
        user: UserFilter {
            sport: args.port,
            ..Default::default()
        },
    };
    let mut found = Vec::new();
    for_each_socket(host, &sel, Extras::default(), &mut |s| {
        if is_listener(&s) && (!v4_only || s.family == 4 || takes_ipv4(&s)) {
            found.push(to_listener(s))
        }
    })?;
    Ok(found)
}

/// `--all-netns`: the listeners of every namespace, sorted by port across the node (so
/// `--port N` answers who listens on N anywhere), then their owners from one host-wide walk
/// limited to the listeners' inodes (unique on the host).
fn node(
    host: &dyn Host,
    args: &ListenersArgs,
    mut list: Listing<'_, ListenersView>,
) -> Result<Done, RunError> {
    let roots = live_roots(args.node.fs_root.as_ref());
    let run = for_each_netns(host, &roots, || listeners_here(host, args))?;
    let mut notes = run.notes;
    let mut rows: Vec<(&Where, Listener)> = run
        .found
        .iter()
        .flat_map(|f| f.value.iter().map(move |l| (&f.place, l.clone())))
        .collect();
    rows.sort_by_key(|(w, l)| (order_key(l), w.netns.inode));
    if let Some(key) = args.sort {
        super::sockets::sort::listeners(&mut rows, key, |(_, l)| l);
    }
    let wanted: HashSet<u32> = rows
        .iter()
        .map(|(_, l)| l.socket.inode)
        .filter(|&i| i != 0)
        .collect();
    let owners = read_owners(host, crate::host::PROC, Some(&wanted)).map_err(RunError::Proc)?;
    let mut named = NodeOwners::new(host, &roots);
    let mut unowned_in = HashSet::new();
    for (place, l) in &rows {
        let held = named.of(&owners, l.socket.inode);
        if l.socket.inode != 0 && held.is_empty() {
            unowned_in.insert(place.netns.inode);
        }
        list.push(&Placed {
            item: l,
            place: Some(place),
            owners: Some(&held),
        })?;
    }
    list.finish()?;
    notes.append(&mut named.attributor.notes);
    notes.extend(node_owners_note(&owners.denied, &unowned_in));
    notes.extend(rows.iter().filter_map(|(p, l)| overflow_note(l, Some(p))));
    Ok(finish(
        args,
        rows.is_empty(),
        " in any network namespace on the node",
        notes,
    ))
}

/// A full accept queue, said on stderr.
fn overflow_note(l: &Listener, place: Option<&Where>) -> Option<String> {
    if !l.overflowing() {
        return None;
    }
    Some(format!(
        "accept queue full on {}{} ({} waiting, backlog {}): the kernel drops new \
         handshakes there; sockscope explain accept-queue",
        socket_endpoint(&l.socket, &l.socket.local),
        place
            .map(|p| format!(" in network namespace {}", escape(&p.netns.label())))
            .unwrap_or_default(),
        l.accept_queue.unwrap_or(0),
        l.backlog.unwrap_or(0)
    ))
}

/// `--port N` with nothing listening on it is the problem the user asked about: exit 1.
fn finish(args: &ListenersArgs, none: bool, where_: &str, mut notes: Vec<String>) -> Done {
    let mut code = ExitCode::Ok;
    if let (Some(port), true) = (args.port, none) {
        code = ExitCode::Problems;
        notes.push(format!(
            "nothing listens on port {port}{where_}: a connect() there is refused (RST)"
        ));
    }
    Done::streamed().code(code).notes(notes)
}

/// A wait as the user typed it, more or less: `30s`, `500ms`, `1.5s`.
fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
            .trim_end_matches('0')
            .to_string()
    }
}
