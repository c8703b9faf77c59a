//! SOCK_DESTROY (`sockets -K`): finds the TCP/UDP sockets a selection matches, each with the
//! exact `inet_diag_sockid` the kernel gave (ports, addresses, interface and cookie), and asks
//! the kernel to destroy them one by one.
//!
//! The id is taken from the dump rather than rebuilt from the [`Socket`]: its cookie makes the
//! kernel refuse (ENOENT) if the connection was replaced by another with the same four-tuple
//! between the listing and the kill, so only what was shown is killed.
//!
//! Collecting only: which sockets to kill and whether to ask is the command's business, and
//! each refusal comes back as data.

use super::diag::{parse_inet_diag_msg, walk_batch, DiagError, NLMSG_HDR_LEN, SOCK_DIAG_BY_FAMILY};
use super::filter::Selection;
use super::model::{Proto, Socket};

use crate::host::Host;

/// `SOCK_DESTROY` (linux/sock_diag.h).
const SOCK_DESTROY: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
/// `struct inet_diag_sockid`: sport, dport, src[4], dst[4], if, cookie[2].
const SOCKID_LEN: usize = 48;
/// Offset of the sockid in `struct inet_diag_msg` (after family, state, timer, retrans).
const SOCKID_AT: usize = 4;
/// The first bit of CAP_NET_ADMIN in a capability mask.
const CAP_NET_ADMIN: u32 = 12;

/// A socket to kill, with the id the kernel knows it by.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: Socket,
    id: [u8; SOCKID_LEN],
}

/// The request both the dump and the kill send: `nlmsghdr` + `inet_diag_req_v2`.
fn request(
    kind: u16,
    flags: u16,
    seq: u32,
    proto: Proto,
    family: u8,
    states: u32,
    id: &[u8; SOCKID_LEN],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDR_LEN + 8 + SOCKID_LEN);
    let len = (NLMSG_HDR_LEN + 8 + SOCKID_LEN) as u32;
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(if family == 6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    });
    b.push(match proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    });
    b.push(0); // no extras
    b.push(0);
    b.extend_from_slice(&states.to_ne_bytes());
    b.extend_from_slice(id);
    b
}

/// Every socket `sel` matches in the calling thread's namespace, with its kernel id. The
/// state mask runs in the kernel; the address/port filter in user space (the same expression
/// the bytecode is compiled from).
pub fn targets(host: &dyn Host, sel: &Selection) -> Result<Vec<Target>, DiagError> {
    let user = sel.user.to_expr();
    let mut found = Vec::new();
    let mut seq = 0u32;
    for &proto in &sel.protos {
        let states = match sel.states_for(proto) {
            0 => super::all_states_mask(),
            m => m,
        };
        for &family in &sel.families {
            seq += 1;
            let packet = request(
                SOCK_DIAG_BY_FAMILY,
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
                proto,
                family,
                states,
                &[0; SOCKID_LEN],
            );
            let ask = crate::host::DiagAsk {
                proto: proto.name(),
                family,
                packet: &packet,
                seq,
                full: &packet,
            };
            let mut refused = None;
            host.sock_diag(&ask, &mut |buf, seq| {
                let batch = walk_batch(buf, seq, &mut |payload| {
                    let socket = parse_inet_diag_msg(payload, proto)?;
                    if user.as_ref().is_none_or(|e| e.matches(&socket)) {
                        let mut id = [0; SOCKID_LEN];
                        id.copy_from_slice(&payload[SOCKID_AT..SOCKID_AT + SOCKID_LEN]);
                        found.push(Target { socket, id });
                    }
                    Ok(())
                })?;
                Ok(match batch {
                    super::diag::Batch::More => false,
                    super::diag::Batch::Done => true,
                    super::diag::Batch::Error(errno) => {
                        refused = Some(errno);
                        true
                    }
                })
            })?;
            if let Some(errno) = refused {
                return Err(DiagError::Dump {
                    proto: proto.name(),
                    family,
                    source: std::io::Error::from_raw_os_error(errno),
                });
            }
        }
    }
    Ok(found)
}

/// Asks the kernel to destroy one socket: `Ok(())`, or the positive errno it refused with
/// (ENOENT: gone already; EPERM: no CAP_NET_ADMIN; EOPNOTSUPP: a kernel without
/// CONFIG_INET_DIAG_DESTROY). `Err` when the request could not be sent at all.
pub fn destroy(host: &dyn Host, t: &Target, seq: u32) -> std::io::Result<Result<(), i32>> {
    let packet = request(
        SOCK_DESTROY,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        t.socket.proto,
        t.socket.family,
        super::all_states_mask(),
        &t.id,
    );
    match host.sock_destroy(&packet, seq)? {
        0 => Ok(Ok(())),
        errno => Ok(Err(errno)),
    }
}

/// Whether this process has CAP_NET_ADMIN in its effective set (read from its own status; a
/// kernel asked without it refuses each socket with EPERM, said once up front instead).
pub fn has_net_admin() -> bool {
    // This process's own capabilities, not the observed host's: read live even on a replay
    // (which refuses -K anyway).
    let Ok(status) = std::fs::read_to_string(format!("{}/self/status", crate::host::PROC)) else {
        // Unknown: let the kernel decide per socket.
        return true;
    };
    cap_eff_has(&status, CAP_NET_ADMIN)
}

fn cap_eff_has(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << cap) != 0)
}

/// The kernel's answer to a SOCK_DESTROY request: 0, or the positive errno of NLMSG_ERROR.
pub fn parse_ack(buf: &[u8], seq: u32) -> Result<Option<i32>, DiagError> {
    Ok(match walk_batch(buf, seq, &mut |_| Ok(()))? {
        super::diag::Batch::More => None,
        super::diag::Batch::Done => Some(0),
        super::diag::Batch::Error(errno) => Some(errno),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroy_request_carries_the_exact_id() {
        let mut id = [0u8; SOCKID_LEN];
        id[0..2].copy_from_slice(&8080u16.to_be_bytes());
        id[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let p = request(
            SOCK_DESTROY,
            NLM_F_REQUEST | NLM_F_ACK,
            7,
            Proto::Tcp,
            4,
            0,
            &id,
        );
        assert_eq!(p.len(), 72);
        assert_eq!(u32::from_ne_bytes(p[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(p[4..6].try_into().unwrap()), 21);
        assert_eq!(u16::from_ne_bytes(p[6..8].try_into().unwrap()), 5);
        assert_eq!(u32::from_ne_bytes(p[8..12].try_into().unwrap()), 7);
        assert_eq!(p[16], libc::AF_INET as u8);
        assert_eq!(p[17], libc::IPPROTO_TCP as u8);
        assert_eq!(&p[24..], &id);
    }

    #[test]
    fn cap_net_admin_is_bit_12_of_cap_eff() {
        assert!(cap_eff_has("Name:\tx\nCapEff:\t000001ffffffffff\n", 12));
        assert!(!cap_eff_has("CapEff:\t0000000000000000\n", 12));
        assert!(!cap_eff_has("CapEff:\t0000000000000fff\n", 12));
        assert!(cap_eff_has("CapEff:\t0000000000001000\n", 12));
    }

    #[test]
    fn an_ack_is_zero_and_an_error_its_errno() {
        let mut ok = Vec::new();
        ok.extend_from_slice(&36u32.to_ne_bytes());
        ok.extend_from_slice(&2u16.to_ne_bytes());
        ok.extend_from_slice(&0u16.to_ne_bytes());
        ok.extend_from_slice(&9u32.to_ne_bytes());
        ok.extend_from_slice(&0u32.to_ne_bytes());
        let mut err = ok.clone();
        ok.extend_from_slice(&0i32.to_ne_bytes());
        ok.extend_from_slice(&[0; 16]);
        err.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        err.extend_from_slice(&[0; 16]);
        assert_eq!(parse_ack(&ok, 9).unwrap(), Some(0));
        assert_eq!(parse_ack(&err, 9).unwrap(), Some(libc::ENOENT));
        assert_eq!(parse_ack(&err, 8).unwrap(), None);
    }
}
