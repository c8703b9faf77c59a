//! What a process's fds are: sockets by protocol, files, pipes, anon inodes, devices.
//!
//! This is the expensive read (one `readlink` per fd, plus one `stat` for fds that name a
//! path, to tell a device or a named pipe from a file), so `fds` does it only for the rows it
//! shows. Socket protocols come from sock_diag inodes ([`ProtoIndex`]); a socket no dump lists
//! (an unbound TCP socket is in no kernel table) is named by its `system.sockprotoname` xattr.

use std::collections::BTreeMap;

use super::fdwalk::{for_each_fd_link_checked, socket_inode, WalkError};
use crate::host::Host;
use crate::sockets::inodes::{ProtoIndex, SockProto};

/// One fd's kind. The JSON keys are [`FdKind::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FdKind {
    Tcp,
    Udp,
    Unix,
    /// Netlink, packet, raw, SCTP…: any socket that is not TCP, UDP or UNIX.
    OtherSocket,
    File,
    /// Anonymous pipes and named FIFOs.
    Pipe,
    /// eventfd, epoll, timerfd, signalfd, inotify, pidfd, io_uring…
    AnonInode,
    /// Character and block devices (/dev/null, ttys, /dev/net/tun…).
    Device,
    /// Directories and anything else.
    Other,
}

impl FdKind {
    pub const ALL: [FdKind; 9] = [
        FdKind::Tcp,
        FdKind::Udp,
        FdKind::Unix,
        FdKind::OtherSocket,
        FdKind::File,
        FdKind::Pipe,
        FdKind::AnonInode,
        FdKind::Device,
        FdKind::Other,
    ];

    pub fn key(self) -> &'static str {
        match self {
            FdKind::Tcp => "tcp",
            FdKind::Udp => "udp",
            FdKind::Unix => "unix",
            FdKind::OtherSocket => "other_socket",
            FdKind::File => "file",
            FdKind::Pipe => "pipe",
            FdKind::AnonInode => "anon_inode",
            FdKind::Device => "device",
            FdKind::Other => "other",
        }
    }

    pub fn is_socket(self) -> bool {
        matches!(
            self,
            FdKind::Tcp | FdKind::Udp | FdKind::Unix | FdKind::OtherSocket
        )
    }
}

/// What the link target alone says. Paths need a `stat` to be told apart (see [`PathType`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Socket(u32),
    Kind(FdKind),
    /// An absolute path: a file, a device, a FIFO or a directory.
    Path,
}

/// Classifies a `/proc/PID/fd/N` link target (pure).
pub fn parse_target(target: &[u8]) -> Target {
    if let Some(inode) = socket_inode(target) {
        return Target::Socket(inode);
    }
    if target.starts_with(b"pipe:[") {
        Target::Kind(FdKind::Pipe)
    } else if target.starts_with(b"anon_inode:") {
        Target::Kind(FdKind::AnonInode)
    } else if target.starts_with(b"/") {
        Target::Path
    } else {
        // net:[…] (an nsfs handle), mnt:[…], and future pseudo files.
        Target::Kind(FdKind::Other)
    }
}

/// The kind of an fd that names a path, from its file type.
pub fn kind_of_path(ft: Option<crate::host::FileKind>) -> FdKind {
    use crate::host::FileKind;
    match ft {
        Some(FileKind::File) => FdKind::File,
        Some(FileKind::Char | FileKind::Block) => FdKind::Device,
        Some(FileKind::Fifo) => FdKind::Pipe,
        Some(FileKind::Socket) => FdKind::OtherSocket,
        _ => FdKind::Other,
    }
}

/// The kind of a socket from its `system.sockprotoname` xattr ("TCP", "UDPv6", "UNIX-STREAM").
pub fn kind_of_protoname(name: &[u8]) -> FdKind {
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    if name == b"TCP" || name == b"TCPv6" || name == b"MPTCP" || name == b"MPTCPv6" {
        FdKind::Tcp
    } else if name == b"UDP" || name == b"UDPv6" {
        FdKind::Udp
    } else if name.starts_with(b"UNIX") {
        FdKind::Unix
    } else {
        FdKind::OtherSocket
    }
}

/// Fd counts by kind, every kind present (zeros included) so the JSON schema is fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCounts {
    counts: [u64; 9],
}

impl KindCounts {
    pub fn add(&mut self, k: FdKind) {
        self.counts[k as usize] += 1;
    }
    pub fn get(&self, k: FdKind) -> u64 {
        self.counts[k as usize]
    }
    pub fn sockets(&self) -> u64 {
        FdKind::ALL
            .iter()
            .filter(|k| k.is_socket())
            .map(|&k| self.get(k))
            .sum()
    }
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        FdKind::ALL
            .iter()
            .map(|&k| (k.key().to_string(), self.get(k)))
            .collect()
    }
}

/// Reads one process's fds: the kinds when `index` is given, else only the socket count
/// (which needs no stat or xattr, just the link targets).
pub fn read_kinds(
    host: &dyn Host,
    root: &str,
    pid: u32,
    index: Option<&ProtoIndex>,
) -> Result<KindCounts, WalkError> {
    let mut counts = KindCounts::default();
    // Open files are stat'ed together once the links are read (one open of the fd directory).
    let mut paths = Vec::new();
    for_each_fd_link_checked(host, root, pid, &mut |fd, target| {
        counts.add(match (index, parse_target(target)) {
            (Some(_), Target::Path) => {
                paths.push(fd);
                return;
            }
            (Some(index), _) => kind_of_fd(host, root, pid, fd, target, index),
            // Only the socket count is wanted: the target says that much.
            (None, Target::Socket(_)) => FdKind::OtherSocket,
            (None, Target::Kind(k)) => k,
            (None, Target::Path) => FdKind::Other,
        });
    })?;
    host.stat_fds(root, pid, &paths, &mut |_, meta| {
        counts.add(kind_of_path(meta.ok().map(|m| m.kind)))
    });
    Ok(counts)
}

/// The kind of fd `fd` of `pid`, whose link target is `target`.
pub fn kind_of_fd(
    host: &dyn Host,
    root: &str,
    pid: u32,
    fd: u32,
    target: &[u8],
    index: &ProtoIndex,
) -> FdKind {
    match parse_target(target) {
        Target::Kind(k) => k,
        Target::Socket(inode) => match index.get(&inode) {
            Some(SockProto::Tcp) => FdKind::Tcp,
            Some(SockProto::Udp) => FdKind::Udp,
            Some(SockProto::Unix) => FdKind::Unix,
            None => sockprotoname(host, root, pid, fd)
                .map(|n| kind_of_protoname(&n))
                .unwrap_or(FdKind::OtherSocket),
        },
        Target::Path => {
            // Follows the link to the open file itself, so deleted files still answer.
            let ft = host
                .stat(&format!("{root}/{pid}/fd/{fd}"))
                .ok()
                .map(|m| m.kind);
            kind_of_path(ft)
        }
    }
}

/// The socket's protocol name, read through the fd link (`getxattr` follows it to the socket).
fn sockprotoname(host: &dyn Host, root: &str, pid: u32, fd: u32) -> Option<Vec<u8>> {
    host.sockprotoname(&format!("{root}/{pid}/fd/{fd}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn targets_classify_by_prefix() {
        assert_eq!(parse_target(b"socket:[42]"), Target::Socket(42));
        assert_eq!(parse_target(b"pipe:[7]"), Target::Kind(FdKind::Pipe));
        assert_eq!(
            parse_target(b"anon_inode:[eventfd]"),
            Target::Kind(FdKind::AnonInode)
        );
        assert_eq!(
            parse_target(b"anon_inode:inotify"),
            Target::Kind(FdKind::AnonInode)
        );
        assert_eq!(parse_target(b"/dev/null"), Target::Path);
        assert_eq!(parse_target(b"/tmp/x (deleted)"), Target::Path);
        assert_eq!(
            parse_target(b"net:[4026531840]"),
            Target::Kind(FdKind::Other)
        );
    }

    #[test]
    fn protonames_map_to_kinds() {
        assert_eq!(kind_of_protoname(b"TCP\0"), FdKind::Tcp);
        assert_eq!(kind_of_protoname(b"TCPv6"), FdKind::Tcp);
        assert_eq!(kind_of_protoname(b"UDPv6\0"), FdKind::Udp);
        assert_eq!(kind_of_protoname(b"UNIX-STREAM\0"), FdKind::Unix);
        assert_eq!(kind_of_protoname(b"NETLINK\0"), FdKind::OtherSocket);
    }

    #[test]
    fn counts_keep_every_key() {
        let mut c = KindCounts::default();
        c.add(FdKind::Tcp);
        c.add(FdKind::Unix);
        c.add(FdKind::File);
        assert_eq!((c.sockets(), c.total()), (2, 3));
        let m = c.to_map();
        assert_eq!(m.len(), 9);
        assert_eq!(m["tcp"], 1);
        assert_eq!(m["device"], 0);
    }

    #[test]
    fn classifies_our_own_fds() {
        let me = std::process::id();
        let idx = ProtoIndex::new();
        let kind = |fd: i32| {
            let target = std::fs::read_link(format!("{}/self/fd/{fd}", crate::host::PROC)).unwrap();
            let target = target.as_os_str().as_encoded_bytes();
            kind_of_fd(
                &crate::host::LiveHost,
                crate::host::PROC,
                me,
                fd as u32,
                target,
                &idx,
            )
        };
        // An unbound TCP socket is in no sock_diag table: only the xattr can name it.
        // SAFETY: plain socket syscall; the fd is closed below.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(raw >= 0);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let nl = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) };
        let null = std::fs::File::open("/dev/null").unwrap();
        let dir = std::fs::File::open("/").unwrap();
        let file = std::fs::File::open(format!("{}/self/status", crate::host::PROC)).unwrap();
        let mut pipe = [0i32; 2];
        // SAFETY: pipe fills two fds we close below.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        assert_eq!(kind(raw), FdKind::Tcp);
        assert_eq!(kind(udp.as_raw_fd()), FdKind::Udp);
        assert_eq!(kind(nl), FdKind::OtherSocket);
        assert_eq!(kind(null.as_raw_fd()), FdKind::Device);
        assert_eq!(kind(dir.as_raw_fd()), FdKind::Other);
        assert_eq!(kind(file.as_raw_fd()), FdKind::File);
        assert_eq!(kind(pipe[0]), FdKind::Pipe);
        assert_eq!(kind(pipe[1]), FdKind::Pipe);
        // The whole process at once (open files stat'ed together) counts what one by one does.
        let mut one_by_one = KindCounts::default();
        let host = &crate::host::LiveHost;
        host.fd_links(crate::host::PROC, me, &mut |fd, target| {
            if let Ok(target) = target {
                one_by_one.add(kind_of_fd(host, crate::host::PROC, me, fd, target, &idx));
            }
        })
        .unwrap();
        let together = read_kinds(host, crate::host::PROC, me, Some(&idx)).unwrap();
        assert_eq!(together.to_map(), one_by_one.to_map());
        assert!(together.to_map()["device"] >= 1 && together.to_map()["file"] >= 1);
        // SAFETY: closing fds we opened.
        unsafe {
            libc::close(raw);
            libc::close(nl);
            libc::close(pipe[0]);
            libc::close(pipe[1]);
        }
    }
}
