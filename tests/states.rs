//! `states --by process` and `states --watch` against sockets of known owners and states in
//! a private namespace.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, child, run, run_json, Netns, Watch};

/// Child role: in the namespace, a listener on `args[0]` (a port), `args[1]` connected pairs
/// held at both ends (ESTABLISHED), `args[2]` connections whose client end it closed (its
/// server end in CLOSE-WAIT, the client end an orphan in FIN-WAIT-2) and one connection it
/// never accepts (its own client end ESTABLISHED, the server end in the accept queue).
pub fn child(role: &str, args: &[String]) -> bool {
    if role != "states:owner" {
        return false;
    }
    child::enter_netns();
    let addr = format!("127.0.0.1:{}", args[0]);
    let n: Vec<usize> = args[1..].iter().map(|a| a.parse().unwrap()).collect();
    let l = listen(&addr, 16);
    let mut keep: Vec<TcpStream> = Vec::new();
    let pair = |l: &TcpListener| {
        let c = TcpStream::connect(&addr).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    };
    for _ in 0..n[0] {
        let (c, s) = pair(&l);
        keep.extend([c, s]);
    }
    for _ in 0..n[1] {
        let (c, s) = pair(&l);
        drop(c);
        keep.push(s);
    }
    keep.push(TcpStream::connect(&addr).unwrap());
    child::serve("ssc-states", "", |_| {});
    drop((l, keep));
    true
}

fn spawn_owner(ns: &Netns, port: u16, established_pairs: usize, close_wait: usize) -> child::Child {
    child::spawn(
        "states:owner",
        &[
            port.to_string(),
            established_pairs.to_string(),
            close_wait.to_string(),
        ],
        Some(&ns.path()),
    )
}

fn state(row: &Value, s: &str) -> u64 {
    row["states"][s].as_u64().unwrap()
}

/// (total, established, close-wait, listening) of a row.
fn counts(row: &Value) -> (u64, u64, u64, u64) {
    (
        row["total"].as_u64().unwrap(),
        state(row, "established"),
        state(row, "close-wait"),
        state(row, "listening"),
    )
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn states_by_process_counts_each_owner_and_the_sockets_without_one() {
    if !support::require_root("states_by_process_counts_each_owner_and_the_sockets_without_one") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let a = spawn_owner(&ns, 7701, 2, 3);
    let b = spawn_owner(&ns, 7702, 1, 4);
    // 5 TIME-WAIT whose listener is gone by the time states runs: no process is left in
    // the namespace but the two children.
    ns.within(|| {
        let l = listen("127.0.0.1:7703", 16);
        make_time_wait(&l, 5);
    });
    wait_for_state(&ns, "time-wait", 5);
    wait_for_state(&ns, "fin-wait-2", 7);
    wait_for_state(&ns, "close-wait", 7);
    wait_for_state(&ns, "last-ack", 0);

    let check = |doc: &Value, netns_inode: Option<u64>| {
        let ours: Vec<&Value> = doc["places"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                netns_inode.is_none_or(|i| {
                    p["netns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["inode"] == i)
                })
            })
            .collect();
        let pid_row = |pid: u32| {
            ours.iter()
                .find(|p| p["owner"] == "process" && p["process"]["pid"] == pid)
                .unwrap_or_else(|| panic!("no row for pid {pid}: {doc:#}"))
        };
        // A: its listener, 2 pairs and its unaccepted client end established, 3 CLOSE-WAIT.
        let ra = pid_row(a.pid);
        assert_eq!(ra["process"]["name"], "ssc-states");
        assert_eq!(counts(ra), (9, 5, 3, 1), "{ra:#}");
        let rb = pid_row(b.pid);
        assert_eq!(counts(rb), (8, 3, 4, 1), "{rb:#}");
        // What the kernel gives no owner: 5 TIME-WAIT, the 7 closed client ends (orphans in
        // FIN-WAIT-2) and the 2 connections waiting in accept queues.
        let none: Vec<&&Value> = ours.iter().filter(|p| p["owner"] == "none").collect();
        assert_eq!(none.len(), 1, "{doc:#}");
        let none = none[0];
        assert!(none.get("process").is_none(), "{none:#}");
        assert_eq!(none["total"], 14, "{none:#}");
        assert_eq!(state(none, "time-wait"), 5);
        assert_eq!(state(none, "fin-wait-2"), 7);
        assert_eq!(state(none, "established"), 2);
        assert!(!ours.iter().any(|p| p["owner"] == "unknown"), "{doc:#}");
        // Nothing shared: the rows add up to the namespace's sockets.
        let sum: u64 = ours.iter().map(|p| p["total"].as_u64().unwrap()).sum();
        assert_eq!(sum, 31, "{doc:#}");
        ours.len()
    };

    let doc = run_json(&["states", "--by", "process", "--netns", &ns.name, "--json"]);
    assert_eq!(doc["by"], "process");
    assert_eq!(doc["total"], 31, "{doc:#}");
    assert_eq!(doc["shared"], 0, "{doc:#}");
    assert_eq!(check(&doc, None), 3, "{doc:#}");
    let inode = doc["places"][0]["netns"][0]["inode"].as_u64().unwrap();
    assert_eq!(doc["places"][0]["netns"][0]["name"], ns.name.as_str());
    // Worst first: the no-owner row holds the TIME-WAIT.
    assert_eq!(doc["places"][0]["owner"], "none", "{doc:#}");

    // The node view finds the same rows in this namespace.
    let node = run_json(&["states", "--all-netns", "--by", "process", "--json"]);
    assert_eq!(check(&node, Some(inode)), 3, "{node:#}");

    let (code, table, err) = run(&["states", "--by", "process", "--netns", &ns.name]);
    assert_eq!(code, 0, "{err}");
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start}:\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line(&format!("{} ssc-states", a.pid))[2..8],
        [ns.name.as_str(), "-", "9", "5", "0", "3"]
    );
    assert!(line("(no owner:").contains(&"14"), "{table}");
    assert!(table.contains("no owner to TIME-WAIT"), "{table}");

    // --by netns and container still need --all-netns.
    let (code, _, err) = run(&["states", "--by", "netns", "--netns", &ns.name]);
    assert_eq!(code, 2, "{err}");
    drop((a, b));
}

impl Watch {
    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a sample within 60 s")
    }

    /// Stops the watcher between two samples: in its sleep, never in the middle of a dump
    /// (what it reads next is then read after whatever the test does while it is stopped).
    /// Bounded: a try that lands while it samples lets it go on and tries again.
    fn pause_between_samples(&self) {
        let pid = self.child.id();
        for _ in 0..500 {
            self.signal(libc::SIGSTOP);
            // Wait until the stop took effect (state T).
            for _ in 0..500 {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
                let st = stat
                    .rsplit_once(')')
                    .unwrap()
                    .1
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
                if st == "T" || st == "t" {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
            let nr: i64 = syscall
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap_or(-1);
            if nr == libc::SYS_nanosleep || nr == libc::SYS_clock_nanosleep {
                return;
            }
            self.signal(libc::SIGCONT);
            std::thread::sleep(Duration::from_millis(3));
        }
        panic!("the watcher never stopped in its sleep between samples");
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn states_watch_reports_exactly_the_time_wait_created_between_two_samples() {
    if !support::require_root(
        "states_watch_reports_exactly_the_time_wait_created_between_two_samples",
    ) {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let l = ns.within(|| listen("127.0.0.1:7710", 64));
    // Into a pipe without --json: JSON lines all the same.
    let w = Watch::start(&["states", "--netns", &ns.path(), "--watch", "50ms"]);
    let first = w.next();
    assert_eq!(first["type"], "sample");
    assert!(
        first["delta"].is_null() && first["interval_us"].is_null(),
        "{first}"
    );
    assert_eq!(first["total"], 1, "{first}");
    assert_eq!(state(&first, "time-wait"), 0);

    const N: u64 = 37;
    w.pause_between_samples();
    ns.within(|| make_time_wait(&l, N as usize));
    wait_for_state(&ns, "time-wait", N as usize);
    wait_for_state(&ns, "last-ack", 0);
    w.signal(libc::SIGCONT);
    let mut seen = 0;
    let changed = loop {
        let s = w.next();
        seen += 1;
        assert!(seen < 1000, "TIME-WAIT never changed");
        if state(&s, "time-wait") != 0 {
            break s;
        }
        // Samples taken before the pause saw nothing new.
        assert_eq!(s["delta"]["time-wait"], 0, "{s}");
    };
    assert_eq!(state(&changed, "time-wait"), N, "{changed}");
    assert_eq!(changed["delta"]["time-wait"], N, "{changed}");
    assert_eq!(changed["delta"]["listening"], 0, "{changed}");
    assert!(changed["interval_us"].as_u64().unwrap() > 0, "{changed}");
    assert!(
        changed["rate"]["time-wait"].as_f64().unwrap() > 0.0,
        "{changed}"
    );
    // The next sample: no change.
    let after = w.next();
    assert_eq!(after["delta"]["time-wait"], 0, "{after}");
    w.stop();
    drop(l);

    // With --all-netns, the same namespace's row carries the change.
    let w = Watch::start(&["states", "--all-netns", "--jsonl", "--watch", "50ms"]);
    let first = w.next();
    assert_eq!(first["by"], "netns");
    let ours = first["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["netns"][0]["name"] == ns.name.as_str())
        .unwrap_or_else(|| panic!("no row for {}: {first}", ns.name));
    assert_eq!(state(ours, "time-wait"), N, "{ours}");
    assert!(ours["delta"].is_null(), "{ours}");
    w.stop();

    let (code, _, err) = run(&["states", "--watch", "0"]);
    assert_eq!(code, 2, "{err}");
}

/// The host's own namespace is named `host` by `--by process` as by `--all-netns`, also where
/// PID 1's namespace link is closed even to root (then kthreadd's says which it is).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn states_by_process_names_the_host_namespace_host() {
    if !support::require_root("states_by_process_names_the_host_namespace_host") {
        return;
    }
    let v = run_json(&["states", "--by", "process", "--json"]);
    let places = v["places"].as_array().unwrap();
    assert!(!places.is_empty(), "{v:#}");
    for p in places {
        assert_eq!(p["netns"][0]["host"], true, "{p:#}");
    }
}
