//! Child processes for tests that need sockets or fds owned by *another* process, with a known
//! pid and name. The test binary re-runs itself filtered to the `child_main` test with a role
//! in the environment; the child sets itself up, prints `ready`, and holds everything open
//! until its stdin closes (when the [`Child`] guard drops), so nothing outlives the test.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

pub const ROLE_ENV: &str = "SOCKSCOPE_TEST_ROLE";
pub const NETNS_ENV: &str = "SOCKSCOPE_TEST_NETNS";

pub struct Child {
    pub pid: u32,
    proc: std::process::Child,
    /// Whatever the child printed after `ready` on the same line.
    pub info: String,
}

/// Starts a child in role `role` with `args`, optionally inside the namespace file `netns`,
/// and waits (bounded) until it says it is ready.
pub fn spawn(role: &str, args: &[String], netns: Option<&str>) -> Child {
    spawn_with(role, args, netns, false)
}

/// Like [`spawn`], but the whole process starts inside the namespace (via nsenter): setns in
/// the child moves only the thread libtest runs it on, while `/proc/PID/ns/net` (what
/// per-namespace process selection reads) follows the main thread.
pub fn spawn_whole(role: &str, args: &[String], netns: &str) -> Child {
    spawn_with(role, args, Some(netns), true)
}

fn spawn_with(role: &str, args: &[String], netns: Option<&str>, whole: bool) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match netns {
        Some(ns) if whole => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={ns}")).arg("--").arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    cmd.args([
        "--exact",
        "child_main",
        "--nocapture",
        "--test-threads",
        "1",
        "--quiet",
    ])
    .env(ROLE_ENV, format!("{role}\u{1f}{}", args.join("\u{1f}")))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(ns) = netns {
        cmd.env(NETNS_ENV, ns);
    }
    let mut proc = cmd.spawn().expect("spawn child");
    let pid = proc.id();
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    let mut line = String::new();
    // The child writes `ready` once set up; libtest may print a header line first.
    for _ in 0..20 {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = proc.kill();
            let _ = proc.wait();
            panic!("child {role} exited before it was ready");
        }
        if let Some(rest) = line.trim_end().strip_prefix("ready") {
            return Child {
                pid,
                proc,
                info: rest.trim().to_string(),
            };
        }
    }
    let _ = proc.kill();
    let _ = proc.wait();
    panic!("child {role} never said ready");
}

impl Child {
    /// Writes a command line to the child's stdin (for roles that act on request).
    pub fn send(&mut self, line: &str) {
        let stdin = self.proc.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.proc.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.proc.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// In the child: the role and its args, if this process is a child.
pub fn role() -> Option<(String, Vec<String>)> {
    let v = std::env::var(ROLE_ENV).ok()?;
    let mut parts = v.split('\u{1f}').map(str::to_string);
    let role = parts.next()?;
    Some((role, parts.filter(|s| !s.is_empty()).collect()))
}

/// In the child: enter the namespace if asked, name the process, say ready, then hold
/// everything until the parent closes stdin. Commands read from stdin go to `on_line`.
pub fn serve(name: &str, info: &str, mut on_line: impl FnMut(&str)) {
    if let Ok(ns) = std::env::var(NETNS_ENV) {
        super::enter(&ns);
    }
    set_name(name);
    println!("ready {info}");
    std::io::stdout().flush().unwrap();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line {
            Ok(l) => on_line(&l),
            Err(_) => break,
        }
    }
}

/// Enters the namespace named in the environment, if any (before creating sockets).
pub fn enter_netns() {
    if let Ok(ns) = std::env::var(NETNS_ENV) {
        super::enter(&ns);
    }
}

/// Sets the process name shown in /proc/PID/comm (the thread-group leader's name).
pub fn set_name(name: &str) {
    let _ = std::fs::write("/proc/self/comm", name);
}
