//! `fds` against child processes holding a known population of fds with known limits, and
//! against the fake /proc tree in fixtures/proc/hostile.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, child, run, run_json, Netns};

/// The kinds `--kinds` reports, in schema order.
const KINDS: [&str; 9] = [
    "tcp",
    "udp",
    "unix",
    "other_socket",
    "file",
    "pipe",
    "anon_inode",
    "device",
    "other",
];

/// A temp file the children open; removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("ssc-fds-{}-{tag}", std::process::id()));
        std::fs::write(&p, b"sockscope fds test\n").unwrap();
        TempFile(p)
    }
    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Args of the `fds:hold` role.
struct Hold {
    soft: u64,
    hard: u64,
    tcp_pairs: usize,
    udp: usize,
    unix_pairs: usize,
    files: usize,
    pipes: usize,
}

fn spawn_hold(name: &str, h: &Hold, file: &TempFile, ns: &Netns) -> (child::Child, u64) {
    let args: Vec<String> = [
        name.to_string(),
        h.soft.to_string(),
        h.hard.to_string(),
        h.tcp_pairs.to_string(),
        h.udp.to_string(),
        h.unix_pairs.to_string(),
        h.files.to_string(),
        h.pipes.to_string(),
        file.path(),
    ]
    .into();
    let c = child::spawn("fds:hold", &args, Some(&ns.path()));
    let baseline = c.info.parse().expect("child reports its baseline fd count");
    (c, baseline)
}

fn find(v: &Value, pid: u32) -> &Value {
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} missing from {v}"))
}

fn kind(p: &Value, k: &str) -> i64 {
    p["kinds"][k]
        .as_i64()
        .unwrap_or_else(|| panic!("no kind {k} in {p}"))
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn fds_counts_kinds_and_limits_are_exact() {
    if !support::require_root("fds_counts_kinds_and_limits_are_exact") {
        return;
    }
    let ns = Netns::new();
    let file = TempFile::new("exact");
    // The issue's population: 137 sockets (81 TCP = a listener and 40 connected pairs, 30 UDP,
    // 26 UNIX = 13 socketpairs) + 20 files + 6 pipe ends, soft limit 256.
    let (a, base_a) = spawn_hold(
        "ssc-fds-a",
        &Hold {
            soft: 256,
            hard: 4096,
            tcp_pairs: 40,
            udp: 30,
            unix_pairs: 13,
            files: 20,
            pipes: 3,
        },
        &file,
        &ns,
    );
    let (b, base_b) = spawn_hold(
        "ssc-fds-b",
        &Hold {
            soft: 100,
            hard: 200,
            tcp_pairs: 0,
            udp: 0,
            unix_pairs: 0,
            files: 50,
            pipes: 0,
        },
        &file,
        &ns,
    );
    // Spawned the same way, with nothing opened: its fds are the baseline every child has.
    let (idle, base_idle) = spawn_hold(
        "ssc-fds-idle",
        &Hold {
            soft: 256,
            hard: 4096,
            tcp_pairs: 0,
            udp: 0,
            unix_pairs: 0,
            files: 0,
            pipes: 0,
        },
        &file,
        &ns,
    );
    let pids = [a.pid, b.pid, idle.pid].map(|p| p.to_string());
    let mut args = vec!["fds", "--kinds", "--json"];
    for p in &pids {
        args.extend(["--pid", p.as_str()]);
    }
    let v = run_json(&args);
    let order: Vec<u64> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [a.pid, b.pid, idle.pid].map(u64::from), "{v}");
    assert_eq!(v["matched"], 3);
    assert_eq!(v["unreadable"], 0);

    let pa = find(&v, a.pid);
    let pb = find(&v, b.pid);
    let pi = find(&v, idle.pid);
    assert_eq!(pa["name"], "ssc-fds-a");
    assert_eq!(pa["fds"], base_a + 163);
    assert_eq!(pa["soft_limit"], 256);
    assert_eq!(pa["hard_limit"], 4096);
    assert_eq!(
        pa["percent_used"].as_f64().unwrap(),
        (base_a + 163) as f64 * 100.0 / 256.0
    );
    assert_eq!(pb["fds"], base_b + 50);
    assert_eq!(
        (pb["soft_limit"].as_u64(), pb["hard_limit"].as_u64()),
        (Some(100), Some(200))
    );
    assert_eq!(pi["fds"], base_idle);

    // Every fd has exactly one kind.
    for p in [pa, pb, pi] {
        let sum: i64 = KINDS.iter().map(|k| kind(p, k)).sum();
        assert_eq!(Some(sum as u64), p["fds"].as_u64(), "{p}");
        let socks: i64 = KINDS[..4].iter().map(|k| kind(p, k)).sum();
        assert_eq!(p["sockets"].as_i64(), Some(socks));
    }
    // Over the baseline, exactly the population each child opened.
    let want_a = [81, 30, 26, 0, 20, 6, 0, 0, 0];
    let want_b = [0, 0, 0, 0, 50, 0, 0, 0, 0];
    for (i, k) in KINDS.iter().enumerate() {
        assert_eq!(kind(pa, k) - kind(pi, k), want_a[i], "{k} of a: {pa}");
        assert_eq!(kind(pb, k) - kind(pi, k), want_b[i], "{k} of b: {pb}");
    }
    assert_eq!(
        pa["sockets"].as_i64().unwrap() - pi["sockets"].as_i64().unwrap(),
        137
    );

    // The table: same numbers, the % as rendered, names narrowed with --name.
    let (code, out, err) = run(&["fds", "--name", "ssc-fds-", "--pid", &pids[0]]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.contains("ssc-fds-a"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    let pct = sockscope::render::percent((base_a + 163) as f64 * 100.0 / 256.0);
    let fds_a = (base_a + 163).to_string();
    let socks_a = pa["sockets"].as_i64().unwrap().to_string();
    assert_eq!(
        row,
        [
            pids[0].as_str(),
            "ssc-fds-a",
            fds_a.as_str(),
            "256",
            "4096",
            pct.as_str(),
            socks_a.as_str(),
        ]
    );
    assert!(out.starts_with("System file table: "), "{out}");

    // The children's sockets live in the test's namespace (their test thread entered it),
    // and that is where `--kinds` must dump: the namespace is found through their threads.
    let ns_ino = std::fs::metadata(ns.path()).unwrap().ino();
    let found = sockscope::procs::namespaces::netns_of(&sockscope::host::LiveHost, "/proc", a.pid);
    assert!(found.contains_key(&ns_ino), "{found:?}");

    // --netns selects exactly the processes whose main thread is inside the namespace.
    let mut sleeper = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "sleep", "60"])
        .spawn()
        .unwrap();
    let sleeper_pid = u64::from(sleeper.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let inside = loop {
        // `ip netns exec` enters the namespace, then execs sleep under the same pid.
        let v = run_json(&["fds", "--netns", &ns.path(), "--all", "--json"]);
        if v["processes"][0]["name"] == "sleep" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let pids_in: Vec<u64> = inside["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids_in, [sleeper_pid], "{inside}");
    drop((a, b, idle));
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn socket_index_reads_another_namespace() {
    if !support::require_root("socket_index_reads_another_namespace") {
        return;
    }
    use std::os::fd::AsRawFd;
    let ns = Netns::new();
    let (l, u) = ns.within(|| {
        (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    });
    let ino = |fd: i32| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino() as u32
    };
    let inside = sockscope::sockets::inodes::index_netns(
        &sockscope::host::LiveHost,
        std::path::Path::new(&ns.path()),
    )
    .unwrap();
    use sockscope::sockets::inodes::SockProto;
    assert_eq!(inside.get(&ino(l.as_raw_fd())), Some(&SockProto::Tcp));
    assert_eq!(inside.get(&ino(u.as_raw_fd())), Some(&SockProto::Udp));
    // The namespace holds nothing else: the dump is of that namespace, not ours.
    assert_eq!(inside.len(), 2, "{inside:?}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn watch_estimates_time_to_exhaustion_and_stops_on_sigint() {
    if !support::require_root("watch_estimates_time_to_exhaustion_and_stops_on_sigint") {
        return;
    }
    let file = TempFile::new("grow");
    const RATE: f64 = 25.0;
    const SOFT: u64 = 256;
    // 25 fds/s up to 200: never reaches the limit during the few seconds the test runs.
    let grow = child::spawn(
        "fds:grow",
        &[
            "ssc-fds-grow".into(),
            SOFT.to_string(),
            RATE.to_string(),
            "200".into(),
            file.path(),
        ],
        None,
    );
    let pid = grow.pid.to_string();
    let mut ss = support::sockscope()
        .args([
            "fds",
            "--watch",
            "--interval",
            "200ms",
            "--jsonl",
            "--pid",
            &pid,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ss.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut samples = 0;
    while samples < 12 {
        assert!(
            Instant::now() < deadline,
            "watch too slow: {samples} samples"
        );
        let line = lines.next().expect("watch ended early").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "sample", "{line}");
        samples += 1;
    }
    // SAFETY: signalling the sockscope process this test started.
    assert_eq!(unsafe { libc::kill(ss.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = ss.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut ss.stderr.take().unwrap(), &mut err).unwrap();
    // The summary is a complete report: Ctrl-C after it is a normal end (README exit codes).
    assert_eq!(status.code(), Some(0), "{err}");
    let summary: Value = serde_json::from_str(rest.last().expect("no summary")).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["interrupted"], true);
    assert!(summary["samples"].as_u64().unwrap() >= 12);
    let g = &summary["growing"][0];
    assert_eq!(g["pid"], grow.pid);
    assert_eq!(g["soft_limit"], SOFT);
    let rate = g["rate_per_s"].as_f64().unwrap();
    let fds = g["fds"].as_u64().unwrap();
    assert!(fds < 200, "the child stopped growing before the end: {g}");
    let truth = (SOFT - fds) as f64 / RATE;
    let eta = g["seconds_to_limit"].as_f64().unwrap();
    assert!(
        (eta - truth).abs() <= 0.2 * truth,
        "estimated {eta:.2}s to the limit, truth {truth:.2}s (rate {rate:.2}/s, want {RATE})"
    );
    assert!(err.contains("Ctrl-C stops"), "{err}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn watch_with_kinds_says_a_socket_leak_is_tcp() {
    if !support::require_root("watch_with_kinds_says_a_socket_leak_is_tcp") {
        return;
    }
    let file = TempFile::new("leak");
    const GROW: u64 = 40;
    const SAMPLES: usize = 15;
    // The child says its fd count; it leaks GROW connections at 40/s (one second) once told
    // to, after the watch's first sample, and holds them: well within SAMPLES × 200 ms.
    let mut leak = child::spawn(
        "fds:grow",
        &[
            "ssc-sock-leak".into(),
            "1024".into(),
            "40".into(),
            format!("+{GROW}"),
            file.path(),
            "tcp".into(),
            "on-go".into(),
        ],
        None,
    );
    let base: u64 = leak.info.parse().unwrap();
    let mut watch = support::sockscope()
        .args([
            "fds",
            "--watch",
            "--kinds",
            "--interval",
            "200ms",
            "--count",
            &SAMPLES.to_string(),
            "--jsonl",
            "--pid",
            &leak.pid.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut lines: Vec<Value> = Vec::new();
    // The first sample, before any growth; then the leak starts.
    if let Some(Ok(l)) = stream.next() {
        lines.push(serde_json::from_str(&l).unwrap());
    }
    leak.send("go");
    lines.extend(stream.map(|l| serde_json::from_str(&l.unwrap()).unwrap()));
    let status = watch.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let out = lines
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(lines.len(), SAMPLES + 1, "{out}");
    let first = &lines[0]["processes"][0];
    let last = &lines[SAMPLES - 1]["processes"][0];
    // Growth ended long before the last sample: exactly GROW more fds, all of them TCP.
    assert_eq!(last["fds"], base + GROW, "{last}");
    let tcp = |p: &Value| p["kinds"]["tcp"].as_u64().unwrap();
    // The first sample came before the leak: the listener alone, then GROW more.
    assert_eq!(tcp(first), 1, "{first}");
    assert_eq!(
        last["kinds_grew"],
        serde_json::json!({"tcp": GROW}),
        "first {first}\nlast {last}"
    );
    assert_eq!(
        last["kinds"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        base + GROW,
        "every fd has a kind: {last}"
    );
    // The listener plus every leaked connection (the server ends, never accepted, are in
    // the listener's queue, not in the fd table).
    assert_eq!(tcp(last), GROW + 1, "{last}");
    let summary = &lines[SAMPLES];
    assert_eq!(summary["type"], "summary");

    // The table says it in words.
    let (code, out, err) = run(&[
        "fds",
        "--watch",
        "--kinds",
        "--interval",
        "100ms",
        "--count",
        "2",
        "--pid",
        &leak.pid.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Grew by kind"), "{out}");
}

#[test]
fn watch_with_count_ends_with_a_table_summary() {
    let (code, out, err) = run(&[
        "fds",
        "--watch",
        "--interval",
        "100ms",
        "--count",
        "3",
        "--pid",
        &std::process::id().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("--- sample ").count(), 3, "{out}");
    assert!(out.contains("Watched for "), "{out}");
    assert!(!out.contains("stopped by Ctrl-C"), "{out}");

    // --json: one document at the end, the samples and the summary.
    let v = run_json(&[
        "fds",
        "--watch",
        "--interval",
        "100ms",
        "--count",
        "3",
        "--json",
        "--pid",
        &std::process::id().to_string(),
    ]);
    assert_eq!(v["schema_version"], 1, "{v}");
    assert_eq!(v["samples"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["samples"][2]["sample"], 3, "{v}");
    assert_eq!(v["samples"][0]["processes"][0]["pid"], std::process::id());
    assert_eq!(v["summary"]["samples"], 3, "{v}");
}

#[test]
fn fds_bad_input_is_one_line_and_exit_2() {
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // pid_max itself is never a pid.
    let missing = pid_max.to_string();
    let (code, out, err) = run(&["fds", "--pid", &missing]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("sockscope: no process {missing}")),
        "{err}"
    );
    for (args, needle) in [
        (
            &["fds", "--watch", "--interval", "0"][..],
            "must be more than zero",
        ),
        (&["fds", "--top", "-1"], "is not a count"),
        (&["fds", "--pid", "x"], "is not a process id"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("sockscope: "), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

fn fixture() -> String {
    format!("{}/fixtures/proc/hostile", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn fake_proc_tree_counts_escapes_and_skips() {
    let root = fixture();
    let v = run_json(&["fds", "--proc-root", &root, "--all", "--kinds", "--json"]);
    assert_eq!(
        v["system"],
        serde_json::json!({"allocated": 1234, "free": 0, "max": 9999, "nr_open": 1048576})
    );
    // 300 vanished (no fd dir, no limits): skipped, not an error, not unreadable.
    let pids: Vec<u64> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [100, 400, 200]);
    assert_eq!(v["unreadable"], 0);
    let p = find(&v, 100);
    // Counted by walking (this is no procfs: the dir's byte size is not a count).
    assert_eq!(p["fds"], 5);
    assert_eq!(
        (p["soft_limit"].as_u64(), p["hard_limit"].as_u64()),
        (Some(8), Some(16))
    );
    assert_eq!(p["percent_used"], 62.5);
    assert_eq!(p["sockets"], 1);
    let want = [0, 0, 0, 1, 0, 1, 1, 1, 1];
    for (i, k) in KINDS.iter().enumerate() {
        assert_eq!(kind(p, k), want[i], "{k}: {p}");
    }
    let evil = find(&v, 200);
    assert_eq!(evil["name"], "evil\x1b]0;pwned\x07\x1b[2J");
    assert_eq!(evil["fds"], 3);
    assert_eq!(evil["soft_limit"], Value::Null);
    assert_eq!(evil["hard_limit"], Value::Null);
    assert_eq!(evil["percent_used"], Value::Null);

    // The table never passes the escape sequences to the terminal.
    let (code, out, err) = run(&["fds", "--proc-root", &root]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("evil\\x1b]0;pwned\\x07\\x1b[2J"), "{out}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.contains("evil"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[2..6], ["3", "unlimited", "unlimited", "-"]);

    // A vanished pid named explicitly: skipped, exit 0, empty list.
    let v = run_json(&["fds", "--proc-root", &root, "--pid", "300", "--json"]);
    assert_eq!(v["processes"], serde_json::json!([]));
}

#[test]
fn fake_proc_tree_unreadable_fd_dir_is_marked_not_fatal() {
    // Copy the tree and lock one fd dir; read it as an unprivileged user (root reads anything).
    let tmp = std::env::temp_dir().join(format!("ssc-fds-locked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    support::run_ok("cp", &["-a", &fixture(), tmp.to_str().unwrap()]);
    support::run_ok("chmod", &["0755", tmp.to_str().unwrap()]);
    support::run_ok("chmod", &["000", tmp.join("400/fd").to_str().unwrap()]);
    let root = tmp.to_str().unwrap();
    // A copy of the binary the unprivileged user can surely execute (the checkout may sit
    // under a private home directory). Copied by `cp`, not in this process: a child forked by a
    // parallel test could inherit our write fd and make the exec fail with ETXTBSY.
    let bin_copy = tmp.join("sockscope");
    support::run_ok(
        "cp",
        &[env!("CARGO_BIN_EXE_sockscope"), bin_copy.to_str().unwrap()],
    );
    let bin = bin_copy.to_str().unwrap();
    // SAFETY: geteuid has no preconditions.
    let out = if unsafe { libc::geteuid() } == 0 {
        support::as_nobody(bin)
            .args(["fds", "--proc-root", root, "--kinds", "--json"])
            .output()
            .unwrap()
    } else {
        std::process::Command::new(bin)
            .args(["fds", "--proc-root", root, "--kinds", "--json"])
            .output()
            .unwrap()
    };
    let _ = std::fs::set_permissions(
        tmp.join("400/fd"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unreadable"], 1);
    let locked = find(&v, 400);
    assert_eq!(locked["fds"], Value::Null);
    assert_eq!(locked["soft_limit"], 256, "limits are still readable");
    assert!(locked.get("kinds").is_none());
    // The readable rows are all there, the unreadable one last.
    assert_eq!(v["processes"][0]["pid"], 100);
    assert_eq!(v["processes"][2]["pid"], 400);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.trim_end(),
        "sockscope: pid 400 (locked) belongs to another user: its fds are marked unreadable; \
         run as root, or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"
    );
}

/// The lines of `err` that are the unreadable-process note (either privilege's wording).
fn unreadable_notes(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("even to root") || l.contains("to another user"))
        .collect()
}

/// Inside a test namespace no unreadable process of the host (PID 1 here refuses even root)
/// can own what is shown: no subcommand mentions one.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn netns_runs_do_not_mention_processes_outside_the_namespace() {
    if !support::require_root("netns_runs_do_not_mention_processes_outside_the_namespace") {
        return;
    }
    let ns = Netns::new();
    let c = child::spawn(
        "fds:accept",
        &["ssc-fds-ns".into(), "64".into()],
        Some(&ns.path()),
    );
    let path = ns.path();
    for args in [
        &["sockets", "-p", "--netns", &path][..],
        &["sockets", "-p", "--netns", &path, "--json"],
        &["listeners", "--netns", &path],
        &["fds", "--netns", &path],
        &["fds", "--netns", &path, "--kinds"],
        &["doctor", "--netns", &path, "--interval", "0"],
    ] {
        let (code, out, err) = run(args);
        assert!(
            code == 0 || (args[0] == "doctor" && code == 1),
            "{args:?}: {err}"
        );
        assert!(unreadable_notes(&err).is_empty(), "{args:?}: {err}");
        if args[0] == "listeners" {
            // The child's listener is shown, with its owner.
            assert!(out.contains(&format!("ssc-fds-ns({})", c.pid)), "{out}");
        }
    }
    drop(c);
}

/// A socket whose owner cannot be read (the user is not root, the owner is): the note is
/// said once, in the one wording, naming processes and the privilege.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn unowned_socket_shown_to_another_user_gets_one_note() {
    if !support::require_root("unowned_socket_shown_to_another_user_gets_one_note") {
        return;
    }
    // A root-owned listener on the host's loopback (no traffic): shown to nobody, unowned.
    let c = child::spawn("fds:accept", &["ssc-fds-root".into(), "64".into()], None);
    let port = c.info.clone();
    let tmp = std::env::temp_dir().join(format!("ssc-fds-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    support::run_ok("chmod", &["0755", tmp.to_str().unwrap()]);
    let bin = tmp.join("sockscope");
    support::run_ok(
        "cp",
        &[env!("CARGO_BIN_EXE_sockscope"), bin.to_str().unwrap()],
    );
    let out = support::as_nobody(bin.to_str().unwrap())
        .args(["listeners", "--port", &port])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let notes = unreadable_notes(&err);
    assert_eq!(notes.len(), 1, "{err}");
    assert!(notes[0].starts_with("sockscope: pid"), "{err}");
    assert!(
        notes[0].contains("to another user: ")
            && notes[0].contains("sockets show no owner; run as root, or grant CAP_SYS_PTRACE"),
        "{err}"
    );
    drop(c);
}

/// A server blocked in accept(): the kernel's count (`stat` of /proc/PID/fd) holds the slot
/// accept4 reserved, `ls` does not. `fds` must add up (fds = what ls lists = the kinds' sum),
/// show the slot as reserved, and still count it against the soft limit.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn fds_of_a_server_blocked_in_accept_add_up() {
    if !support::require_root("fds_of_a_server_blocked_in_accept_add_up") {
        return;
    }
    let ns = Netns::new();
    let c = child::spawn(
        "fds:accept",
        &["ssc-fds-acc".into(), "64".into()],
        Some(&ns.path()),
    );
    let pid = c.pid.to_string();
    let v = run_json(&["fds", "--pid", &pid, "--kinds", "--json"]);
    let p = find(&v, c.pid);
    let listed = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let counted = std::fs::metadata(format!("/proc/{pid}/fd")).unwrap().len();
    assert_eq!(counted, listed + 1, "the kernel counts the reserved slot");
    assert_eq!(p["fds"], listed, "{p}");
    assert_eq!(p["reserved"], 1, "{p}");
    let sum: i64 = KINDS.iter().map(|k| kind(p, k)).sum();
    assert_eq!(sum as u64, listed, "{p}");
    assert_eq!(kind(p, "tcp"), 1, "the listener: {p}");
    // EMFILE arithmetic: the reserved slot counts against the soft limit of 64.
    assert_eq!(
        p["percent_used"].as_f64().unwrap(),
        (listed + 1) as f64 * 100.0 / 64.0
    );

    let (code, out, err) = run(&["fds", "--pid", &pid]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.contains("ssc-fds-acc"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    let pct = sockscope::render::percent((listed + 1) as f64 * 100.0 / 64.0);
    assert_eq!(
        row[..7],
        [
            pid.as_str(),
            "ssc-fds-acc",
            &listed.to_string(),
            "1",
            "64",
            "64",
            &pct
        ]
    );
    assert!(
        out.contains("\nReserved: fd slots taken but not yet open"),
        "{out}"
    );

    // The watch adds up too: with --kinds, fds is what the kinds sum to and the slot is
    // reserved (it used to show the kernel's count, one more than the kinds).
    let (code, out, err) = run(&[
        "fds",
        "--watch",
        "--kinds",
        "--interval",
        "100ms",
        "--count",
        "2",
        "--jsonl",
        "--pid",
        &pid,
    ]);
    assert_eq!(code, 0, "{err}");
    let last: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    let p = &last["processes"][0];
    assert_eq!(p["fds"], listed, "{p}");
    assert_eq!(p["reserved"], 1, "{p}");
    let sum: u64 = p["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, listed, "{p}");
    let (code, out, err) = run(&[
        "fds",
        "--watch",
        "--kinds",
        "--interval",
        "100ms",
        "--count",
        "1",
        "--pid",
        &pid,
    ]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.contains("ssc-fds-acc"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[2..6], [listed.to_string().as_str(), "1", "64", &pct]);
    drop(c);
}

/// Child roles for these tests (see `support::child`).
pub fn child(role: &str, args: &[String]) -> bool {
    match role {
        "fds:accept" => {
            accept(args);
            true
        }
        "fds:hold" => {
            hold(args);
            true
        }
        "fds:grow" => {
            grow(args);
            true
        }
        _ => false,
    }
}

/// NAME SOFT: a listener with one thread blocked in accept() on it; says ready (with the
/// listener's port) once that thread sleeps in the syscall, so the slot is reserved before
/// the parent looks.
fn accept(args: &[String]) {
    let soft: u64 = args[1].parse().unwrap();
    child::enter_netns();
    set_nofile(soft, soft);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = l.accept();
    });
    let tid = rx.recv().unwrap();
    // /proc/self/task/TID/syscall starts with the syscall number while the thread is blocked.
    let accept4 = libc::SYS_accept4.to_string();
    let mut blocked = false;
    for _ in 0..500 {
        let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap();
        if s.split_whitespace().next() == Some(accept4.as_str()) {
            blocked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(blocked, "the accept thread never blocked in accept4");
    child::serve(&args[0], &port, |_| {});
}

fn set_nofile(soft: u64, hard: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads a struct we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// This process's open fds, without the one `read_dir` itself holds.
fn own_fd_count() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64 - 1
}

fn hold(args: &[String]) {
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    let (name, soft, hard) = (&args[0], n(1), n(2));
    let (tcp_pairs, udp, unix_pairs, files, pipes) = (n(3), n(4), n(5), n(6), n(7));
    let path = &args[8];
    child::enter_netns();
    set_nofile(soft, hard);
    let baseline = own_fd_count();
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    if tcp_pairs > 0 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        for _ in 0..tcp_pairs {
            keep.push(Box::new(
                TcpStream::connect(l.local_addr().unwrap()).unwrap(),
            ));
            keep.push(Box::new(l.accept().unwrap().0));
        }
        keep.push(Box::new(l));
    }
    for _ in 0..udp {
        keep.push(Box::new(UdpSocket::bind("127.0.0.1:0").unwrap()));
    }
    for _ in 0..unix_pairs {
        let (a, b) = UnixStream::pair().unwrap();
        keep.push(Box::new(a));
        keep.push(Box::new(b));
    }
    for _ in 0..files {
        keep.push(Box::new(std::fs::File::open(path).unwrap()));
    }
    for _ in 0..pipes {
        let mut fds = [0i32; 2];
        // SAFETY: pipe fills two fds, held until the process exits.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    }
    let expected = baseline
        + 2 * tcp_pairs
        + u64::from(tcp_pairs > 0)
        + udp
        + 2 * unix_pairs
        + files
        + 2 * pipes;
    assert_eq!(own_fd_count(), expected, "child population");
    child::serve(name, &baseline.to_string(), |_| {});
    drop(keep);
}

/// Opens one fd every 1/RATE s on a fixed schedule (no drift) up to MAX fds (or +N more),
/// then holds:
/// a file, or with KIND `tcp` a connection to its own listener (a socket leak). Says its fd
/// count before growing (the listener included) on its `ready` line.
fn grow(args: &[String]) {
    let (name, soft) = (&args[0], args[1].parse::<u64>().unwrap());
    let rate: f64 = args[2].parse().unwrap();
    let path = args[4].clone();
    let tcp = args.get(5).is_some_and(|k| k == "tcp");
    // With `on-go`, growth starts when the parent writes `go` (after the watcher's first
    // sample), so a slow start of the watcher cannot miss it.
    let on_go = args.iter().any(|a| a == "on-go");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    if !on_go {
        let _ = go_tx.send(());
    }
    set_nofile(soft, soft);
    child::set_name(name);
    let listener = tcp.then(|| TcpListener::bind("127.0.0.1:0").unwrap());
    // Counted once: listing /proc/self/fd on every step would itself open an fd.
    let base = own_fd_count();
    // MAX is a total, or +N: N more than now.
    let max: u64 = match args[3].strip_prefix('+') {
        Some(n) => base + n.parse::<u64>().unwrap(),
        None => args[3].parse().unwrap(),
    };
    std::thread::spawn(move || {
        let _ = go_rx.recv();
        let start = Instant::now();
        let mut keep: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        let mut i = 0u64;
        while base + i < max {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            match &listener {
                // Never accepted: the connection waits in the listener's queue.
                Some(l) => keep.push(Box::new(
                    TcpStream::connect(l.local_addr().unwrap()).unwrap(),
                )),
                None => keep.push(Box::new(std::fs::File::open(&path).unwrap())),
            }
            i += 1;
        }
        // Hold them until the process exits.
        std::mem::forget(keep);
        std::mem::forget(listener);
    });
    child::serve(name, &base.to_string(), |line| {
        if line == "go" {
            let _ = go_tx.send(());
        }
    });
}

/// `--all-netns`: each row names its process's namespace (as `ip netns` names it) and, for a
/// process in a runtime's cgroup, its container (from the runtime's own metadata).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn all_netns_rows_name_their_namespace_and_container() {
    if !support::require_root("all_netns_rows_name_their_namespace_and_container") {
        return;
    }
    let ns = Netns::new();
    let c = child::spawn_whole(
        "fds:accept",
        &["ssc-fds-where".into(), "64".into()],
        &ns.path(),
    );
    let pid = c.pid.to_string();
    let inode = std::fs::metadata(ns.path()).unwrap().ino();
    let v = run_json(&["fds", "--all-netns", "--pid", &pid, "--json"]);
    let p = find(&v, c.pid);
    assert_eq!(p["netns"]["name"], ns.name.as_str(), "{p}");
    assert_eq!(p["netns"]["inode"], inode, "{p}");
    assert_eq!(p["netns"]["host"], false, "{p}");
    assert!(p.get("container").is_none(), "{p}");
    let (code, out, err) = run(&["fds", "--all-netns", "--pid", &pid]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.contains("ssc-fds-where")).unwrap();
    assert!(row.ends_with(&format!("  {}", ns.name)), "{out}");

    // A process in a cgroup named as Docker's systemd driver names it, with Docker's
    // metadata under --fs-root.
    let root = crate::node::FsRoot::new();
    let id = format!("{:0>64x}", 0xfd5_0000_u64 + std::process::id() as u64);
    root.write(
        &format!("var/lib/docker/containers/{id}/config.v2.json"),
        r#"{"Name":"/fds-web"}"#,
    );
    let cg = crate::node::Cgroup::new(&format!("system.slice/docker-{id}.scope"), &ns.path());
    let holder = cg.holder.id().to_string();
    let v = run_json(&[
        "fds",
        "--all-netns",
        "--fs-root",
        root.dir.to_str().unwrap(),
        "--pid",
        &holder,
        "--json",
    ]);
    let p = &v["processes"][0];
    assert_eq!(p["container"]["runtime"], "docker", "{p}");
    assert_eq!(p["container"]["id"], id.as_str(), "{p}");
    assert_eq!(p["container"]["name"], "fds-web", "{p}");
    assert_eq!(p["netns"]["name"], ns.name.as_str(), "{p}");
    drop(c);
}

/// `--by container`: a Podman container's fds against its limit, exactly (its one process,
/// its fd count, the 4096 limit it was given).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn by_container_sums_a_podman_containers_fds() {
    if !support::require_root("by_container_sums_a_podman_containers_fds") {
        return;
    }
    let name = format!("ssc-fds-{}", std::process::id());
    let ct = crate::node::Podman::run(&name);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", ct.pid))
        .unwrap()
        .count() as u64;
    let v = run_json(&["fds", "--by", "container", "--all", "--json"]);
    let g = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["container"]["id"] == ct.id.as_str())
        .unwrap_or_else(|| panic!("no row for {name}: {v}"));
    assert_eq!(g["container"]["runtime"], "podman", "{g}");
    assert_eq!(g["container"]["name"], name.as_str(), "{g}");
    assert_eq!(g["processes"], 1, "{g}");
    assert_eq!(g["fds"], fds, "{g}");
    assert_eq!(g["worst"]["pid"], ct.pid, "{g}");
    assert_eq!(g["worst"]["soft_limit"], 4096, "{g}");
    assert_eq!(
        g["worst_percent_used"].as_f64().unwrap(),
        fds as f64 * 100.0 / 4096.0
    );
    let (code, out, err) = run(&["fds", "--by", "container", "--all"]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.contains(&format!("podman/{name}")))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[2..5], ["1", &fds.to_string(), &ct.pid.to_string()]);
}
