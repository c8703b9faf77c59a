//! Sockets straight from the kernel: the sock_diag collector, the socket model, filters and the
//! analyses behind `sockets`, `listeners` and `states`.

pub mod bytecode;
pub mod destroy;
pub mod diag;
pub mod expr;
pub mod filter;
pub mod inodes;
pub mod listeners;
pub mod model;
pub mod node;
pub mod owned;
pub mod placed;
pub mod ssfilter;
pub mod state_watch;
pub mod states;
pub mod sysctl;
pub mod tcp_info;
pub mod unix;
pub mod unix_diag;
pub mod watch;

use diag::{DiagError, DiagSocket, DumpRequest};
use filter::Selection;
use model::{Proto, Socket, TcpState};

use crate::host::Host;

/// Every state: the mask used when the user asked for no particular state.
pub fn all_states_mask() -> u32 {
    TcpState::ALL.iter().map(|s| s.mask_bit()).sum()
}

/// What to ask the kernel for besides each socket's header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `tcp_info` for TCP sockets (`-i`).
    pub tcp_info: bool,
    /// The socket's memory and drop count (`-m`).
    pub memory: bool,
}

/// Streams the sockets a selection asks for: one kernel dump per protocol and family (TCP
/// over both families in one dump, see [`diag::BOTH_FAMILIES`]), with the port and address
/// filters compiled to inet_diag bytecode so the kernel applies them. Should a kernel refuse
/// the program (EINVAL), the same filters run in user space instead. Runs in the calling
/// thread's network namespace.
pub fn for_each_socket(
    host: &dyn Host,
    sel: &Selection,
    extras: Extras,
    each: &mut dyn FnMut(Socket),
) -> Result<(), DiagError> {
    let mut diag = DiagSocket::open(host)?;
    let program = bytecode::compile(&sel.user);
    // Checked in user space only when the kernel is not given the program: too long to send
    // (see bytecode.rs), or refused below.
    let user = sel.user.to_expr();
    let keep = |s: &Socket| user.as_ref().is_none_or(|e| e.matches(s));
    for &proto in &sel.protos {
        let states = match sel.states_for(proto) {
            0 => all_states_mask(),
            m => m,
        };
        let req = |family| DumpRequest {
            proto,
            family,
            states,
            tcp_info: extras.tcp_info && proto == Proto::Tcp,
            memory: extras.memory,
        };
        // Each TCP dump walks every socket of the host, whichever namespace asks: one walk
        // for both families halves the cost of a node-wide scan.
        if proto == Proto::Tcp && sel.families.contains(&4) && sel.families.contains(&6) {
            match dump_one(&mut diag, &req(diag::BOTH_FAMILIES), &program, &keep, each) {
                Err(e) if e.refused_both() => {}
                r => {
                    r?;
                    continue;
                }
            }
        }
        for &family in &sel.families {
            dump_one(&mut diag, &req(family), &program, &keep, each)?;
        }
    }
    Ok(())
}

/// One dump, with the compiled filter when there is one; a kernel that refuses the program
/// gets the plain request and the filter runs here.
fn dump_one(
    diag: &mut DiagSocket,
    req: &DumpRequest,
    program: &Option<Vec<u8>>,
    keep: &dyn Fn(&Socket) -> bool,
    each: &mut dyn FnMut(Socket),
) -> Result<(), DiagError> {
    let Some(program) = program else {
        return diag.dump(req, &mut |s| {
            if keep(&s) {
                each(s)
            }
        });
    };
    match diag.dump_filtered(req, program, each) {
        Err(DiagError::Dump { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
            // Refused before any socket was sent: nothing is reported twice.
            diag.dump(req, &mut |s| {
                if keep(&s) {
                    each(s)
                }
            })
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::filter::UserFilter;
    use super::*;
    use std::net::TcpListener;

    fn dump(user: UserFilter) -> Vec<Socket> {
        let program = bytecode::compile(&user).expect("a filter");
        let mut diag = DiagSocket::open(&crate::host::LiveHost).unwrap();
        let req = DumpRequest {
            proto: Proto::Tcp,
            family: 4,
            states: all_states_mask(),
            tcp_info: false,
            memory: false,
        };
        let mut got = Vec::new();
        diag.dump_filtered(&req, &program, &mut |s| got.push(s))
            .expect("the kernel accepts the program");
        got
    }

    /// The kernel itself runs the compiled filters (no privilege needed for sock_diag).
    #[test]
    fn kernel_applies_compiled_port_and_address_filters() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let cport = c.local_addr().unwrap().port();
        let (_s, _) = l.accept().unwrap();

        let sport = dump(UserFilter {
            sport: Some(port),
            ..Default::default()
        });
        assert_eq!(sport.len(), 2, "listener and accepted socket: {sport:?}");
        let either = dump(UserFilter {
            port: Some(port),
            ..Default::default()
        });
        assert_eq!(either.len(), 3, "{either:?}");
        let dport = dump(UserFilter {
            dport: Some(port),
            src: Some("127.0.0.0/8".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(dport.len(), 1);
        assert_eq!(dport[0].local.port, cport);
        // A whole filter-language expression (or, not, a v6 host condition) runs in the
        // kernel as compiled: `dump` fails if the kernel refuses the program.
        let q = ssfilter::parse(&[format!(
            "not ( sport = :{port} or dst [::1] ) and ( dport >= {port} and dport <= {port} \
             or src 10.0.0.0/8 )"
        )])
        .unwrap();
        let clients = dump(UserFilter {
            expr: q.expr,
            ..Default::default()
        });
        assert_eq!(clients.len(), 1, "{clients:?}");
        assert_eq!(clients[0].local.port, cport);
        let elsewhere = dump(UserFilter {
            port: Some(port),
            dst: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        });
        assert!(elsewhere.is_empty(), "{elsewhere:?}");
    }
}
