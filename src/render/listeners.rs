//! The `listeners` table (its JSON is the listeners themselves, through
//! [`crate::report::Listing`]).

use super::sockets::{owners_cell, place_cells};
use super::{percent, socket_endpoint};
use crate::report::{Cells, Column, Rows};
use crate::sockets::listeners::Listener;
use crate::sockets::placed::Placed;

pub struct ListenersView {
    /// Netns and Container columns (`--all-netns`).
    pub place: bool,
}

impl Rows for ListenersView {
    type Record<'r> = Placed<'r, Listener>;

    fn columns(&self) -> Vec<Column> {
        let mut c = Vec::new();
        if self.place {
            c.extend([Column::left("Netns"), Column::left("Container")]);
        }
        c.extend([Column::left("Proto"), Column::left("Local")]);
        c.extend(["Port", "Backlog", "Accept-Q", "Fill"].map(Column::right));
        c.push(Column::left("Process"));
        c
    }

    fn cells(&self, row: &Placed<'_, Listener>, cells: &mut Cells) {
        let l = row.item;
        let s = &l.socket;
        if self.place {
            place_cells(row.place, cells);
        }
        let mut local = socket_endpoint(s, &s.local);
        // The port has its own column; show just the address.
        if let Some(i) = local.rfind(':') {
            local.truncate(i);
        }
        let dash = || "-".to_string();
        for c in [
            format!("{}{}", s.proto.name(), s.family),
            local,
            s.local.port.to_string(),
            l.backlog.map_or_else(dash, |b| b.to_string()),
            l.accept_queue.map_or_else(dash, |b| b.to_string()),
            l.fill_percent.map_or_else(dash, percent),
            owners_cell(row.owners, s.processes.as_deref()),
        ] {
            cells.push(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sockets::tests::{place, sock, table};
    use crate::sockets::model::{ProcessRef, Proto, TcpState};
    use crate::sockets::placed::Owner;

    #[test]
    fn listeners_tables() {
        let owned = |s: crate::sockets::model::Socket, q: Option<u32>, b: Option<u32>| {
            let mut s = s;
            s.processes = Some(vec![ProcessRef {
                pid: 4242,
                name: "api".into(),
            }]);
            Listener {
                socket: s,
                backlog: b,
                accept_queue: q,
                fill_percent: q.zip(b).map(|(q, b)| q as f64 * 100.0 / b as f64),
            }
        };
        let mut dual = sock(Proto::Tcp, TcpState::Listening, "[::]:443", "[::]:0");
        dual.v6only = Some(false);
        let ls = [
            owned(
                sock(
                    Proto::Tcp,
                    TcpState::Listening,
                    "127.0.0.1:8080",
                    "0.0.0.0:0",
                ),
                Some(5),
                Some(4),
            ),
            owned(dual, Some(0), Some(4096)),
            owned(
                sock(Proto::Tcp, TcpState::Listening, "[::1]:8002", "[::]:0"),
                Some(1),
                Some(16),
            ),
            owned(
                sock(Proto::Udp, TcpState::Unconn, "0.0.0.0:5353", "0.0.0.0:0"),
                None,
                None,
            ),
        ];
        let rows: Vec<Placed<Listener>> = ls.iter().map(Placed::bare).collect();
        insta::assert_snapshot!(
            "listeners_plain",
            table(ListenersView { place: false }, &rows)
        );
        let place = place();
        let owners = vec![Owner {
            pid: 4242,
            name: "api".into(),
            container: place.container.clone(),
        }];
        let rows: Vec<Placed<Listener>> = ls
            .iter()
            .map(|l| Placed {
                item: l,
                place: Some(&place),
                owners: Some(&owners),
            })
            .collect();
        insta::assert_snapshot!(
            "listeners_all_netns",
            table(ListenersView { place: true }, &rows)
        );
    }
}
