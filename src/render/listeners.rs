//! The `listeners` table and JSON.

use std::io::{self, Write};

use super::sockets::processes_cell;
use super::{new_table, percent, socket_endpoint, write_json, write_table};
use crate::sockets::listeners::Listener;

pub fn write_listeners_json(out: &mut dyn Write, v: &[Listener]) -> io::Result<()> {
    write_json(out, v)
}

pub fn write_listeners_table(out: &mut dyn Write, v: &[Listener]) -> io::Result<()> {
    let mut t = new_table(
        &[
            "Proto", "Local", "Port", "Backlog", "Accept-Q", "Fill", "Process",
        ],
        &[2, 3, 4, 5],
    );
    for l in v {
        let s = &l.socket;
        let mut local = socket_endpoint(s, &s.local);
        // The port has its own column; show just the address.
        if let Some(i) = local.rfind(':') {
            local.truncate(i);
        }
        t.add_row(vec![
            format!("{}{}", s.proto.name(), s.family),
            local,
            s.local.port.to_string(),
            l.backlog
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            l.accept_queue
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            l.fill_percent.map(percent).unwrap_or_else(|| "-".into()),
            processes_cell(s.processes.as_deref().unwrap_or(&[])),
        ]);
    }
    write_table(out, &t)
}
