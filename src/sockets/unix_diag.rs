//! The UNIX-socket side of sock_diag (`unix_diag`), in the calling thread's network namespace:
//! the inode of every AF_UNIX socket, so `fds --kinds` can tell a UNIX socket from a TCP one
//! (no attributes asked for, one field read), and whole sockets for `sockets -x` (bound name,
//! peer inode, queue lengths).

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::unix::{ShowFlags, StateFlags, UnixRequest};
use netlink_packet_sock_diag::SockDiagMessage;

use super::diag::{walk_batch, Batch, DiagError};
use super::model::TcpState;
use super::unix::{name_of, UnixKind, UnixSocket};

use crate::host::Host;

/// `struct unix_diag_msg`: family, type, state, pad (4 bytes), ino (u32), cookie (8 bytes).
const UNIX_DIAG_MSG_LEN: usize = 16;

// Attribute types (`enum` in linux/unix_diag.h).
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;

/// Calls `each(inode)` for every UNIX socket in the calling thread's network namespace.
pub fn for_each_unix_inode(host: &dyn Host, each: &mut dyn FnMut(u32)) -> Result<(), DiagError> {
    dump(host, u32::MAX, ShowFlags::empty(), &mut |payload| {
        each(parse_inode(payload)?);
        Ok(())
    })
}

/// Calls `each` for every UNIX socket whose state is in `states` (a mask of `1 << state`,
/// the kernel's TCP numbering: LISTEN 10, ESTABLISHED 1, CLOSE 7 for unconnected), with its
/// bound name, peer inode and queue lengths.
pub fn for_each_unix_socket(
    host: &dyn Host,
    states: u32,
    each: &mut dyn FnMut(UnixSocket),
) -> Result<(), DiagError> {
    dump(
        host,
        states,
        ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN,
        &mut |payload| {
            if let Some(s) = parse_unix_socket(payload)? {
                each(s);
            }
            Ok(())
        },
    )
}

/// One `unix_diag_msg` with its attributes; `None` for a socket type sockscope does not know.
pub fn parse_unix_socket(payload: &[u8]) -> Result<Option<UnixSocket>, DiagError> {
    let inode = parse_inode(payload)?;
    let Some(kind) = UnixKind::from_kernel(payload[1]) else {
        return Ok(None);
    };
    let state = match TcpState::from_kernel(payload[2]) {
        // Not connected (a datagram socket, or a stream socket before connect): ss's UNCONN.
        TcpState::Close => TcpState::Unconn,
        s => s,
    };
    let mut s = UnixSocket {
        proto: "unix",
        kind,
        state,
        path: None,
        recv_q: 0,
        send_q: 0,
        inode,
        peer_inode: 0,
        processes: None,
        peer_processes: None,
    };
    let mut attrs = &payload[UNIX_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return Err(DiagError::Decode(format!(
                "unix_diag attribute of {len} bytes with {} left",
                attrs.len()
            )));
        }
        let data = &attrs[4..len];
        let u32_at = |i: usize| {
            data.get(i..i + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        match kind {
            UNIX_DIAG_NAME => s.path = name_of(data),
            UNIX_DIAG_PEER => s.peer_inode = u32_at(0).unwrap_or(0),
            UNIX_DIAG_RQLEN => {
                s.recv_q = u32_at(0).unwrap_or(0);
                s.send_q = u32_at(4).unwrap_or(0);
            }
            _ => {}
        }
        let step = (len + 3) & !3;
        if step >= attrs.len() {
            break;
        }
        attrs = &attrs[step..];
    }
    Ok(Some(s))
}

fn parse_inode(payload: &[u8]) -> Result<u32, DiagError> {
    if payload.len() < UNIX_DIAG_MSG_LEN {
        return Err(DiagError::Decode(format!(
            "unix_diag_msg of {} bytes, expected at least {UNIX_DIAG_MSG_LEN}",
            payload.len()
        )));
    }
    Ok(u32::from_ne_bytes([
        payload[4], payload[5], payload[6], payload[7],
    ]))
}

/// One unix_diag dump through the host: the request, then every message's payload to `each`.
/// A recording keeps the full dump (every state, every attribute sockscope reads), so either
/// question can be answered from a snapshot.
fn dump(
    host: &dyn Host,
    states: u32,
    show: ShowFlags,
    each: &mut dyn FnMut(&[u8]) -> Result<(), DiagError>,
) -> Result<(), DiagError> {
    let seq = 1;
    let packet = build_request(seq, states, show);
    let full = build_request(
        seq,
        u32::MAX,
        ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN,
    );
    let ask = crate::host::DiagAsk {
        proto: "unix",
        family: 0,
        packet: &packet,
        seq,
        full: &full,
    };
    let mut end = 0;
    host.sock_diag(&ask, &mut |buf, seq| {
        Ok(match parse_batch(buf, seq, each)? {
            None => false,
            Some(errno) => {
                end = errno;
                true
            }
        })
    })?;
    match end {
        0 => Ok(()),
        libc::ENOENT | libc::EOPNOTSUPP => Err(DiagError::Decode(
            "the kernel has no sock_diag support for UNIX sockets (module unix_diag not \
             loaded?); try `modprobe unix_diag`"
                .into(),
        )),
        errno => Err(DiagError::Dump {
            proto: "unix",
            family: 0,
            source: io::Error::from_raw_os_error(errno),
        }),
    }
}

fn build_request(seq: u32, states: u32, show: ShowFlags) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::UnixRequest(UnixRequest {
            // u32::MAX is every state: listening, connected, unconnected (TCP_CLOSE = 7).
            state_flags: StateFlags::from_bits_retain(states),
            inode: 0,
            show_flags: show,
            cookie: [0xff; 8],
        })),
    );
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Decodes one datagram: `None` = more to come, `Some(0)` = done, `Some(errno)` = error.
pub fn parse_unix_batch(
    buf: &[u8],
    seq: u32,
    each: &mut dyn FnMut(u32),
) -> Result<Option<i32>, DiagError> {
    parse_batch(buf, seq, &mut |payload| {
        each(parse_inode(payload)?);
        Ok(())
    })
}

fn parse_batch(
    buf: &[u8],
    seq: u32,
    each: &mut dyn FnMut(&[u8]) -> Result<(), DiagError>,
) -> Result<Option<i32>, DiagError> {
    let batch = walk_batch(buf, seq, each)?;
    Ok(match batch {
        Batch::More => None,
        Batch::Done => Some(0),
        Batch::Error(errno) => Some(errno),
    })
}

#[cfg(test)]
mod tests {
    use super::super::diag::{NLMSG_DONE, NLMSG_ERROR, NLMSG_HDR_LEN, SOCK_DIAG_BY_FAMILY};
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn nlmsg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDR_LEN + payload.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn parses_inodes_and_done() {
        let msg = [
            1u8, // udiag_family AF_UNIX
            1,   // udiag_type SOCK_STREAM
            10,  // udiag_state LISTEN
            0,   // pad
        ]
        .into_iter()
        .chain(4242u32.to_ne_bytes()) // udiag_ino
        .chain([0xffu8; 8]) // udiag_cookie
        .collect::<Vec<u8>>();
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 7, &msg);
        buf.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 6, &msg)); // an older request's: ignored
        let mut seen = Vec::new();
        assert_eq!(
            parse_unix_batch(&buf, 7, &mut |i| seen.push(i)).unwrap(),
            None
        );
        assert_eq!(seen, [4242]);
        let done = nlmsg(NLMSG_DONE, 7, &0u32.to_ne_bytes());
        assert_eq!(parse_unix_batch(&done, 7, &mut |_| {}).unwrap(), Some(0));
        let err = nlmsg(NLMSG_ERROR, 7, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse_unix_batch(&err, 7, &mut |_| {}).unwrap(),
            Some(libc::EPERM)
        );
        let short = nlmsg(SOCK_DIAG_BY_FAMILY, 7, &[1, 2, 3]);
        assert!(parse_unix_batch(&short, 7, &mut |_| {}).is_err());
    }

    #[test]
    fn dump_finds_our_socketpair() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
        let ino = std::fs::metadata(format!("{}/self/fd/{fd}", crate::host::PROC))
            .unwrap()
            .ino() as u32;
        let mut found = false;
        for_each_unix_inode(&crate::host::LiveHost, &mut |i| found |= i == ino).unwrap();
        assert!(found);
    }

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(data);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn parses_name_peer_and_queues() {
        let mut msg = vec![
            1u8, // AF_UNIX
            2,   // SOCK_DGRAM
            7,   // TCP_CLOSE: unconnected
            0,
        ];
        msg.extend(77u32.to_ne_bytes()); // udiag_ino
        msg.extend([0xffu8; 8]);
        msg.extend(attr(UNIX_DIAG_NAME, b"\0sock\0scope")); // abstract, 10 bytes: padded
        msg.extend(attr(UNIX_DIAG_PEER, &78u32.to_ne_bytes()));
        let mut rq = 3u32.to_ne_bytes().to_vec();
        rq.extend(9u32.to_ne_bytes());
        msg.extend(attr(UNIX_DIAG_RQLEN, &rq));
        msg.extend(attr(99, b"future")); // unknown: skipped
        let s = parse_unix_socket(&msg).unwrap().unwrap();
        assert_eq!(s.kind, UnixKind::Dgram);
        assert_eq!(s.state, TcpState::Unconn);
        assert_eq!(s.path.as_deref(), Some("@sock@scope"));
        assert_eq!((s.inode, s.peer_inode, s.recv_q, s.send_q), (77, 78, 3, 9));
        msg[1] = 3; // SOCK_RAW: not a UNIX type sockscope lists
        assert_eq!(parse_unix_socket(&msg).unwrap(), None);
        let mut bad = msg.clone();
        bad.extend([200u8, 0, 0, 0]); // an attribute longer than what is left
        bad[1] = 1;
        assert!(parse_unix_socket(&bad).is_err());
    }

    #[test]
    fn dump_reads_a_bound_listener_and_a_pair() {
        let dir = std::env::temp_dir().join(format!("ssc-ud-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ino = |fd: i32| {
            std::fs::metadata(format!("{}/self/fd/{fd}", crate::host::PROC))
                .unwrap()
                .ino() as u32
        };
        use std::os::fd::AsRawFd;
        let (il, ia, ib) = (ino(l.as_raw_fd()), ino(a.as_raw_fd()), ino(b.as_raw_fd()));
        let mut got = Vec::new();
        for_each_unix_socket(&crate::host::LiveHost, u32::MAX, &mut |s| {
            if [il, ia, ib].contains(&s.inode) {
                got.push(s)
            }
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        got.sort_by_key(|s| s.inode);
        assert_eq!(got.len(), 3, "{got:?}");
        let listener = got.iter().find(|s| s.inode == il).unwrap();
        assert_eq!(listener.state, TcpState::Listening);
        assert_eq!(listener.path.as_deref(), path.to_str());
        let end = got.iter().find(|s| s.inode == ia).unwrap();
        assert_eq!((end.state, end.peer_inode), (TcpState::Established, ib));
        assert_eq!(end.path, None);
    }
}
