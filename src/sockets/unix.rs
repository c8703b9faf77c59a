//! The UNIX socket model (`sockets -x`): plain data decoded from `unix_diag`, no I/O.

use serde::Serialize;

use super::model::{ProcessRef, TcpState};

/// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixKind {
    Stream,
    Dgram,
    Seqpacket,
}

impl UnixKind {
    pub fn from_kernel(t: u8) -> Option<UnixKind> {
        match t as i32 {
            libc::SOCK_STREAM => Some(UnixKind::Stream),
            libc::SOCK_DGRAM => Some(UnixKind::Dgram),
            libc::SOCK_SEQPACKET => Some(UnixKind::Seqpacket),
            _ => None,
        }
    }

    /// ss's netid: `u_str`, `u_dgr`, `u_seq`.
    pub fn netid(self) -> &'static str {
        match self {
            UnixKind::Stream => "u_str",
            UnixKind::Dgram => "u_dgr",
            UnixKind::Seqpacket => "u_seq",
        }
    }
}

/// One UNIX socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnixSocket {
    /// Always `"unix"`: the same key as TCP/UDP sockets' `proto`, so mixed pipelines can tell.
    pub proto: &'static str,
    #[serde(rename = "type")]
    pub kind: UnixKind,
    /// `listening`, `established` (connected), `unconn` (not connected: the kernel's
    /// TCP_CLOSE), or `syn-sent` (connecting).
    pub state: TcpState,
    /// The bound address: a filesystem path, `@name` for an abstract one (a NUL inside the
    /// name is shown as `@`, as ss does), absent when unbound (a socketpair end, a client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bytes (stream) or datagrams' bytes waiting to be read; on a listener, connections
    /// waiting for accept().
    pub recv_q: u32,
    /// Bytes not yet taken by the peer; on a listener, its backlog.
    pub send_q: u32,
    pub inode: u32,
    /// The inode of the connected peer socket (0 when not connected).
    pub peer_inode: u32,
    /// Filled only when owners were asked for (`-p`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessRef>>,
    /// With `-p`: the processes holding the peer socket (the other end of the connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_processes: Option<Vec<ProcessRef>>,
}

/// The bound name as people write it: a path as is (up to its NUL), an abstract name as `@`
/// followed by the name with its NULs as `@`. Bytes that are not UTF-8 are replaced.
pub fn name_of(raw: &[u8]) -> Option<String> {
    match raw.split_first() {
        None => None,
        Some((0, rest)) => {
            let name: Vec<u8> = rest
                .iter()
                .map(|&b| if b == 0 { b'@' } else { b })
                .collect();
            Some(format!("@{}", String::from_utf8_lossy(&name)))
        }
        Some(_) => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Some(String::from_utf8_lossy(&raw[..end]).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_like_ss() {
        assert_eq!(name_of(b"/run/x.sock\0").as_deref(), Some("/run/x.sock"));
        assert_eq!(name_of(b"/run/y").as_deref(), Some("/run/y"));
        assert_eq!(name_of(b"\0svc\0x").as_deref(), Some("@svc@x"));
        assert_eq!(name_of(b"").as_deref(), None);
        assert_eq!(UnixKind::from_kernel(5).map(UnixKind::netid), Some("u_seq"));
    }
}
