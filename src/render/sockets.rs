//! The `sockets` table and JSON.

use std::io::{self, Write};

use super::columns::write_columns;
use super::{escape, socket_endpoint};
use crate::sockets::model::{ProcessRef, Socket, Timer};

pub struct SocketsView {
    pub processes: bool,
    pub info: bool,
    pub memory: bool,
    /// Uid and inode columns (`-e`).
    pub extended: bool,
    /// The timer column (`-o`); `-i` shows it already.
    pub timer: bool,
}

/// JSON: an array of socket objects, one per line.
pub fn write_sockets_json(out: &mut dyn Write, sockets: &[Socket]) -> io::Result<()> {
    let mut array = JsonArray::default();
    for s in sockets {
        array.push(out, s)?;
    }
    array.finish(out)
}

/// A JSON array written one element at a time, so a listing can go out as the kernel hands
/// sockets over instead of being collected first.
#[derive(Default)]
pub struct JsonArray {
    len: usize,
}

impl JsonArray {
    pub fn push(&mut self, out: &mut dyn Write, s: &Socket) -> io::Result<()> {
        out.write_all(if self.len == 0 { b"[\n  " } else { b",\n  " })?;
        self.len += 1;
        serde_json::to_writer(&mut *out, s).map_err(io::Error::from)
    }

    pub fn finish(self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(if self.len == 0 { b"[]\n" } else { b"\n]\n" })
    }
}

pub fn write_sockets_table(
    out: &mut dyn Write,
    sockets: &[Socket],
    view: &SocketsView,
) -> io::Result<()> {
    let mut header = vec!["Proto", "State", "Recv-Q", "Send-Q", "Local", "Peer"];
    if view.processes {
        header.push("Process");
    }
    let timer_alone = view.timer && !view.info;
    if timer_alone {
        header.push("Timer");
    }
    if view.extended {
        header.extend(["Uid", "Inode"]);
    }
    if view.info {
        header.extend([
            "RTT ms",
            "RTTvar",
            "Retrans",
            "Cwnd",
            "Unacked",
            "Lost",
            "LastSnd ms",
            "LastRcv ms",
            "Timer",
        ]);
    }
    if view.memory {
        header.extend(["Rmem", "Rcvbuf", "Wmem", "Sndbuf", "Drops"]);
    }
    let mut right: Vec<usize> = vec![2, 3];
    let mut next = if view.processes { 7 } else { 6 };
    next += usize::from(timer_alone);
    if view.extended {
        right.extend([next, next + 1]);
        next += 2;
    }
    if view.info {
        right.extend(next..next + 8);
        next += 9;
    }
    if view.memory {
        right.extend(next..next + 5);
    }
    write_columns(out, &header, &right, sockets.len(), &mut |i, row| {
        let s = &sockets[i];
        row.extend([
            s.proto.name().to_string(),
            s.state.name().to_string(),
            s.recv_q.to_string(),
            s.send_q.to_string(),
            socket_endpoint(s, &s.local),
            socket_endpoint(s, &s.peer),
        ]);
        if view.processes {
            row.push(processes_cell(s.processes.as_deref().unwrap_or(&[])));
        }
        if timer_alone {
            row.push(timer_cell(s));
        }
        if view.extended {
            row.extend([s.uid.to_string(), s.inode.to_string()]);
        }
        if view.info {
            row.extend(info_cells(s));
        }
        if view.memory {
            row.extend(memory_cells(s));
        }
    })
}

/// `nginx(812),nginx(813)`, names escaped.
pub fn processes_cell(p: &[ProcessRef]) -> String {
    if p.is_empty() {
        return "-".into();
    }
    p.iter()
        .map(|p| format!("{}({})", escape(&p.name), p.pid))
        .collect::<Vec<_>>()
        .join(",")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn ms(us: Option<u32>) -> String {
    us.map(|us| format!("{}.{:03}", us / 1000, us % 1000))
        .unwrap_or_else(|| "-".into())
}

/// rmem/rcvbuf, wmem/sndbuf and drops; dashes when the kernel sent no memory info.
fn memory_cells(s: &Socket) -> Vec<String> {
    match &s.mem {
        Some(m) => vec![
            m.rmem_alloc.to_string(),
            m.rcvbuf.to_string(),
            m.wmem_alloc.to_string(),
            m.sndbuf.to_string(),
            opt(m.drops),
        ],
        None => vec!["-".into(); 5],
    }
}

fn info_cells(s: &Socket) -> Vec<String> {
    let timer = timer_cell(s);
    match &s.info {
        None => {
            let mut v = vec!["-".to_string(); 8];
            v.push(timer);
            v
        }
        Some(i) => vec![
            ms(i.rtt_us),
            ms(i.rttvar_us),
            format!("{}/{}", opt(i.retrans), opt(i.total_retrans)),
            opt(i.cwnd),
            opt(i.unacked),
            opt(i.lost),
            opt(i.last_data_sent_ms),
            opt(i.last_data_recv_ms),
            timer,
        ],
    }
}

/// `retrans(200ms,1)`, `keepalive(…)`, `time-wait(…)`, `probe(…)` or `-`.
fn timer_cell(s: &Socket) -> String {
    match &s.timer {
        None => "-".to_string(),
        Some(Timer::Retransmit {
            expires_ms,
            retransmits,
        }) => format!("retrans({expires_ms}ms,{retransmits})"),
        Some(Timer::Keepalive { expires_ms }) => format!("keepalive({expires_ms}ms)"),
        Some(Timer::TimeWait { expires_ms }) => format!("time-wait({expires_ms}ms)"),
        Some(Timer::Probe { expires_ms }) => format!("probe({expires_ms}ms)"),
    }
}
