//! Compiles socket filters into inet_diag bytecode (`INET_DIAG_REQ_BYTECODE`), so the kernel
//! drops unwanted sockets before they cross netlink: `dport = :443` on a host with 100k
//! sockets then sends a handful of messages instead of all of them.
//!
//! The kernel runs the program per socket: each op tests one condition and jumps `yes` bytes
//! ahead when it holds, `no` bytes when it does not. Landing exactly on the end accepts the
//! socket; jumping past it (to end + 4) rejects it. Jumps only go forward, so and/or/not are
//! built as ss builds them: each piece accepts by running off its end and rejects by jumping
//! 4 bytes past it; `a or b` puts an unconditional jump to the end between the pieces, `not a`
//! a jump to "reject" after `a`. Only long-standing ops are used (port >=/<= and host
//! conditions), so every kernel sockscope runs on accepts them.

use std::net::IpAddr;

use super::expr::{End, Expr};
use super::filter::UserFilter;

const OP_LEN: usize = 4;
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;
const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
/// Jumps are 16-bit and the netlink attribute holding the program is too: a longer program
/// cannot be sent, and its filter runs in user space instead.
const MAX_PROGRAM: usize = 60_000;

/// Where an op's `no` branch goes, within the piece being built.
#[derive(Clone, Copy, Debug)]
enum Dest {
    /// Past the end of the piece: the socket fails this piece.
    Reject,
    /// The op at this index; the piece's length (one past the last op) means "passes".
    At(usize),
}

#[derive(Debug)]
struct Op {
    code: u8,
    payload: Vec<u8>,
    no: Dest,
}

impl Op {
    fn len(&self) -> usize {
        OP_LEN + self.payload.len()
    }
}

/// Shifts the internal jumps of a piece placed `by` ops further on.
fn shifted(ops: Vec<Op>, by: usize) -> impl Iterator<Item = Op> {
    ops.into_iter().map(move |mut op| {
        if let Dest::At(i) = op.no {
            op.no = Dest::At(i + by);
        }
        op
    })
}

fn piece(e: &Expr) -> Vec<Op> {
    match e {
        Expr::And(a, b) => {
            // a passes by running into b; either failing rejects the whole.
            let mut ops = piece(a);
            let n = ops.len();
            ops.extend(shifted(piece(b), n));
            ops
        }
        Expr::Or(a, b) => {
            // a fails into b (its reject lands just past the jump); a passing hits the jump
            // over b to the end.
            let mut ops = piece(a);
            let n = ops.len();
            for op in &mut ops {
                if let Dest::Reject = op.no {
                    op.no = Dest::At(n + 1);
                }
            }
            let b = piece(b);
            let end = n + 1 + b.len();
            ops.push(jump(Dest::At(end)));
            ops.extend(shifted(b, n + 1));
            ops
        }
        Expr::Not(a) => {
            // a passing runs into a jump to reject; a failing lands on the end: passes.
            let mut ops = piece(a);
            let n = ops.len();
            for op in &mut ops {
                if let Dest::Reject = op.no {
                    op.no = Dest::At(n + 1);
                }
            }
            ops.push(jump(Dest::Reject));
            ops
        }
        Expr::Host { end, net, port } => {
            let (family, prefix, addr): (u8, u8, Vec<u8>) = match net {
                None => (AF_UNSPEC, 0, Vec::new()),
                Some(c) => match c.addr {
                    IpAddr::V4(a) => (AF_INET, c.prefix, a.octets().to_vec()),
                    IpAddr::V6(a) => (AF_INET6, c.prefix, a.octets().to_vec()),
                },
            };
            // struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; }
            let mut payload = vec![family, prefix, 0, 0];
            payload.extend_from_slice(&port.map_or(-1i32, i32::from).to_ne_bytes());
            payload.extend_from_slice(&addr);
            let code = match end {
                End::Local => BC_S_COND,
                End::Peer => BC_D_COND,
            };
            vec![Op {
                code,
                payload,
                no: Dest::Reject,
            }]
        }
        Expr::PortGe { end, port } | Expr::PortLe { end, port } => {
            let code = match (e, end) {
                (Expr::PortGe { .. }, End::Local) => BC_S_GE,
                (Expr::PortGe { .. }, End::Peer) => BC_D_GE,
                (_, End::Local) => BC_S_LE,
                (_, End::Peer) => BC_D_LE,
            };
            // The port travels in the `no` field of a second op, in host order.
            let mut payload = [0u8; 4];
            payload[2..4].copy_from_slice(&port.to_ne_bytes());
            vec![Op {
                code,
                payload: payload.to_vec(),
                no: Dest::Reject,
            }]
        }
    }
}

fn jump(no: Dest) -> Op {
    Op {
        code: BC_JMP,
        payload: Vec::new(),
        no,
    }
}

/// The kernel program for `e`, or `None` when it is too long to send.
pub fn compile_expr(e: &Expr) -> Option<Vec<u8>> {
    let ops = piece(e);
    let mut at = Vec::with_capacity(ops.len() + 1);
    let mut len = 0;
    for op in &ops {
        at.push(len);
        len += op.len();
    }
    at.push(len);
    if len > MAX_PROGRAM {
        return None;
    }
    let mut bytes = Vec::with_capacity(len);
    for (i, op) in ops.iter().enumerate() {
        let no = match op.no {
            Dest::Reject => len + OP_LEN - at[i],
            Dest::At(j) => at[j] - at[i],
        };
        let yes = if op.code == BC_JMP { OP_LEN } else { op.len() };
        bytes.push(op.code);
        bytes.push(yes as u8);
        bytes.extend_from_slice(&(no as u16).to_ne_bytes());
        bytes.extend_from_slice(&op.payload);
    }
    Some(bytes)
}

/// The bytecode for `f`, or `None` when it filters nothing or is too long for the kernel
/// (then [`UserFilter::matches`] runs in user space).
pub fn compile(f: &UserFilter) -> Option<Vec<u8>> {
    compile_expr(&f.to_expr()?)
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
    fn sport_is_one_port_only_host_condition_that_rejects_past_the_end() {
        let b = compile(&UserFilter {
            sport: Some(443),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b.len(), 12);
        assert_eq!(op(&b, 0), (BC_S_COND, 12, 12 + 4));
        assert_eq!(&b[4..6], &[AF_UNSPEC, 0]);
        assert_eq!(i32::from_ne_bytes(b[8..12].try_into().unwrap()), 443);
    }

    #[test]
    fn either_port_tries_the_destination_when_the_source_fails() {
        let b = compile(&UserFilter {
            port: Some(80),
            dst: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        // S_COND → D_COND at 16 when it fails; JMP over it to 28; D_COND rejects; D_COND(net).
        assert_eq!(op(&b, 0), (BC_S_COND, 12, 16));
        assert_eq!(op(&b, 12), (BC_JMP, 4, 16));
        assert_eq!(op(&b, 16), (BC_D_COND, 12, (b.len() - 16 + 4) as u16));
        assert_eq!(op(&b, 28), (BC_D_COND, 16, 16 + 4));
        assert_eq!(&b[32..34], &[AF_INET, 8]);
        assert_eq!(i32::from_ne_bytes(b[36..40].try_into().unwrap()), -1);
        assert_eq!(&b[40..44], &[10, 0, 0, 0]);
        assert_eq!(b.len(), 44);
    }

    #[test]
    fn not_turns_pass_into_reject() {
        // not sport >= 1024: S_GE (fails → the end: pass), JMP to reject.
        let b = compile_expr(&Expr::not(Expr::PortGe {
            end: End::Local,
            port: 1024,
        }))
        .unwrap();
        assert_eq!(op(&b, 0), (BC_S_GE, 8, 12));
        assert_eq!(op(&b, 4).2, 1024);
        assert_eq!(op(&b, 8), (BC_JMP, 4, 8));
        assert_eq!(b.len(), 12);
    }

    /// Runs a program the way `inet_diag_bc_run` does, on a socket reduced to its ports.
    fn run(b: &[u8], sport: u16, dport: u16) -> bool {
        let mut at = 0usize;
        while at < b.len() {
            let (code, yes, no) = op(b, at);
            let port = |off: usize| u16::from_ne_bytes([b[at + off + 2], b[at + off + 3]]);
            let cond_port = || i32::from_ne_bytes(b[at + 8..at + 12].try_into().unwrap());
            let ok = match code {
                BC_JMP => false,
                BC_S_GE => sport >= port(4),
                BC_S_LE => sport <= port(4),
                BC_D_GE => dport >= port(4),
                BC_D_LE => dport <= port(4),
                BC_S_COND => cond_port() == -1 || cond_port() == i32::from(sport),
                BC_D_COND => cond_port() == -1 || cond_port() == i32::from(dport),
                _ => panic!("op {code}"),
            };
            at += if ok { yes as usize } else { no as usize };
        }
        at == b.len()
    }

    #[test]
    fn compiled_logic_agrees_with_user_space_on_nested_expressions() {
        use crate::sockets::model::Socket;
        let s = |a: u16, b: u16| Expr::port(End::Local, a).clone_or(b);
        let exprs = [
            Expr::and(s(1, 2), Expr::not(s(3, 2))),
            Expr::or(Expr::not(s(1, 1)), Expr::and(s(2, 2), Expr::not(s(2, 3)))),
            Expr::not(Expr::or(
                Expr::PortGe {
                    end: End::Peer,
                    port: 3,
                },
                Expr::not(Expr::and(s(1, 2), s(2, 1))),
            )),
        ];
        for e in &exprs {
            let b = compile_expr(e).unwrap();
            for sp in 0..4 {
                for dp in 0..4 {
                    let sock = Socket::test_tcp("127.0.0.1", sp, "127.0.0.1", dp);
                    assert_eq!(run(&b, sp, dp), e.matches(&sock), "{e:?} on {sp}->{dp}");
                }
            }
        }
    }

    impl Expr {
        /// `sport = a or dport = b`, a small building block for the tests above.
        fn clone_or(self, b: u16) -> Expr {
            Expr::or(self, Expr::port(End::Peer, b))
        }
    }
}
