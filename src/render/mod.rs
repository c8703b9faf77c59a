//! Rendering: the only place that knows about tables, JSON and terminals. Renderers take model
//! values and a writer; they never collect. Every string that came from outside (process
//! names, command lines) goes through [`escape`] before it reaches a terminal.

pub mod capture;
pub mod columns;
pub mod counters;
pub mod doctor;
pub mod explain;
pub mod fds;
pub mod flow_json;
pub mod listeners;
pub mod pool;
pub mod sockets;
pub mod states;
pub mod summary;

use std::io::{self, Write};
use std::net::IpAddr;

use comfy_table::{CellAlignment, Table};
use serde::Serialize;

use crate::sockets::model::{Endpoint, Socket};

/// Writes `value` as pretty JSON followed by a newline.
pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    // serde_json writes token by token; a buffer of a concrete type here turns each of those
    // into an inlined copy instead of a dynamic call (a third of the time of a 40 MB report).
    let mut w = io::BufWriter::with_capacity(64 * 1024, &mut *out);
    serde_json::to_writer_pretty(&mut w, value).map_err(io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Writes `value` as one line of compact JSON (`--jsonl`).
pub fn write_json_line<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(64 * 1024, &mut *out);
    serde_json::to_writer(&mut w, value).map_err(io::Error::from)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// A borderless table in the style of `ss`: easy to read and to `grep`/`awk`. `right` lists
/// the columns holding numbers, which align right.
pub fn new_table(header: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    // No leading space, two between columns: lines start at column 0 like ss output.
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Writes a table; its lines are trimmed of the padding comfy-table leaves at the ends.
pub fn write_table(out: &mut dyn Write, table: &Table) -> io::Result<()> {
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Makes text from outside safe for a terminal: control characters (ESC, CR, BEL, C1 codes…)
/// become visible `\xNN` / `\u{NN}` escapes instead of acting on the terminal.
pub fn escape(s: &str) -> String {
    if !s.chars().any(is_dangerous) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `addr:port` as ss prints it: IPv6 in brackets, port 0 as `*`.
pub fn endpoint(e: &Endpoint) -> String {
    let port = if e.port == 0 {
        "*".to_string()
    } else {
        e.port.to_string()
    };
    match e.addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A container as people say it: `k8s/NAMESPACE/POD/CONTAINER` for a Kubernetes pod,
/// `RUNTIME/NAME` otherwise, then the short id (`podman/web 3f2a9c0d1e4b`). Escaped: names come
/// from the runtimes' files.
pub fn container_label(c: &crate::procs::container::Container) -> String {
    let name = match (&c.pod_namespace, &c.pod) {
        (Some(ns), Some(pod)) => format!(
            "k8s/{ns}/{pod}{}",
            c.name.as_ref().map(|n| format!("/{n}")).unwrap_or_default()
        ),
        _ => format!("{}/{}", c.runtime.name(), c.name.as_deref().unwrap_or("?")),
    };
    escape(&format!("{name} {}", c.short_id()))
}

/// One end of a socket as ss prints it: like [`endpoint`], except that a dual-stack socket's
/// `[::]` (IPV6_V6ONLY off: it takes IPv4 too) is `*`, as in ss's `*:6300`.
pub fn socket_endpoint(s: &Socket, e: &Endpoint) -> String {
    if s.dual_stack() && e.addr.is_unspecified() {
        let port = if e.port == 0 {
            "*".to_string()
        } else {
            e.port.to_string()
        };
        return format!("*:{port}");
    }
    endpoint(e)
}

/// A percentage with as many decimals as it needs (up to two): `125`, `3.5`, `0.02`.
pub fn percent(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_control_sequences() {
        assert_eq!(escape("nginx"), "nginx");
        assert_eq!(escape("evil\x1b[2Jname"), "evil\\x1b[2Jname");
        assert_eq!(escape("a\rb\x07"), "a\\x0db\\x07");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\x9b31m");
        assert_eq!(escape("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(escape("日本"), "日本");
    }

    #[test]
    fn endpoints_print_like_ss() {
        let e = Endpoint {
            addr: "::1".parse().unwrap(),
            port: 443,
        };
        assert_eq!(endpoint(&e), "[::1]:443");
        let e = Endpoint {
            addr: "0.0.0.0".parse().unwrap(),
            port: 0,
        };
        assert_eq!(endpoint(&e), "0.0.0.0:*");
    }

    #[test]
    fn percentages_keep_their_precision() {
        assert_eq!(percent(125.0), "125%");
        assert_eq!(percent(3.5), "3.5%");
        assert_eq!(percent(0.0153), "0.02%");
        assert_eq!(percent(0.0), "0%");
    }
}
