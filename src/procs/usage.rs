//! fd counts and RLIMIT_NOFILE for every process, at one `stat` and one small read each.
//!
//! This is the cheap pass behind `fds` and `doctor`: the fd links themselves are never read
//! here (`fds --kinds` reads them for the rows it shows), so it stays fast on a host with a million fds. On
//! Linux ≥ 6.2 `stat(/proc/PID/fd)` reports the number of open fds in `st_size`; where it
//! reads 0 (older kernels, or a tree that is not procfs, as in fixture tests) the entries are
//! counted instead. Limits come from `prlimit(2)` where permitted, else from
//! `/proc/PID/limits` parsed by the `procfs` crate.

use std::io;

use procfs::process::{LimitValue, Limits};
use procfs::FromBufRead;

use super::fdwalk::{classify_io, count_fd_entries, list_pids, WalkError};
use super::model::{FdUsage, SystemFds};
use super::procfile::{comm, read_small};

use crate::host::Host;

/// Which processes to count.
#[derive(Debug, Clone, Default)]
pub struct ProcSelect {
    /// Only these pids (all processes when empty).
    pub pids: Vec<u32>,
    /// Only processes whose name (`comm`) contains this substring.
    pub name: Option<String>,
    /// Only processes whose `/proc/PID/ns/net` has this inode (a network namespace).
    pub netns_inode: Option<u64>,
}

/// Result of one pass over /proc.
#[derive(Debug, Clone, Default)]
pub struct ProcScan {
    pub processes: Vec<FdUsage>,
    /// Processes whose fd count (or namespace) could not be read: permission.
    pub unreadable: usize,
}

/// One stat of /proc/PID/fd (st_size = open fds on Linux ≥ 6.2; fall back to counting entries
/// when it reads 0) plus RLIMIT_NOFILE from /proc/PID/limits, for every selected process.
/// Vanished processes are skipped; unreadable ones counted in `unreadable` (and listed with fds
/// None). `root` is `host::PROC` except in fixture tests.
pub fn scan_counts(host: &dyn Host, root: &str, select: &ProcSelect) -> io::Result<ProcScan> {
    scan(host, root, select, true)
}

/// [`scan_counts`], optionally without reading names: `fds` reads the names of the rows it
/// shows only, which saves one open/read/close per process on a big host.
pub fn scan(host: &dyn Host, root: &str, select: &ProcSelect, names: bool) -> io::Result<ProcScan> {
    let pids = if select.pids.is_empty() {
        list_pids(host, root)?
    } else {
        // `--pid 5 --pid 5` is one process, one row.
        let mut p = select.pids.clone();
        p.sort_unstable();
        p.dedup();
        p
    };
    let rule = stat_size_is_count(host, root);
    let mut scan = ProcScan::default();
    for pid in pids {
        match count_one(host, root, pid, select, names, rule) {
            Counted::Row(u) => {
                if u.fds.is_none() {
                    scan.unreadable += 1;
                }
                scan.processes.push(u);
            }
            Counted::Unreadable => scan.unreadable += 1,
            Counted::Skip => {}
        }
    }
    Ok(scan)
}

enum Counted {
    Row(FdUsage),
    /// Could not even tell whether the process is selected.
    Unreadable,
    /// Gone, or not selected.
    Skip,
}

fn count_one(
    host: &dyn Host,
    root: &str,
    pid: u32,
    select: &ProcSelect,
    names: bool,
    rule: SizeRule,
) -> Counted {
    if let Some(want) = select.netns_inode {
        match host.stat(&format!("{root}/{pid}/ns/net")) {
            Ok(m) if m.ino == want => {}
            Ok(_) => return Counted::Skip,
            Err(e) => {
                return match classify_io(&e) {
                    WalkError::Denied => Counted::Unreadable,
                    WalkError::Gone => Counted::Skip,
                }
            }
        }
    }
    let mut name = None;
    if let Some(sub) = &select.name {
        let Ok(n) = comm(host, root, pid) else {
            return Counted::Skip;
        };
        if !n.contains(sub.as_str()) {
            return Counted::Skip;
        }
        name = Some(n);
    }
    let fds = match count_fds(host, root, pid, rule) {
        Ok(n) => Some(n),
        Err(WalkError::Denied) => None,
        Err(WalkError::Gone) => return Counted::Skip,
    };
    let (soft_limit, hard_limit) = match read_nofile(host, root, pid) {
        Ok(l) => l,
        Err(WalkError::Gone) => return Counted::Skip,
        Err(WalkError::Denied) => (None, None),
    };
    if names && name.is_none() {
        match comm(host, root, pid) {
            Ok(n) => name = Some(n),
            Err(_) => return Counted::Skip,
        }
    }
    Counted::Row(FdUsage {
        pid,
        name: name.unwrap_or_default(),
        fds,
        soft_limit,
        hard_limit,
        sockets: None,
        kinds: None,
    })
}

/// How far the `stat` size of `ROOT/PID/fd` can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    /// Not procfs (a fixture tree): the size is bytes; always count the entries.
    Never,
    /// procfs before Linux 6.2: a non-zero size is a count, 0 means "not said".
    NonZero,
    /// Linux ≥ 6.2: the size is the count; a 0 is still confirmed by a walk, but when that walk
    /// is refused (a kernel thread's fd dir, to a non-root user) the 0 stands.
    Always,
}

/// The rule for `root`: procfs is recognised by its magic, the kernel by `uname`.
pub fn stat_size_is_count(host: &dyn Host, root: &str) -> SizeRule {
    if !host.is_procfs(root) {
        return SizeRule::Never;
    }
    match host.kernel_release() {
        Some(release) if kernel_at_least(&release, 6, 2) => SizeRule::Always,
        _ => SizeRule::NonZero,
    }
}

/// Whether a `uname -r` string ("6.18.44-fc-v657") is at least `major.minor`.
pub fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Open fds of one process: the `stat` size when it is a count, else the entries.
pub fn count_fds(host: &dyn Host, root: &str, pid: u32, rule: SizeRule) -> Result<u64, WalkError> {
    let size = host
        .stat(&format!("{root}/{pid}/fd"))
        .map_err(|e| classify_io(&e))?
        .size;
    pick_count(size, rule, || count_fd_entries(host, root, pid))
}

/// The rule applied: a non-zero size is the count where sizes are counts; a 0 (or a tree
/// whose sizes are bytes) is checked by walking the entries.
pub fn pick_count(
    stat_size: u64,
    rule: SizeRule,
    walk: impl FnOnce() -> Result<u64, WalkError>,
) -> Result<u64, WalkError> {
    match rule {
        SizeRule::Never => walk(),
        _ if stat_size > 0 => Ok(stat_size),
        SizeRule::Always => match walk() {
            Err(WalkError::Denied) => Ok(0),
            other => other,
        },
        SizeRule::NonZero => walk(),
    }
}

/// The `stat` size of `ROOT/PID/fd` where it is a count of fds (`None` on a fixture tree,
/// where it is bytes, or where it reads 0).
pub fn fd_dir_size(host: &dyn Host, root: &str, pid: u32, rule: SizeRule) -> Option<u64> {
    if rule == SizeRule::Never {
        return None;
    }
    let size = host.stat(&format!("{root}/{pid}/fd")).ok()?.size;
    (size > 0).then_some(size)
}

/// Fd slots a process has reserved but not filled: the `stat` count also holds the slot that
/// a blocked `accept4` (or any call between allocating an fd and installing the file) has
/// taken, which no `ls` or readlink shows but which counts against RLIMIT_NOFILE. The count
/// is taken before and after the walk that listed `listed` fds, and the smaller one used, so a
/// process opening or closing fds meanwhile does not look like it reserved some.
pub fn reserved_slots(before: Option<u64>, after: Option<u64>, listed: u64) -> u64 {
    match (before, after) {
        (Some(b), Some(a)) => b.min(a).saturating_sub(listed),
        _ => 0,
    }
}

/// RLIMIT_NOFILE (soft, hard); `None` = unlimited. On the live /proc this is one `prlimit`
/// call (no text to format or parse); where that is refused (another user's process without
/// CAP_SYS_RESOURCE) or `root` is a fake tree, `/proc/PID/limits` is read and parsed.
pub fn read_nofile(
    host: &dyn Host,
    root: &str,
    pid: u32,
) -> Result<(Option<u64>, Option<u64>), WalkError> {
    if root == crate::host::PROC {
        match host.nofile(pid) {
            Ok(l) => return Ok(l),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(WalkError::Gone),
            Err(_) => {}
        }
    }
    let mut buf = [0u8; 4096];
    let n =
        read_small(host, &format!("{root}/{pid}/limits"), &mut buf).map_err(|e| classify_io(&e))?;
    // A limits file that does not parse is treated like a process that went away mid-read.
    parse_nofile(&buf[..n]).ok_or(WalkError::Gone)
}

/// Parses the "Max open files" line of a limits file (with the `procfs` crate).
pub fn parse_nofile(raw: &[u8]) -> Option<(Option<u64>, Option<u64>)> {
    // procfs indexes from the end of each line and would underflow on a short one (a debug
    // build panics): only well-formed files reach it.
    let text = std::str::from_utf8(raw).ok()?;
    if text.lines().any(|l| l.split_ascii_whitespace().count() < 3) {
        return None;
    }
    let limits = Limits::from_buf_read(raw).ok()?;
    let v = |l: LimitValue| match l {
        LimitValue::Unlimited => None,
        LimitValue::Value(n) => Some(n),
    };
    Some((
        v(limits.max_open_files.soft_limit),
        v(limits.max_open_files.hard_limit),
    ))
}

/// /proc/sys/fs/file-nr, file-max, nr_open under `root` (`host::PROC` live).
pub fn read_system(host: &dyn Host, root: &str) -> io::Result<SystemFds> {
    let text = |name: &str| {
        host.read_file(&format!("{root}/sys/fs/{name}"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let file_nr = text("file-nr")?;
    let nr_open = text("nr_open").ok();
    parse_system(&file_nr, nr_open.as_deref()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{root}/sys/fs/file-nr does not hold three numbers: {file_nr:?}"),
        )
    })
}

/// `file-nr` is "allocated free max"; `max` is fs.file-max.
pub fn parse_system(file_nr: &str, nr_open: Option<&str>) -> Option<SystemFds> {
    let mut it = file_nr.split_ascii_whitespace().map(|f| f.parse::<u64>());
    let (Some(Ok(allocated)), Some(Ok(free)), Some(Ok(max)), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(SystemFds {
        allocated,
        free,
        max,
        nr_open: nr_open.and_then(|s| s.trim().parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A limits file as Linux 6.x writes it, with a soft limit of 256 and no hard limit.
    const LIMITS: &str = include_str!("../../fixtures/proc/limits-256-unlimited");

    #[test]
    fn parses_nofile_with_unlimited() {
        assert_eq!(parse_nofile(LIMITS.as_bytes()), Some((Some(256), None)));
        assert_eq!(parse_nofile(b"garbage"), None);
        assert_eq!(parse_nofile(b""), None);
        assert_eq!(parse_nofile(b"Max open files\n\n"), None);
        // Every other line intact but "Max open files" missing.
        let without: String = LIMITS
            .lines()
            .filter(|l| !l.starts_with("Max open files"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse_nofile(without.as_bytes()), None);
    }

    #[test]
    fn parses_file_nr() {
        assert_eq!(
            parse_system("413\t0\t2466177\n", Some("1048576\n")),
            Some(SystemFds {
                allocated: 413,
                free: 0,
                max: 2466177,
                nr_open: Some(1048576)
            })
        );
        assert_eq!(parse_system("1 2\n", None), None);
        assert_eq!(parse_system("1 2 3 4\n", None), None);
        assert_eq!(parse_system("1 x 3\n", None).map(|s| s.max), None);
    }

    #[test]
    fn zero_stat_size_falls_back_to_the_walk() {
        use SizeRule::*;
        assert_eq!(pick_count(7, Always, || panic!("walked")), Ok(7));
        assert_eq!(pick_count(7, NonZero, || panic!("walked")), Ok(7));
        assert_eq!(pick_count(0, NonZero, || Ok(3)), Ok(3));
        assert_eq!(pick_count(0, Always, || Ok(0)), Ok(0));
        // A fixture tree: 4096 is bytes, not fds.
        assert_eq!(pick_count(4096, Never, || Ok(4)), Ok(4));
        assert_eq!(
            pick_count(0, NonZero, || Err(WalkError::Denied)),
            Err(WalkError::Denied)
        );
        // ≥ 6.2: a kernel thread's 0 stands even when its fd dir refuses a non-root walk.
        assert_eq!(pick_count(0, Always, || Err(WalkError::Denied)), Ok(0));
        assert_eq!(
            pick_count(0, Always, || Err(WalkError::Gone)),
            Err(WalkError::Gone)
        );
    }

    #[test]
    fn reserved_is_what_stat_counts_beyond_the_listed_fds() {
        // A server blocked in accept(): 7 counted, 6 listed.
        assert_eq!(reserved_slots(Some(7), Some(7), 6), 1);
        // Opening fds during the walk: the walk saw more than the first stat.
        assert_eq!(reserved_slots(Some(7), Some(9), 8), 0);
        // Closing fds during the walk: the second stat saw fewer.
        assert_eq!(reserved_slots(Some(9), Some(6), 6), 0);
        // A fixture tree or an old kernel: no count to compare.
        assert_eq!(reserved_slots(None, None, 6), 0);
        assert_eq!(reserved_slots(Some(7), None, 6), 0);
    }

    #[test]
    fn kernel_versions_compare() {
        assert!(kernel_at_least("6.18.44-fc-v657", 6, 2));
        assert!(kernel_at_least("6.2.0", 6, 2));
        assert!(!kernel_at_least("6.1.0-13-amd64", 6, 2));
        assert!(!kernel_at_least("5.15.0", 6, 2));
        assert!(kernel_at_least("7.0-rc1", 6, 2));
        assert!(!kernel_at_least("garbage", 6, 2));
    }

    #[test]
    fn counts_our_own_fds_and_limit() {
        let me = std::process::id();
        assert_ne!(
            stat_size_is_count(&crate::host::LiveHost, crate::host::PROC),
            SizeRule::Never
        );
        assert_eq!(
            stat_size_is_count(&crate::host::LiveHost, "/"),
            SizeRule::Never
        );
        let files: Vec<_> = (0..5)
            .map(|_| std::fs::File::open(format!("{}/self/status", crate::host::PROC)).unwrap())
            .collect();
        let sel = ProcSelect {
            pids: vec![me, me],
            ..Default::default()
        };
        let scan = scan_counts(&crate::host::LiveHost, crate::host::PROC, &sel).unwrap();
        assert_eq!(scan.processes.len(), 1);
        let u = &scan.processes[0];
        let walked = count_fd_entries(&crate::host::LiveHost, crate::host::PROC, me).unwrap();
        // Threads of the test harness may open/close fds between the two reads, but our five
        // files are there in both.
        assert!(u.fds.unwrap() >= 5 && walked >= 5, "{u:?} {walked}");
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: getrlimit fills a struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let as_opt = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
        assert_eq!(u.soft_limit, as_opt(lim.rlim_cur));
        assert_eq!(u.hard_limit, as_opt(lim.rlim_max));
        assert_eq!(
            u.name,
            comm(&crate::host::LiveHost, crate::host::PROC, me).unwrap()
        );
        // The limits file says the same as prlimit.
        let mut buf = [0u8; 4096];
        let n = read_small(
            &crate::host::LiveHost,
            &format!("{}/{me}/limits", crate::host::PROC),
            &mut buf,
        )
        .unwrap();
        assert_eq!(parse_nofile(&buf[..n]), Some((u.soft_limit, u.hard_limit)));
        drop(files);
    }

    #[test]
    fn vanished_pid_is_skipped_and_netns_selects() {
        let sel = ProcSelect {
            pids: vec![u32::MAX - 1],
            ..Default::default()
        };
        let scan = scan_counts(&crate::host::LiveHost, crate::host::PROC, &sel).unwrap();
        assert!(scan.processes.is_empty());
        assert_eq!(scan.unreadable, 0);

        let me = std::process::id();
        let ino = std::fs::metadata(format!("{}/self/ns/net", crate::host::PROC))
            .unwrap()
            .ino();
        let mine = ProcSelect {
            netns_inode: Some(ino),
            ..Default::default()
        };
        let scan = scan_counts(&crate::host::LiveHost, crate::host::PROC, &mine).unwrap();
        assert!(scan.processes.iter().any(|p| p.pid == me));
        let none = ProcSelect {
            netns_inode: Some(1),
            ..Default::default()
        };
        assert!(
            scan_counts(&crate::host::LiveHost, crate::host::PROC, &none)
                .unwrap()
                .processes
                .is_empty()
        );
    }

    #[test]
    fn reads_the_live_system_table() {
        let s = read_system(&crate::host::LiveHost, crate::host::PROC).unwrap();
        assert!(s.max > 0 && s.allocated > 0 && s.nr_open.is_some());
    }
}
