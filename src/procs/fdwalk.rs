//! Walking `/proc/PID/fd`: the one expensive read behind socket owners and fd kinds.
//!
//! Uses `openat`/`readdir`/`readlinkat` on the directory's own descriptor so each link costs
//! one syscall with no path building; processes that vanish or deny access are reported as
//! such, never as errors of the whole scan.

use std::io;

use crate::host::Host;

/// Why a process's fd directory could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// The process exited (or never existed).
    Gone,
    /// Another user's process without root/CAP_SYS_PTRACE, or a kernel thread that denies it.
    Denied,
}

/// All numeric entries of the proc root (`root` is the live one except in fixture tests).
pub fn list_pids(host: &dyn Host, root: &str) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = host
        .list_dir(root)?
        .iter()
        .filter_map(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Calls `each(fd, target)` for every fd link of `pid`; links that vanish or deny access
/// mid-walk are skipped.
pub fn for_each_fd_link(
    host: &dyn Host,
    root: &str,
    pid: u32,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    walk_links(host, root, pid, false, each)
}

/// Like [`for_each_fd_link`], but a link whose target is refused makes the whole process
/// `Denied` (readlink of `/proc/1/fd/*` is EACCES even for root, while the directory lists).
pub fn for_each_fd_link_checked(
    host: &dyn Host,
    root: &str,
    pid: u32,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    walk_links(host, root, pid, true, each)
}

fn walk_links(
    host: &dyn Host,
    root: &str,
    pid: u32,
    strict: bool,
    each: &mut dyn FnMut(u32, &[u8]),
) -> Result<(), WalkError> {
    let mut denied = false;
    host.fd_links(root, pid, &mut |fd, target| match target {
        Ok(t) if !denied => each(fd, t),
        Ok(_) => {}
        Err(errno) => denied |= strict && classify_errno(errno) == WalkError::Denied,
    })
    .map_err(classify_errno)?;
    if denied {
        return Err(WalkError::Denied);
    }
    Ok(())
}

/// Counts the numeric entries of `ROOT/PID/fd` (the fallback where `stat` says nothing).
pub fn count_fd_entries(host: &dyn Host, root: &str, pid: u32) -> Result<u64, WalkError> {
    host.count_fd_entries(root, pid).map_err(classify_errno)
}

/// Whether an error from a path under `/proc/PID` means "gone" or "denied".
pub fn classify_io(e: &io::Error) -> WalkError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => WalkError::Denied,
        _ => WalkError::Gone,
    }
}

fn classify_errno(errno: i32) -> WalkError {
    match errno {
        libc::EACCES | libc::EPERM => WalkError::Denied,
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
pub fn read_comm(host: &dyn Host, root: &str, pid: u32) -> Option<String> {
    let raw = host.read_file(&format!("{root}/{pid}/comm")).ok()?;
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
        let f = std::fs::File::open(format!("{}/self/status", crate::host::PROC)).unwrap();
        let me = std::process::id();
        let mut found = false;
        for_each_fd_link(
            &crate::host::LiveHost,
            crate::host::PROC,
            me,
            &mut |_, t| {
                if t == format!("{}/self/status", crate::host::PROC).as_bytes()
                    || t.ends_with(b"/status")
                {
                    found = true;
                }
            },
        )
        .unwrap();
        drop(f);
        assert!(found);
        assert!(list_pids(&crate::host::LiveHost, crate::host::PROC)
            .unwrap()
            .contains(&me));
        assert!(read_comm(&crate::host::LiveHost, crate::host::PROC, me).is_some());
    }

    #[test]
    fn missing_process_is_gone() {
        assert_eq!(
            for_each_fd_link(
                &crate::host::LiveHost,
                crate::host::PROC,
                u32::MAX - 1,
                &mut |_, _| {}
            ),
            Err(WalkError::Gone)
        );
    }
}
