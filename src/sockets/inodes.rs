//! Socket inode → protocol (TCP, UDP, UNIX), from sock_diag dumps of one network namespace.
//!
//! `fds --kinds` matches each `socket:[INODE]` fd against this index. Sockets live in the
//! namespace they were created in, not the one sockscope runs in, so each namespace is dumped
//! from a worker thread that has entered it (`setns` moves only the calling thread).

use std::collections::HashMap;
use std::path::Path;

use super::all_states_mask;
use super::diag::{DiagError, DiagSocket, DumpRequest, BOTH_FAMILIES};
use super::model::Proto;
use super::unix_diag::for_each_unix_inode;
use crate::host::Host;
use crate::netns::{self, NetnsError};

/// The protocols sock_diag can name exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockProto {
    Tcp,
    Udp,
    Unix,
}

pub type ProtoIndex = HashMap<u32, SockProto>;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Diag(#[from] DiagError),
}

/// Adds every TCP, UDP and UNIX socket of the calling thread's namespace to `index`. A kernel
/// without IPv6 or without one diag module is not an error: those sockets stay unmatched.
pub fn index_current_netns(host: &dyn Host, index: &mut ProtoIndex) -> Result<(), DiagError> {
    let mut diag = DiagSocket::open(host)?;
    let mut dump = |proto, family| {
        let tag = match proto {
            Proto::Tcp => SockProto::Tcp,
            Proto::Udp => SockProto::Udp,
        };
        let req = DumpRequest {
            proto,
            family,
            states: all_states_mask(),
            tcp_info: false,
            memory: false,
        };
        diag.dump(&req, &mut |s| {
            index.insert(s.inode, tag);
        })
    };
    // TCP over both families in one walk of the kernel's tables, per family if refused.
    let tcp_done = match dump(Proto::Tcp, BOTH_FAMILIES) {
        Ok(()) => true,
        Err(e) if e.refused_both() => false,
        Err(e) => return Err(e),
    };
    for proto in [Proto::Tcp, Proto::Udp] {
        if proto == Proto::Tcp && tcp_done {
            continue;
        }
        for family in [4, 6] {
            match dump(proto, family) {
                Ok(()) | Err(DiagError::NoKernelSupport { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    match for_each_unix_inode(host, &mut |i| {
        index.insert(i, SockProto::Unix);
    }) {
        Ok(()) | Err(DiagError::Decode(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The index of the namespace whose file is `ns_path` (e.g. `/proc/PID/ns/net`), dumped from a
/// worker thread inside it; the calling thread's namespace is untouched.
pub fn index_netns(host: &dyn Host, ns_path: &Path) -> Result<ProtoIndex, IndexError> {
    netns::run_in(host, ns_path, || {
        let mut index = ProtoIndex::new();
        index_current_netns(host, &mut index)?;
        Ok(index)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    fn ino(fd: &impl AsRawFd) -> u32 {
        std::fs::metadata(format!("{}/self/fd/{}", crate::host::PROC, fd.as_raw_fd()))
            .unwrap()
            .ino() as u32
    }

    #[test]
    fn indexes_tcp_udp_and_unix_of_our_namespace() {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        let index = index_netns(
            &crate::host::LiveHost,
            Path::new(&format!("{}/self/ns/net", crate::host::PROC)),
        )
        .unwrap();
        assert_eq!(index.get(&ino(&t)), Some(&SockProto::Tcp));
        assert_eq!(index.get(&ino(&u)), Some(&SockProto::Udp));
        assert_eq!(index.get(&ino(&x)), Some(&SockProto::Unix));
    }
}
