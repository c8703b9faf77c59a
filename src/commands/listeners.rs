//! `sockscope listeners`.

use std::collections::HashSet;
use std::io::Write;

use super::{owners_note, protos_families, Outcome, RunError};
use crate::cli::ListenersArgs;
use crate::exit::ExitCode;
use crate::netns;
use crate::procs::owners::read_owners;
use crate::render::listeners::{write_listeners_json, write_listeners_table};
use crate::render::socket_endpoint;
use crate::sockets::filter::{Selection, UserFilter};
use crate::sockets::listeners::{is_listener, sort_listeners, takes_ipv4, to_listener};
use crate::sockets::model::TcpState;
use crate::sockets::{for_each_socket, Extras};

pub fn run(args: &ListenersArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
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
    netns::enter_opt(args.common.netns.as_ref())?;
    let mut found = Vec::new();
    for_each_socket(&sel, Extras::default(), &mut |s| {
        if is_listener(&s) && (!v4_only || s.family == 4 || takes_ipv4(&s)) {
            found.push(to_listener(s))
        }
    })?;
    let mut outcome = Outcome::ok();
    let wanted: HashSet<u32> = found
        .iter()
        .map(|l| l.socket.inode)
        .filter(|&i| i != 0)
        .collect();
    let owners = read_owners("/proc", Some(&wanted)).map_err(RunError::Proc)?;
    for l in &mut found {
        l.socket.processes = Some(owners.get(l.socket.inode));
    }
    outcome
        .notes
        .extend(owners_note(&owners.denied, found.iter().map(|l| &l.socket)));
    sort_listeners(&mut found);

    if args.common.json {
        write_listeners_json(out, &found)?;
    } else {
        write_listeners_table(out, &found)?;
    }
    for l in found.iter().filter(|l| l.overflowing()) {
        outcome.notes.push(format!(
            "accept queue full on {} ({} waiting, backlog {}): the kernel drops new \
             handshakes there; sockscope explain accept-queue",
            socket_endpoint(&l.socket, &l.socket.local),
            l.accept_queue.unwrap_or(0),
            l.backlog.unwrap_or(0)
        ));
    }
    if let Some(port) = args.port {
        if found.is_empty() {
            outcome.code = ExitCode::Problems;
            outcome.notes.push(format!(
                "nothing listens on port {port}{}: a connect() there is refused (RST)",
                args.common
                    .netns
                    .as_ref()
                    .map(|n| format!(" in network namespace {n}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(outcome)
}
