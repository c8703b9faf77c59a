//! Shared test machinery: private network namespaces, the built binary, child processes.
//!
//! Every live test builds its own namespace (named `ssc-<pid>-<n>`), so tests run in parallel
//! without seeing each other's sockets, and removes it on drop.

#![allow(dead_code)]

pub mod child;

use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Live tests need root (namespaces, setns). Each is marked
/// `#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]`, so that
/// `cargo test` without root reports it as ignored (skipped, with the reason, and counted at
/// the end) instead of passing it; `tests/cli.rs` checks every live test carries the mark.
/// They run
/// only when asked for (`--include-ignored`, as `scripts/test` does); asked for without root,
/// they fail loudly: a live test never passes without having run.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    panic!("{test}: needs root (network namespaces, setns); run `sudo bash scripts/test`");
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists for the life of this value, with `lo` up.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "ssc-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        run_ok("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Path of the namespace file, for `--netns PATH`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Sets a per-namespace sysctl, e.g. `net.ipv4.tcp_tw_reuse`.
    pub fn sysctl(&self, key: &str, value: &str) {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.name,
                "sysctl",
                "-qw",
                &format!("{key}={value}"),
            ],
        );
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name, cmd];
        all.extend_from_slice(args);
        Command::new("ip")
            .args(&all)
            .output()
            .expect("run ip netns exec")
    }

    /// Runs `f` on a fresh thread that has entered this namespace, so sockets `f` creates live
    /// here. The fds belong to the whole process and stay usable from any thread.
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&self.path());
                f()
            })
            .join()
            .expect("thread inside namespace panicked")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: plain syscall on an fd we hold.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Runs a command and panics with its stderr if it fails.
pub fn run_ok(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The sockscope binary under test.
pub fn sockscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
}

/// Runs sockscope with `args` and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = sockscope().args(args).output().expect("run sockscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs sockscope with `args` (which should include `--json`), expects exit 0, parses stdout.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "sockscope {args:?} exited {code}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
}

/// A new TCP socket (close-on-exec, so child processes never inherit it) for `addr`'s family.
pub fn tcp_socket(addr: &std::net::SocketAddr) -> std::os::fd::RawFd {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket() has no memory preconditions.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    fd
}

/// `addr` as the C sockaddr that bind()/connect() take, with its length.
pub fn sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as u32)
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

/// Sets SO_RCVBUF (the kernel doubles it) on a socket the test owns.
pub fn set_rcvbuf(sock: &impl AsRawFd, bytes: libc::c_int) {
    // SAFETY: setsockopt on a live socket, with a valid int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
}

/// `program` run as nobody (uid/gid 65534, no groups) with no capabilities, through setpriv
/// (util-linux): the unprivileged user of the permission tests. Add its arguments.
pub fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        program,
    ]);
    c
}

/// A running `sockscope … --watch` writing JSON lines into a pipe: its records as they come
/// (read on a thread, so a test waits with a bound), and the process, to signal and reap.
pub struct Watch {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Watch {
    pub fn start(args: &[&str]) -> Watch {
        use std::io::BufRead;
        let mut child = sockscope()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to the child this test started, by its pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// SIGTERM ends the watch with exit 0 (its report is complete).
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}
