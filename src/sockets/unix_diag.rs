//! The UNIX-socket side of sock_diag: the inode of every AF_UNIX socket in the calling thread's
//! network namespace (`unix_diag`), so `fds --kinds` can tell a UNIX socket from a TCP one.
//!
//! Only inodes are needed, so the request asks for no attributes and the parse reads one field.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::unix::{ShowFlags, StateFlags, UnixRequest};
use netlink_packet_sock_diag::SockDiagMessage;

use super::diag::{walk_batch, Batch, DiagError};

/// `struct unix_diag_msg`: family, type, state, pad (4 bytes), ino (u32), cookie (8 bytes).
const UNIX_DIAG_MSG_LEN: usize = 16;

/// Calls `each(inode)` for every UNIX socket in the calling thread's network namespace.
pub fn for_each_unix_inode(each: &mut dyn FnMut(u32)) -> Result<(), DiagError> {
    let seq = 1;
    let packet = build_request(seq);
    let ask = crate::host::DiagAsk {
        proto: "unix",
        family: 0,
        packet: &packet,
        seq,
        full: &packet,
    };
    let mut end = 0;
    crate::host::current().sock_diag(&ask, &mut |buf, seq| {
        Ok(match parse_unix_batch(buf, seq, each)? {
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

fn build_request(seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::UnixRequest(UnixRequest {
            // Every state: listening, connected, and unconnected (TCP_CLOSE = 7) sockets.
            state_flags: StateFlags::from_bits_retain(u32::MAX),
            inode: 0,
            show_flags: ShowFlags::empty(),
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
    let batch = walk_batch(buf, seq, &mut |payload| {
        if payload.len() < UNIX_DIAG_MSG_LEN {
            return Err(DiagError::Decode(format!(
                "unix_diag_msg of {} bytes, expected at least {UNIX_DIAG_MSG_LEN}",
                payload.len()
            )));
        }
        each(u32::from_ne_bytes([
            payload[4], payload[5], payload[6], payload[7],
        ]));
        Ok(())
    })?;
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
        let ino = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino() as u32;
        let mut found = false;
        for_each_unix_inode(&mut |i| found |= i == ino).unwrap();
        assert!(found);
    }
}
