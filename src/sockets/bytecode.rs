//! Compiles the port and address filters into inet_diag bytecode (`INET_DIAG_REQ_BYTECODE`),
//! so the kernel drops unwanted sockets before they cross netlink: `--dport 443` on a host
//! with 100k sockets then sends a handful of messages instead of all of them.
//!
//! The kernel runs the program per socket: each op tests one condition and jumps `yes` bytes
//! ahead when it holds, `no` bytes when it does not. Landing exactly on the end accepts the
//! socket; jumping past it (to end + 4) rejects it. Only the long-standing ops are used
//! (port >=/<= since 2.6, host conditions), so every kernel sockscope runs on accepts them.

use std::net::IpAddr;

use super::filter::{Cidr, UserFilter};

const OP_LEN: usize = 4;
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Where an op's `no` branch goes.
#[derive(Clone, Copy)]
enum Target {
    Reject,
    /// An absolute byte offset in the program (an op boundary or the end).
    At(usize),
}

#[derive(Default)]
struct Program {
    bytes: Vec<u8>,
    fixups: Vec<(usize, Target)>,
}

impl Program {
    /// Appends an op that falls through to the next op when its condition holds.
    fn op(&mut self, code: u8, payload: &[u8], no: Target) {
        let at = self.bytes.len();
        let yes = (OP_LEN + payload.len()) as u8;
        self.bytes.extend_from_slice(&[code, yes, 0, 0]);
        self.bytes.extend_from_slice(payload);
        self.fixups.push((at, no));
    }

    /// Port comparisons carry the port in the `no` field of a second op, in host order.
    fn port_op(&mut self, code: u8, port: u16, no: Target) {
        let mut payload = [0u8; 4];
        payload[2..4].copy_from_slice(&port.to_ne_bytes());
        self.op(code, &payload, no);
    }

    /// `port == N` on one end, as `>= N` and `<= N`.
    fn port_eq(&mut self, source: bool, port: u16, no: Target) {
        let (ge, le) = if source {
            (BC_S_GE, BC_S_LE)
        } else {
            (BC_D_GE, BC_D_LE)
        };
        self.port_op(ge, port, no);
        self.port_op(le, port, no);
    }

    /// `struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; }`
    fn host(&mut self, source: bool, c: &Cidr) {
        let mut payload = Vec::with_capacity(24);
        let (family, addr): (u8, Vec<u8>) = match c.addr {
            IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
        };
        payload.extend_from_slice(&[family, c.prefix, 0, 0]);
        payload.extend_from_slice(&(-1i32).to_ne_bytes()); // any port
        payload.extend_from_slice(&addr);
        let code = if source { BC_S_COND } else { BC_D_COND };
        self.op(code, &payload, Target::Reject);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len();
        for (at, target) in self.fixups {
            let no = match target {
                Target::Reject => len - at + OP_LEN,
                Target::At(t) => t - at,
            };
            self.bytes[at + 2..at + 4].copy_from_slice(&(no as u16).to_ne_bytes());
        }
        self.bytes
    }
}

/// The bytecode for `f`, or `None` when it filters nothing. Conditions are ANDed; `--port`
/// (either end) is the one OR.
pub fn compile(f: &UserFilter) -> Option<Vec<u8>> {
    if f.is_empty() {
        return None;
    }
    let mut p = Program::default();
    if let Some(port) = f.port {
        // source == port ? skip to after : try destination == port, else reject.
        let start = p.bytes.len();
        let dest_block = start + 2 * 8 + OP_LEN;
        let after = dest_block + 2 * 8;
        p.port_eq(true, port, Target::At(dest_block));
        p.op(BC_JMP, &[], Target::At(after));
        p.port_eq(false, port, Target::Reject);
        debug_assert_eq!(p.bytes.len(), after);
    }
    if let Some(port) = f.sport {
        p.port_eq(true, port, Target::Reject);
    }
    if let Some(port) = f.dport {
        p.port_eq(false, port, Target::Reject);
    }
    if let Some(c) = &f.src {
        p.host(true, c);
    }
    if let Some(c) = &f.dst {
        p.host(false, c);
    }
    Some(p.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(b: &[u8], at: usize) -> (u8, u8, u16) {
        (b[at], b[at + 1], u16::from_ne_bytes([b[at + 2], b[at + 3]]))
    }

    #[test]
    fn nothing_to_filter_sends_no_program() {
        assert_eq!(compile(&UserFilter::default()), None);
    }

    #[test]
    fn sport_is_two_comparisons_that_reject_past_the_end() {
        let b = compile(&UserFilter {
            sport: Some(443),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(op(&b, 0), (BC_S_GE, 8, 16 + 4));
        assert_eq!(op(&b, 4).2, 443);
        assert_eq!(op(&b, 8), (BC_S_LE, 8, 8 + 4));
        assert_eq!(op(&b, 12).2, 443);
    }

    #[test]
    fn either_port_tries_the_destination_when_the_source_fails() {
        let b = compile(&UserFilter {
            port: Some(80),
            dst: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        // S_GE, S_LE → destination block at 20; JMP over it to 36; D_GE, D_LE reject.
        assert_eq!(op(&b, 0), (BC_S_GE, 8, 20));
        assert_eq!(op(&b, 8), (BC_S_LE, 8, 12));
        assert_eq!(op(&b, 16), (BC_JMP, 4, 20));
        assert_eq!(op(&b, 20), (BC_D_GE, 8, (b.len() - 20 + 4) as u16));
        assert_eq!(op(&b, 36).0, BC_D_COND);
        assert_eq!(&b[40..42], &[AF_INET, 8]);
        assert_eq!(&b[48..52], &[10, 0, 0, 0]);
        assert_eq!(b.len(), 52);
    }
}
