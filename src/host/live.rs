//! The live host: real files under `/proc` and `/sys`, real netlink, real `setns`, the real
//! clock. The one place that spells the proc root.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};

use super::{BatchFn, DiagAsk, FileKind, Host, LinkFn, Meta};
use crate::netns::{self, NetnsError, NetnsSpec};
use crate::sockets::diag::DiagError;

/// The proc root of the live host. Collectors take paths under it from here, never spelled.
pub const PROC: &str = "/proc";

pub struct LiveHost;

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

pub fn meta_of(m: &std::fs::Metadata) -> Meta {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_socket() {
        FileKind::Socket
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_char_device() {
        FileKind::Char
    } else if ft.is_block_device() {
        FileKind::Block
    } else {
        FileKind::File
    };
    Meta {
        size: m.len(),
        ino: m.ino(),
        kind,
    }
}

/// [`meta_of`] for a raw `stat`.
fn meta_of_stat(st: &libc::stat) -> Meta {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        libc::S_IFSOCK => FileKind::Socket,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFCHR => FileKind::Char,
        libc::S_IFBLK => FileKind::Block,
        _ => FileKind::File,
    };
    Meta {
        size: st.st_size as u64,
        ino: st.st_ino,
        kind,
    }
}

impl Host for LiveHost {
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_small(&self, path: &str, buf: &mut [u8]) -> io::Result<usize> {
        read_small(path, buf)
    }

    fn stat(&self, path: &str) -> io::Result<Meta> {
        std::fs::metadata(path).map(|m| meta_of(&m))
    }

    fn stat_fds(
        &self,
        root: &str,
        pid: u32,
        fds: &[u32],
        each: &mut dyn FnMut(u32, io::Result<Meta>),
    ) {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let dir = CString::new(format!("{root}/{pid}/fd")).unwrap_or_default();
        // SAFETY: a NUL-terminated path; the fd returned is owned below.
        let raw = unsafe {
            libc::open(
                dir.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            // The path answers with the errno a caller expects (the process exited: ENOENT).
            for &fd in fds {
                each(fd, self.stat(&format!("{root}/{pid}/fd/{fd}")));
            }
            return;
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let dir = unsafe { OwnedFd::from_raw_fd(raw) };
        for &fd in fds {
            let mut name = [0u8; 12];
            let mut digits = itoa::Buffer::new();
            let text = digits.format(fd).as_bytes();
            name[..text.len()].copy_from_slice(text);
            // SAFETY: all-zero is a valid `stat`; fstatat fills it.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a NUL-terminated name (the array's zeros), a buffer we own.
            let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr().cast(), &mut st, 0) };
            each(
                fd,
                if rc == 0 {
                    Ok(meta_of_stat(&st))
                } else {
                    Err(io::Error::last_os_error())
                },
            );
        }
    }

    /// The link's text (`net:[4026531840]`) instead of a `stat` through it: following a
    /// namespace link makes the kernel build and drop an nsfs dentry each time, about twice
    /// the cost (namespace discovery does this for every process on the node).
    fn ns_inode(&self, path: &str) -> io::Result<u64> {
        match std::fs::read_link(path) {
            Ok(target) => match ns_link_inode(target.as_os_str().as_encoded_bytes()) {
                Some(ino) => Ok(ino),
                None => self.stat(path).map(|m| m.ino),
            },
            // Not a link (a bind-mounted nsfs file): stat it.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.stat(path).map(|m| m.ino),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, path: &str) -> io::Result<()> {
        std::fs::symlink_metadata(path).map(|_| ())
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<Vec<u8>>> {
        use std::os::unix::ffi::OsStrExt;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let Ok(entry) = entry else { continue };
            names.push(entry.file_name().as_bytes().to_vec());
        }
        Ok(names)
    }

    fn fd_links(&self, root: &str, pid: u32, each: &mut LinkFn) -> Result<(), i32> {
        let mut dir = FdDir::open(root, pid)?;
        let dfd = dir.fd;
        let mut target = [0u8; 512];
        while let Some(name) = dir.next_name() {
            let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // SAFETY: readlinkat writes at most target.len() bytes into a buffer we own.
            let n = unsafe {
                libc::readlinkat(dfd, name.as_ptr(), target.as_mut_ptr().cast(), target.len())
            };
            if n < 0 {
                each(fd, Err(super::errno_of(&io::Error::last_os_error())));
                continue;
            }
            each(fd, Ok(&target[..n as usize]));
        }
        Ok(())
    }

    fn count_fd_entries(&self, root: &str, pid: u32) -> Result<u64, i32> {
        let mut dir = FdDir::open(root, pid)?;
        let mut n = 0;
        while let Some(name) = dir.next_name() {
            let name = name.to_bytes();
            if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                n += 1;
            }
        }
        Ok(n)
    }

    fn nofile(&self, pid: u32) -> io::Result<(Option<u64>, Option<u64>)> {
        // SAFETY: prlimit only reads the limit into a struct we own (new limit is NULL).
        let mut old: libc::rlimit = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::prlimit(
                pid as libc::pid_t,
                libc::RLIMIT_NOFILE,
                std::ptr::null(),
                &mut old,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let v = |x: libc::rlim_t| (x != libc::RLIM_INFINITY).then_some(x);
        Ok((v(old.rlim_cur), v(old.rlim_max)))
    }

    fn sockprotoname(&self, path: &str) -> Option<Vec<u8>> {
        let path = CString::new(path).ok()?;
        let mut buf = [0u8; 64];
        // SAFETY: getxattr writes at most buf.len() bytes into a buffer we own.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                c"system.sockprotoname".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        (n > 0).then(|| buf[..n as usize].to_vec())
    }

    fn is_procfs(&self, root: &str) -> bool {
        const PROC_SUPER_MAGIC: i64 = 0x9fa0;
        fs_magic(root) == Some(PROC_SUPER_MAGIC)
    }

    fn is_nsfs(&self, path: &str) -> bool {
        const NSFS_MAGIC: i64 = 0x6e73_6673;
        fs_magic(path) == Some(NSFS_MAGIC)
    }

    fn kernel_release(&self) -> Option<String> {
        // SAFETY: uname fills a plain struct we own.
        unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            if libc::uname(&mut u) != 0 {
                return None;
            }
            Some(
                CStr::from_ptr(u.release.as_ptr())
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    fn sock_diag(&self, ask: &DiagAsk, each: &mut BatchFn) -> Result<(), DiagError> {
        live_dump(ask.packet, ask.proto, ask.family, &mut |b| each(b, ask.seq))
    }

    fn sock_destroy(&self, packet: &[u8], seq: u32) -> io::Result<i32> {
        let mut answer = 0;
        let found =
            live_dump(
                packet,
                "sock_destroy",
                0,
                &mut |b| match crate::sockets::destroy::parse_ack(b, seq)? {
                    Some(errno) => {
                        answer = errno;
                        Ok(true)
                    }
                    None => Ok(false),
                },
            );
        match found {
            Ok(()) => Ok(answer),
            Err(DiagError::Open(e)) | Err(DiagError::Dump { source: e, .. }) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    fn enter_netns(&self, spec: &NetnsSpec) -> Result<(), NetnsError> {
        netns::setns(spec)
    }

    fn self_pid(&self) -> u32 {
        std::process::id()
    }

    fn now(&self) -> Duration {
        start().elapsed()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// The `statfs` type of the filesystem holding `path`.
fn fs_magic(path: &str) -> Option<i64> {
    let path = CString::new(path).ok()?;
    // SAFETY: statfs fills a plain struct we own; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        (libc::statfs(path.as_ptr(), &mut st) == 0).then_some(st.f_type as i64)
    }
}

/// Sends one sock_diag request on a fresh socket of the calling thread's namespace and hands
/// each datagram to `each` until it says the dump is complete.
pub fn live_dump(
    packet: &[u8],
    proto: &'static str,
    family: u8,
    each: &mut dyn FnMut(&[u8]) -> Result<bool, DiagError>,
) -> Result<(), DiagError> {
    let mut sock = NlSocket::new(NETLINK_SOCK_DIAG).map_err(DiagError::Open)?;
    sock.bind_auto().map_err(DiagError::Open)?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(DiagError::Open)?;
    // A large buffer lets the kernel pack more sockets into each recv(); best effort.
    let _ = sock.set_rx_buf_sz(1 << 20);
    let dump_err = |source: io::Error| DiagError::Dump {
        proto,
        family,
        source,
    };
    sock.send(packet, 0).map_err(dump_err)?;
    // The kernel sizes each dump batch by the reader's buffer (up to 32 KiB) and never splits
    // a message, so this always holds whole batches.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = loop {
            match sock.recv(&mut &mut buf[..], 0) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(dump_err(e)),
            }
        };
        if each(&buf[..n.min(buf.len())])? {
            return Ok(());
        }
    }
}

/// Reads a small file in as few `read`s as possible: procfs answers a whole small file in
/// one, so a read that fills less than half the buffer is taken as the end.
pub fn read_small(path: &str, buf: &mut [u8]) -> io::Result<usize> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain open/read/close on an fd we own, into a buffer we own.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut n = 0usize;
        while n < buf.len() {
            let r = libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n);
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                libc::close(fd);
                return Err(e);
            }
            if r == 0 {
                break;
            }
            n += r as usize;
            if n < buf.len() / 2 {
                break;
            }
        }
        libc::close(fd);
        Ok(n)
    }
}

/// An open `ROOT/PID/fd` directory read with readdir (no allocation per entry).
struct FdDir {
    dir: *mut libc::DIR,
    fd: libc::c_int,
}

impl FdDir {
    fn open(root: &str, pid: u32) -> Result<FdDir, i32> {
        let path = CString::new(format!("{root}/{pid}/fd")).map_err(|_| libc::ENOENT)?;
        // SAFETY: the fd is owned by the DIR after fdopendir, closed by closedir in Drop.
        unsafe {
            let fd = libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(super::errno_of(&io::Error::last_os_error()));
            }
            let dir = libc::fdopendir(fd);
            if dir.is_null() {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(super::errno_of(&e));
            }
            Ok(FdDir { dir, fd })
        }
    }

    fn next_name(&mut self) -> Option<&CStr> {
        // SAFETY: readdir returns a pointer into the DIR's buffer, valid until the next call,
        // which the borrow of self enforces.
        unsafe {
            let ent = libc::readdir(self.dir);
            if ent.is_null() {
                return None;
            }
            Some(CStr::from_ptr((*ent).d_name.as_ptr()))
        }
    }
}

impl Drop for FdDir {
    fn drop(&mut self) {
        // SAFETY: dir came from fdopendir and is closed once.
        unsafe {
            libc::closedir(self.dir);
        }
    }
}

/// The inode in a namespace link's text, `TYPE:[INODE]`.
fn ns_link_inode(target: &[u8]) -> Option<u64> {
    let open = target.iter().position(|&b| b == b'[')?;
    let digits = target.get(open + 1..target.len().checked_sub(1)?)?;
    if target.last() != Some(&b']') || digits.is_empty() {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod ns_link_tests {
    use super::*;

    #[test]
    fn namespace_link_text_gives_its_inode() {
        assert_eq!(ns_link_inode(b"net:[4026531840]"), Some(4026531840));
        assert_eq!(ns_link_inode(b"mnt:[4026531841]"), Some(4026531841));
        assert_eq!(ns_link_inode(b"net:[]"), None);
        assert_eq!(ns_link_inode(b"/run/netns/x"), None);
        assert_eq!(ns_link_inode(b"net:[12x]"), None);
    }

    #[test]
    fn the_live_answer_is_the_inode_stat_gives() {
        let path = format!("{PROC}/self/ns/net");
        let by_stat = LiveHost.stat(&path).unwrap().ino;
        assert_eq!(LiveHost.ns_inode(&path).unwrap(), by_stat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// One open of the fd directory answers as a stat of each fd's full path, errors included.
    #[test]
    fn fd_stats_in_one_directory_match_full_path_stats() {
        let me = std::process::id();
        let null = std::fs::File::open("/dev/null").unwrap();
        let dir = std::fs::File::open("/").unwrap();
        let fds = [null.as_raw_fd() as u32, dir.as_raw_fd() as u32, 999_999];
        let mut got = Vec::new();
        LiveHost.stat_fds(PROC, me, &fds, &mut |fd, m| {
            got.push((fd, m.map_err(|e| e.raw_os_error())))
        });
        let want: Vec<_> = fds
            .iter()
            .map(|&fd| {
                let m = LiveHost.stat(&format!("{PROC}/{me}/fd/{fd}"));
                (fd, m.map_err(|e| e.raw_os_error()))
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[0].1.map(|m| m.kind), Ok(FileKind::Char));
        assert_eq!(got[1].1.map(|m| m.kind), Ok(FileKind::Dir));
        assert_eq!(got[2].1, Err(Some(libc::ENOENT)));
        // A process that does not exist: every fd answers ENOENT, as its paths do.
        let mut gone = Vec::new();
        LiveHost.stat_fds(PROC, u32::MAX - 1, &[0, 1], &mut |_, m| {
            gone.push(m.map_err(|e| e.raw_os_error()))
        });
        assert_eq!(gone, [Err(Some(libc::ENOENT)), Err(Some(libc::ENOENT))]);
    }
}
