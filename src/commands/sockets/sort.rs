//! `--sort` on `sockets` and `listeners`: the orders besides the default one. Stable, so rows
//! that tie keep the default order.

use std::cmp::Reverse;

use crate::cli::SortKey;
use crate::sockets::listeners::Listener;
use crate::sockets::model::Socket;

/// The first owner's pid; unowned sockets last.
fn owner(s: &Socket) -> u32 {
    s.processes
        .as_ref()
        .and_then(|p| p.iter().map(|p| p.pid).min())
        .unwrap_or(u32::MAX)
}

pub(crate) fn sockets(v: &mut [Socket], key: SortKey) {
    match key {
        SortKey::Queue => v.sort_by_key(|s| (Reverse(s.recv_q), Reverse(s.send_q))),
        SortKey::State => v.sort_by_key(|s| s.state),
        SortKey::Port => v.sort_by_key(|s| (s.local.port, s.peer.port)),
        SortKey::Owner => v.sort_by_key(owner),
        // Refused by the command before any dump.
        SortKey::Fill => {}
    }
}

pub(crate) fn listeners<T>(v: &mut [T], key: SortKey, of: impl Fn(&T) -> &Listener) {
    match key {
        SortKey::Queue => v.sort_by_key(|t| Reverse(of(t).socket.recv_q)),
        SortKey::State => v.sort_by_key(|t| of(t).socket.state),
        SortKey::Port => v.sort_by_key(|t| of(t).socket.local.port),
        SortKey::Owner => v.sort_by_key(|t| owner(&of(t).socket)),
        // Fullest first; UDP (no accept queue) last.
        SortKey::Fill => v.sort_by(|a, b| {
            let f = |t: &T| of(t).fill_percent.unwrap_or(-1.0);
            f(b).total_cmp(&f(a))
        }),
    }
}
