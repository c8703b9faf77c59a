//! `Host`: the only door to the outside world the collectors use — procfs/sysfs files, fd
//! links, `prlimit`, the sock_diag dumps, entering a network namespace, and the clock.
//!
//! - [`LiveHost`] does it for real (the only place that spells the proc root);
//! - [`RecordingHost`] wraps it and keeps every answer (`sockscope snapshot`);
//! - [`SnapshotHost`] replays a recorded snapshot (`--from FILE`).
//!
//! A path read twice answers with the recorded readings in order (doctor's counters at both
//! ends of its interval), then repeats the last. sock_diag dumps are recorded unfiltered (every
//! state, with `tcp_info` and memory) per (namespace, protocol, family); a replaying host says
//! so ([`Host::filters_in_user_space`]) and the socket collector applies the state mask, the
//! filter and the extras asked for in user space.
//!
//! How it is reached: `main` builds the host once (the live one, or the snapshot `--from`
//! opened) and passes it to `commands::dispatch`; `snapshot` passes its recording to the
//! commands it records. Every collector takes `host: &dyn Host` as its first parameter and
//! hands it down; there is no process-wide host, and only `main` (and this module) names
//! [`LiveHost`], so a collector cannot bypass a recording or a replay. The host is `'static`
//! where a command gives it to a thread of its own (capture, doctor's probe, the exporter).

pub mod archive;
pub mod live;
pub mod record;
pub mod replay;
pub mod tape;

use std::io;
use std::time::Duration;

pub use live::{LiveHost, PROC};
pub use record::RecordingHost;
pub use replay::SnapshotHost;

use crate::netns::{NetnsError, NetnsSpec};
use crate::sockets::diag::DiagError;

/// What a `stat` (following links) says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub size: u64,
    pub ino: u64,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Socket,
    Fifo,
    Char,
    Block,
}

/// One sock_diag dump: what it is (for keying a recording) and the request to send.
#[derive(Debug, Clone)]
pub struct DiagAsk<'a> {
    /// "tcp", "udp" or "unix".
    pub proto: &'static str,
    /// 4, 6, or 0 for UNIX.
    pub family: u8,
    /// The request as the caller wants it (states, extras, bytecode).
    pub packet: &'a [u8],
    /// Its sequence number.
    pub seq: u32,
    /// The same dump unfiltered (every state, every extra, no bytecode): what a recording
    /// keeps, so any later question can be answered from it.
    pub full: &'a [u8],
}

/// Called with each received datagram and the sequence number its messages carry; returns
/// true once the dump is complete (NLMSG_DONE or an error was seen).
pub type BatchFn<'a> = dyn FnMut(&[u8], u32) -> Result<bool, DiagError> + 'a;

/// Called for each fd link of a process: the fd and its target, or the errno readlink gave.
pub type LinkFn<'a> = dyn FnMut(u32, Result<&[u8], i32>) + 'a;

pub trait Host: Send + Sync {
    /// A whole (small) file; procfs files report size 0, so this reads to EOF.
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Reads at most `buf.len()` bytes of a small file in as few reads as possible.
    fn read_small(&self, path: &str, buf: &mut [u8]) -> io::Result<usize>;
    /// `stat` following links.
    fn stat(&self, path: &str) -> io::Result<Meta>;
    /// `stat` (following the link) of some fds of one process: `ROOT/PID/fd/FD` for each of
    /// `fds`, answered in order. The live host opens the fd directory once and stats each
    /// entry in it, a fifth cheaper than walking the whole path each time (`fds --kinds`
    /// stats every open file on the host); recordings and replays keep them as the paths'
    /// `stat`s.
    fn stat_fds(
        &self,
        root: &str,
        pid: u32,
        fds: &[u32],
        each: &mut dyn FnMut(u32, io::Result<Meta>),
    ) {
        for &fd in fds {
            each(fd, self.stat(&format!("{root}/{pid}/fd/{fd}")));
        }
    }
    /// The inode of the namespace a `PROC/PID/ns/*` link (or a bind-mounted nsfs file) is.
    /// A recording or a replay answers it as the `stat` it is; the live host reads the link.
    fn ns_inode(&self, path: &str) -> io::Result<u64> {
        self.stat(path).map(|m| m.ino)
    }
    /// `lstat`: does the path exist at all.
    fn exists(&self, path: &str) -> io::Result<()>;
    /// The entry names of a directory (no `.` or `..`), in no particular order.
    fn list_dir(&self, path: &str) -> io::Result<Vec<Vec<u8>>>;
    /// Every numeric entry of `ROOT/PID/fd` with its link target. `Err(errno)` when the
    /// directory cannot be opened.
    fn fd_links(&self, root: &str, pid: u32, each: &mut LinkFn) -> Result<(), i32>;
    /// The number of numeric entries of `ROOT/PID/fd`.
    fn count_fd_entries(&self, root: &str, pid: u32) -> Result<u64, i32>;
    /// RLIMIT_NOFILE (soft, hard) of a process by `prlimit`; `None` = unlimited.
    fn nofile(&self, pid: u32) -> io::Result<(Option<u64>, Option<u64>)>;
    /// The `system.sockprotoname` xattr through an fd link.
    fn sockprotoname(&self, path: &str) -> Option<Vec<u8>>;
    /// Whether `root` is a procfs mount.
    fn is_procfs(&self, root: &str) -> bool;
    /// Whether `path` is a mounted namespace file (nsfs): a file under /run/netns that is not
    /// one (left over from a crash) is a plain tmpfs file and must not be entered.
    fn is_nsfs(&self, path: &str) -> bool;
    /// `uname -r`.
    fn kernel_release(&self) -> Option<String>;
    /// Runs one sock_diag dump in the calling thread's network namespace.
    fn sock_diag(&self, ask: &DiagAsk, each: &mut BatchFn) -> Result<(), DiagError>;
    /// Sends one SOCK_DESTROY request in the calling thread's namespace and returns the
    /// kernel's answer: 0, or the positive errno it refused with. A snapshot cannot kill: only
    /// the live host overrides this refusal.
    fn sock_destroy(&self, _packet: &[u8], _seq: u32) -> io::Result<i32> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a snapshot cannot kill sockets",
        ))
    }
    /// True when dumps answer unfiltered and the caller must filter (recordings).
    fn filters_in_user_space(&self) -> bool {
        false
    }
    /// Moves the calling thread into a network namespace.
    fn enter_netns(&self, spec: &NetnsSpec) -> Result<(), NetnsError>;
    /// The pid of the observer (sockscope itself) on this host.
    fn self_pid(&self) -> u32;
    /// Monotonic time since the host was made.
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration);
}

/// A text file under the proc root (`thread-self/net/snmp`, `sys/net/ipv4/tcp_mem`), read
/// through the run's host so snapshots record and replay it.
pub fn proc_text(host: &dyn Host, rel: &str) -> io::Result<String> {
    let bytes = host.read_file(&format!("{PROC}/{rel}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An `io::Error` from the errno a recording kept.
pub fn errno_error(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// The errno of an error, EIO when it has none (a recording keeps only the number).
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Files outside `LiveHost` that still spell the proc root, owned by branches converting
    /// them to the host: at most this many times each (lower it when one is converted).
    const NOT_YET: [(&str, usize); 0] = [];

    /// The lines of a source file that are neither comments nor inside a `#[cfg(test)] mod`.
    fn code_lines(text: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            let t = line.trim();
            if t == "#[cfg(test)]"
                && lines
                    .peek()
                    .is_some_and(|(_, l)| l.trim_start().starts_with("mod "))
            {
                // Skip the module: until its braces balance again.
                let mut depth = 0i64;
                let mut opened = false;
                for (_, l) in lines.by_ref() {
                    depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                    opened |= l.contains('{');
                    if opened && depth <= 0 {
                        break;
                    }
                }
                continue;
            }
            if t.starts_with("//") {
                continue;
            }
            out.push((n + 1, line));
        }
        out
    }

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Every `.rs` file under `src/`, as (path from the crate root, text), in order.
    fn source_files() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        files.sort();
        assert!(files.len() > 20, "found the sources: {files:?}");
        files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                (rel, std::fs::read_to_string(f).unwrap())
            })
            .collect()
    }

    /// Issue 10: the proc root is spelled only in `LiveHost`; everything else asks the host
    /// (or takes `host::PROC`), so a snapshot sees every read.
    #[test]
    fn the_proc_root_is_spelled_only_in_the_live_host() {
        let needles = [concat!("\"", "/proc\""), concat!("\"", "/proc/")];
        let mut found = Vec::new();
        for (rel, text) in source_files() {
            if rel.starts_with("src/host/live") {
                continue;
            }
            let hits: Vec<String> = code_lines(&text)
                .into_iter()
                .filter(|(_, l)| needles.iter().any(|n| l.contains(n)))
                .map(|(n, l)| format!("{rel}:{n}: {}", l.trim()))
                .collect();
            let allowed = NOT_YET
                .iter()
                .find(|(f, _)| *f == rel)
                .map_or(0, |(_, n)| *n);
            if hits.len() > allowed {
                found.extend(hits);
            }
        }
        assert!(
            found.is_empty(),
            "spell the proc root as host::PROC (or read through the host passed in):\n{}",
            found.join("\n")
        );
    }

    /// Lines of `text` (outside comments and test modules) that name `LiveHost`: there is
    /// nothing to do with it but make one.
    fn live_host_named(text: &str) -> Vec<(usize, &str)> {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        code_lines(text)
            .into_iter()
            .filter(|(_, l)| {
                l.match_indices("LiveHost")
                    .any(|(i, m)| !l[..i].ends_with(word) && !l[i + m.len()..].starts_with(word))
            })
            .collect()
    }

    /// Issue 10: collectors take the host they are given. Only `main` picks the live one
    /// (and this module wraps it); one made anywhere else would read the live system under
    /// a recording or a replay.
    #[test]
    fn only_main_makes_the_live_host() {
        let mut found = Vec::new();
        for (rel, text) in source_files() {
            if rel.starts_with("src/host/") || rel == "src/main.rs" {
                continue;
            }
            found.extend(
                live_host_named(&text)
                    .into_iter()
                    .map(|(n, l)| format!("{rel}:{n}: {}", l.trim())),
            );
        }
        assert!(
            found.is_empty(),
            "take `host: &dyn Host` from the caller instead of making the live host:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_live_host_is_seen_where_it_is_named() {
        let text = "use crate::host::LiveHost;\nfn a(h: &dyn Host) {}\nfn b() { a(&LiveHost) }\n\
                    fn c() { a(&crate::host::LiveHost); }\nstruct NotLiveHostAtAll;\n\
                    // a(&LiveHost)\n#[cfg(test)]\nmod tests {\n    fn d() { a(&LiveHost) }\n}\n";
        let lines: Vec<usize> = live_host_named(text).into_iter().map(|(n, _)| n).collect();
        assert_eq!(lines, [1, 3, 4]);
    }

    #[test]
    fn test_modules_and_comments_are_not_code() {
        let text = "fn a() {}\n// \"/proc\"\n#[cfg(test)]\nfn only_in_tests() {}\n\
                    #[cfg(test)]\nmod tests {\n    fn b() { let _ = \"/proc\"; }\n}\nfn c() {}\n";
        let lines: Vec<&str> = code_lines(text).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            [
                "fn a() {}",
                "#[cfg(test)]",
                "fn only_in_tests() {}",
                "fn c() {}"
            ]
        );
    }
}
