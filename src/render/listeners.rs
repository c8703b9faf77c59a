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
