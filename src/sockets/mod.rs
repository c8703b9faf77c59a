//! Sockets straight from the kernel: the sock_diag collector, the socket model, filters and the
//! analyses behind `sockets`, `listeners` and `states`.

pub mod diag;
pub mod filter;
pub mod inodes;
pub mod listeners;
pub mod model;
pub mod states;
pub mod sysctl;
pub mod tcp_info;
pub mod unix_diag;

use diag::{DiagError, DiagSocket, DumpRequest};
use filter::Selection;
use model::{Proto, Socket, TcpState};

/// Every state: the mask used when the user asked for no particular state.
pub fn all_states_mask() -> u32 {
    TcpState::ALL.iter().map(|s| s.mask_bit()).sum()
}

/// Streams the sockets a selection asks for: one kernel dump per protocol and family, user-space
/// filters applied on the way. Runs in the calling thread's network namespace.
pub fn for_each_socket(
    sel: &Selection,
    tcp_info: bool,
    each: &mut dyn FnMut(Socket),
) -> Result<(), DiagError> {
    let mut diag = DiagSocket::open()?;
    let states = if sel.states == 0 {
        all_states_mask()
    } else {
        sel.states
    };
    for &proto in &sel.protos {
        for &family in &sel.families {
            let req = DumpRequest {
                proto,
                family,
                states,
                tcp_info: tcp_info && proto == Proto::Tcp,
            };
            if sel.user.is_empty() {
                diag.dump(&req, each)?;
            } else {
                diag.dump(&req, &mut |s| {
                    if sel.user.matches(&s) {
                        each(s)
                    }
                })?;
            }
        }
    }
    Ok(())
}
