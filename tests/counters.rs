//! `counters` in a private namespace: refused connects and a full accept queue caused during
//! the interval show up as exactly what was caused, and as `nstat` counts them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sockets::listen;
use crate::support::{self, run, run_json, sockscope, Netns};

const REFUSED: u64 = 5;
const OVERFLOWS: u64 = 3;

/// A counter from the calling thread's namespace (`/proc/thread-self/net/netstat`).
fn netstat(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let (Some((sh, names)), Some((_, vals))) = (
            pair[0].split_once(':'),
            pair.get(1).and_then(|l| l.split_once(':')),
        ) else {
            continue;
        };
        for (n, v) in names.split_whitespace().zip(vals.split_whitespace()) {
            if format!("{sh}{n}") == name {
                return v.parse().unwrap();
            }
        }
    }
    panic!("no {name}")
}

/// In the namespace: REFUSED connects to a closed port (each answered by RST), and OVERFLOWS
/// SYNs to a listener whose accept queue is full (backlog 0, one connection already queued).
/// The SYN-SENT clients are closed before the kernel's 1 s SYN retransmission could add more.
/// Returns what must stay open until the counters are read.
fn cause(ns: &Netns) -> Vec<Box<dyn Send>> {
    ns.within(|| {
        for _ in 0..REFUSED {
            let e = TcpStream::connect("127.0.0.1:9").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        let l = listen("127.0.0.1:9100", 0);
        let queued = TcpStream::connect("127.0.0.1:9100").unwrap();
        let before = netstat("TcpExtListenOverflows");
        let addr: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let mut pending = Vec::new();
        for _ in 0..OVERFLOWS {
            let fd = support::tcp_socket(&addr);
            let (sa, len) = support::sockaddr(&addr);
            // SAFETY: fcntl and connect on an fd we own; sa outlives the call.
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len);
                pending.push(OwnedFd::from_raw_fd(fd));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while netstat("TcpExtListenOverflows") - before < OVERFLOWS {
            assert!(
                Instant::now() < deadline,
                "the SYNs never reached the listener"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(pending);
        let keep: Vec<Box<dyn Send>> = vec![Box::new(l), Box::new(queued)];
        keep
    })
}

fn counter(v: &Value, name: &str) -> Option<u64> {
    v["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["value"].as_u64().expect("counters are integers"))
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn counters_over_an_interval_count_exactly_what_happened() {
    if !support::require_root("counters_over_an_interval_count_exactly_what_happened") {
        return;
    }
    let ns = Netns::new();
    let history = std::env::temp_dir().join(format!("ssc-nstat-{}", std::process::id()));
    let nstat = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns.name, "nstat"])
            .args(args)
            .env("NSTAT_HISTORY", &history)
            .output()
            .expect("run nstat")
    };
    // A long interval, ended by Ctrl-C once everything is caused: no race with a timer.
    let mut child = sockscope()
        .args([
            "counters",
            "--netns",
            &ns.name,
            "--interval",
            "120s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    err.read_line(&mut banner).unwrap();
    assert!(banner.contains("counting for 120.0s"), "{banner:?}");
    // nstat's own baseline, taken after sockscope's first read.
    assert!(nstat(&["-n"]).status.success());
    let keep = cause(&ns);
    // SAFETY: kill on the pid of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    // nstat reads before the listener closes (closing it resets the connection still queued).
    let n = nstat(&["-az", "--json"]);
    drop(keep);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "delta");
    assert_eq!(v["interrupted"], true);
    assert!(v["interval_us"].as_u64().unwrap() < 120_000_000);
    assert_eq!(counter(&v, "TcpOutRsts"), Some(REFUSED), "{v:#}");
    assert_eq!(counter(&v, "TcpAttemptFails"), Some(REFUSED), "{v:#}");
    assert_eq!(
        counter(&v, "TcpExtListenOverflows"),
        Some(OVERFLOWS),
        "{v:#}"
    );
    assert_eq!(counter(&v, "TcpExtListenDrops"), Some(OVERFLOWS), "{v:#}");
    // Zeros are hidden, known counters come first, with their meaning and explain id.
    assert!(v["counters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["value"] != 0));
    let first = &v["counters"][0];
    assert_eq!(first["name"], "TcpExtListenOverflows");
    assert_eq!(first["explain"], "accept-queue");
    assert!(first["meaning"].as_str().unwrap().contains("accept queue"));
    // nstat saw the same deltas.
    let _ = std::fs::remove_file(&history);
    let n: Value = serde_json::from_slice(&n.stdout).unwrap();
    for name in [
        "TcpOutRsts",
        "TcpAttemptFails",
        "TcpExtListenOverflows",
        "TcpExtListenDrops",
    ] {
        assert_eq!(
            n["kernel"][name].as_u64(),
            counter(&v, name),
            "{name}: nstat {n:#}"
        );
    }

    // --absolute: the namespace is new, so its totals are the same numbers (plus the RST
    // that closing the listener sent to its still-queued connection).
    let a = run_json(&["counters", "--netns", &ns.name, "--absolute", "--json"]);
    assert_eq!(a["mode"], "absolute");
    assert!(a["interval_us"].is_null());
    assert_eq!(counter(&a, "TcpOutRsts"), Some(REFUSED + 1));
    assert_eq!(counter(&a, "TcpExtListenOverflows"), Some(OVERFLOWS));
    // NAME filters; -a shows zeros.
    let f = run_json(&[
        "counters",
        "--netns",
        &ns.name,
        "--absolute",
        "-a",
        "--json",
        "listenoverflows",
        "Udp6Rcvbuf",
    ]);
    let names: Vec<&str> = f["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TcpExtListenOverflows", "Udp6RcvbufErrors"]);
    assert_eq!(counter(&f, "Udp6RcvbufErrors"), Some(0));
    // The table says the same.
    let (code, text, e) = run(&[
        "counters",
        "--netns",
        &ns.name,
        "--absolute",
        "ListenOverflows",
    ]);
    assert_eq!(code, 0, "{e}");
    assert!(text.contains("TcpExtListenOverflows"), "{text}");
    assert!(text.contains("accept-queue"), "{text}");
}

#[test]
fn counters_reject_a_zero_interval_and_absolute_with_interval() {
    for args in [
        &["counters", "--interval", "0s"][..],
        &["counters", "--absolute", "--interval", "2s"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("sockscope: "), "{err}");
    }
}
