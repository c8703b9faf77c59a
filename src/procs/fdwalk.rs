//! Walking `/proc/PID/fd`: the one expensive read behind socket owners and fd kinds.
//!
//! Uses `openat`/`readdir`/`readlinkat` on the directory's own descriptor so each link costs
//! one syscall with no path building; processes that vanish or deny access are reported as
//! such, never as errors of the whole scan.

use std::ffi::{CStr, CString};
use std::io;

/// Why a process's fd directory could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// The process exited (or never existed).
    Gone,
    /// Another user's process without root/CAP_SYS_PTRACE, or a kernel thread that denies it.
    Denied,
}

/// All numeric entries of `/proc` (`root` is `/proc` except in fixture tests).
pub fn list_pids(root: &str) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// Calls `each(fd, link_target)` for every open fd of `pid`.
pub fn for_each_fd_link(
    root: &str,
    pid: u32,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    walk_links(root, pid, false, each)
}

/// Like [`for_each_fd_link`], but a link that cannot be read for lack of permission makes the
/// whole process [`WalkError::Denied`]: some processes (PID 1 under some sandboxes) list their
/// fds even to root but refuse every `readlink`, and a count of kinds must not read as zero.
pub fn for_each_fd_link_checked(
    root: &str,
    pid: u32,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    walk_links(root, pid, true, each)
}

fn walk_links(
    root: &str,
    pid: u32,
    strict: bool,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    let mut dir = FdDir::open(root, pid)?;
    let dfd = dir.fd;
    let mut target = [0u8; 512];
    // End of directory, or the process exited mid-walk (readdir fails with ENOENT): either
    // way keep what was read.
    while let Some(name) = dir.next_name() {
        let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // SAFETY: `dfd` is the open directory, `name` a NUL-terminated entry of it, and
        // the buffer's length is passed along with it.
        let n = unsafe {
            libc::readlinkat(dfd, name.as_ptr(), target.as_mut_ptr().cast(), target.len())
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if strict && classify(e) == WalkError::Denied {
                return Err(WalkError::Denied);
            }
            // The fd was closed between readdir and readlink: skip it.
            continue;
        }
        each(fd, &target[..n as usize]);
    }
    Ok(())
}

/// Counts the open fds of `pid` by reading its fd directory's entries (no readlink): the
/// fallback where `stat` cannot give the count.
pub fn count_fd_entries(root: &str, pid: u32) -> Result<u64, WalkError> {
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

/// An open `/proc/PID/fd` directory, read with readdir on its own descriptor (so links are
/// read relative to it with no path building); closed on drop.
struct FdDir {
    dir: *mut libc::DIR,
    fd: libc::c_int,
}

impl FdDir {
    fn open(root: &str, pid: u32) -> Result<FdDir, WalkError> {
        let path = CString::new(format!("{root}/{pid}/fd")).map_err(|_| WalkError::Gone)?;
        // SAFETY: a valid NUL-terminated path; the descriptor is owned by the DIR* below or
        // closed here on failure.
        unsafe {
            let fd = libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(classify(io::Error::last_os_error()));
            }
            let dir = libc::fdopendir(fd);
            if dir.is_null() {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(classify(e));
            }
            Ok(FdDir { dir, fd })
        }
    }

    /// The next entry's name, `None` at the end (or when the process vanished mid-walk).
    fn next_name(&mut self) -> Option<&CStr> {
        // SAFETY: `self.dir` is open until drop. The entry lives in the DIR's buffer until the
        // next readdir, which needs `&mut self` again, so the borrow cannot outlive it.
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
        // SAFETY: opened in `open`, closed exactly once (this also closes `fd`).
        unsafe {
            libc::closedir(self.dir);
        }
    }
}

/// Whether an error from a path under `/proc/PID` means "gone" or "denied".
pub fn classify_io(e: &io::Error) -> WalkError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => WalkError::Denied,
        _ => WalkError::Gone,
    }
}

fn classify(e: io::Error) -> WalkError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => WalkError::Denied,
        _ => WalkError::Gone,
    }
}

/// The inode in a `socket:[12345]` link target, if it is one.
pub fn socket_inode(target: &[u8]) -> Option<u32> {
    let rest = target.strip_prefix(b"socket:[")?;
    let digits = rest.strip_suffix(b"]")?;
    let mut v: u32 = 0;
    if digits.is_empty() {
        return None;
    }
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u32)?;
    }
    Some(v)
}

/// A process's short name from `/proc/PID/comm`, without the trailing newline.
pub fn read_comm(root: &str, pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("{root}/{pid}/comm")).ok()?;
    let raw = raw.strip_suffix(b"\n").unwrap_or(&raw);
    Some(String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_inode_parses_only_socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[99999999999]"), None);
        assert_eq!(socket_inode(b"pipe:[123]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[12a]"), None);
    }

    #[test]
    fn walks_our_own_fds() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let me = std::process::id();
        let mut found = false;
        for_each_fd_link("/proc", me, &mut |_, t| {
            if t == b"/proc/self/status" || t.ends_with(b"/status") {
                found = true;
            }
        })
        .unwrap();
        drop(f);
        assert!(found);
        assert!(list_pids("/proc").unwrap().contains(&me));
        assert!(read_comm("/proc", me).is_some());
    }

    #[test]
    fn missing_process_is_gone() {
        assert_eq!(
            for_each_fd_link("/proc", u32::MAX - 1, &mut |_, _| {}),
            Err(WalkError::Gone)
        );
    }
}
