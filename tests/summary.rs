//! `summary` against a known population in a private namespace, and against `ss -s` there.

use std::net::{TcpStream, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, run, run_json, Netns};

/// `ss -s` in the namespace: "Total:", the TCP line's estab and timewait, and the transport
/// table as (total, ipv4, ipv6) per row name.
struct SsSummary {
    total: u64,
    estab: u64,
    timewait: u64,
    rows: Vec<(String, [u64; 3])>,
}

fn ss_s(ns: &Netns) -> SsSummary {
    let out = ns.exec("ss", &["-s"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let after = |line: &str, key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let total_line = text.lines().find(|l| l.starts_with("Total:")).unwrap();
    let tcp_line = text.lines().find(|l| l.starts_with("TCP:")).unwrap();
    let rows = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let nums: Option<Vec<u64>> = f.get(1..4)?.iter().map(|n| n.parse().ok()).collect();
            let n = nums?;
            Some((f[0].to_lowercase(), [n[0], n[1], n[2]]))
        })
        .collect();
    SsSummary {
        total: after(total_line, "Total:"),
        estab: after(tcp_line, "estab"),
        timewait: after(tcp_line, "timewait"),
        rows,
    }
}

/// Waits (bounded) until the namespace holds only the population's 16 sockets: a netlink
/// socket of a tool that just ran there (ss, sockscope --states) is freed after an RCU grace
/// period, so "sockets: used" counts it for a moment after the tool exits.
fn settle(ns: &Netns) {
    let deadline = Instant::now() + Duration::from_secs(10);
    ns.within(|| loop {
        let text = std::fs::read_to_string("/proc/thread-self/net/sockstat").unwrap();
        if text.starts_with("sockets: used 16\n") {
            return;
        }
        assert!(Instant::now() < deadline, "sockets never settled: {text}");
        std::thread::sleep(Duration::from_millis(10));
    })
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn summary_counts_a_known_population_exactly_as_ss_s_does() {
    if !support::require_root("summary_counts_a_known_population_exactly_as_ss_s_does") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let _keep = ns.within(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l1 = listen("127.0.0.1:9001", 128);
        let l2 = listen("127.0.0.1:9002", 128);
        let l6 = listen("[::1]:9003", 128);
        // 3 IPv4 pairs and 1 IPv6 pair, established.
        for _ in 0..3 {
            keep.push(Box::new(TcpStream::connect("127.0.0.1:9002").unwrap()));
            keep.push(Box::new(l2.accept().unwrap().0));
        }
        keep.push(Box::new(TcpStream::connect("[::1]:9003").unwrap()));
        keep.push(Box::new(l6.accept().unwrap().0));
        // 4 TIME_WAIT (IPv4), which are no longer sockets in use.
        make_time_wait(&l1, 4);
        // UDP: 2 + 1 unconnected (IPv4, IPv6), 1 connected.
        keep.push(Box::new(UdpSocket::bind("127.0.0.1:0").unwrap()));
        keep.push(Box::new(UdpSocket::bind("127.0.0.1:0").unwrap()));
        keep.push(Box::new(UdpSocket::bind("[::1]:0").unwrap()));
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect("127.0.0.1:53").unwrap();
        keep.push(Box::new(c));
        // One raw socket (hashed, so in use, from creation).
        // SAFETY: socket() has no memory preconditions; the fd is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            )
        };
        assert!(raw >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: raw is a fresh fd nothing else owns.
        keep.push(Box::new(unsafe { OwnedFd::from_raw_fd(raw) }));
        keep.push(Box::new(l1));
        keep.push(Box::new(l2));
        keep.push(Box::new(l6));
        keep
    });
    wait_for_state(&ns, "time-wait", 4);
    settle(&ns);

    let v = run_json(&["summary", "--netns", &ns.name, "--states", "--json"]);
    assert_eq!(v["schema_version"], 1);
    // TCP in use: 2 + 1 listeners, 6 + 2 established ends; UDP 3 + 1; raw 1.
    let row = |name: &str| -> [u64; 3] {
        let r = v["transports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["transport"] == name)
            .unwrap_or_else(|| panic!("no {name} row: {v:#}"));
        [
            r["total"].as_u64().unwrap(),
            r["ipv4"].as_u64().unwrap(),
            r["ipv6"].as_u64().unwrap(),
        ]
    };
    assert_eq!(row("tcp"), [11, 8, 3], "{v:#}");
    assert_eq!(row("udp"), [4, 3, 1]);
    assert_eq!(row("raw"), [1, 1, 0]);
    assert_eq!(row("udplite"), [0, 0, 0]);
    assert_eq!(row("inet"), [16, 12, 4]);
    assert_eq!(row("frag"), [0, 0, 0]);
    assert_eq!(v["sockets_used"], 16);
    assert_eq!(v["tcp"]["established"], 8);
    assert_eq!(v["tcp"]["time_wait"], 4);
    // Host-wide: every namespace's TCP sockets, ours among them.
    assert!(v["tcp"]["allocated"].as_u64().unwrap() >= 11, "{v:#}");
    assert_eq!(
        v["tcp"]["total"].as_u64().unwrap(),
        v["tcp"]["allocated"].as_u64().unwrap() + 4
    );
    assert!(v["tcp"]["max_tw_buckets"].as_u64().is_some());
    assert!(v["files"]["max"].as_u64().unwrap() > 0);
    // Per state and family, from the dump.
    let st = &v["states"];
    let fam = |p: &str, s: &str| -> [u64; 3] {
        let c = &st[p][s];
        [
            c["total"].as_u64().unwrap(),
            c["ipv4"].as_u64().unwrap(),
            c["ipv6"].as_u64().unwrap(),
        ]
    };
    assert_eq!(fam("tcp", "listening"), [3, 2, 1], "{st:#}");
    assert_eq!(fam("tcp", "established"), [8, 6, 2]);
    assert_eq!(fam("tcp", "time-wait"), [4, 4, 0]);
    assert_eq!(fam("tcp", "all"), [15, 12, 3]);
    assert_eq!(fam("udp", "unconn"), [3, 2, 1]);
    assert_eq!(fam("udp", "established"), [1, 1, 0]);
    assert_eq!(fam("udp", "all"), [4, 3, 1]);

    // ss -s in the same namespace says the same per-namespace numbers.
    settle(&ns);
    let ss = ss_s(&ns);
    assert_eq!(ss.total, 16);
    assert_eq!(ss.estab, 8);
    assert_eq!(ss.timewait, 4);
    for name in ["raw", "udp", "tcp", "inet", "frag"] {
        let (_, r) = ss
            .rows
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("ss -s has no {name} row"));
        assert_eq!(*r, row(name), "{name}");
    }

    // Without --states: no dump, states is null; the table names the host-wide lines.
    settle(&ns);
    let v = run_json(&["summary", "--netns", &ns.name, "--json"]);
    assert!(v["states"].is_null());
    let (code, text, err) = run(&["summary", "--netns", &ns.name]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("TCP: "), "{text}");
    assert!(text.contains("estab 8,"), "{text}");
    assert!(
        text.contains("TIME_WAIT:            4 of net.ipv4.tcp_max_tw_buckets"),
        "{text}"
    );
    assert!(text.contains("Orphaned (host):"), "{text}");
    assert!(text.contains("File handles (host):"), "{text}");
}

#[test]
fn summary_of_a_missing_namespace_is_an_environment_error() {
    let (code, out, err) = run(&["summary", "--netns", "ssc-no-such-namespace"]);
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty());
    assert!(err.starts_with("sockscope: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn summary_jsonl_is_one_line() {
    let (code, out, err) = run(&["summary", "--jsonl"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["tcp"]["memory"]["bytes"].is_u64());
}

/// `summary --netns <TAB>`: the bash script asks `sockscope __complete netns`, which names a
/// namespace that exists right now.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn netns_completion_names_a_live_namespace() {
    if !support::require_root("netns_completion_names_a_live_namespace") {
        return;
    }
    let (code, script, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(script.contains("sockscope __complete netns"));
    assert!(script.contains("time-wait"));
    let ns = Netns::new();
    let (code, names, err) = run(&["__complete", "netns"]);
    assert_eq!(code, 0, "{err}");
    assert!(names.lines().any(|l| l == ns.name), "{names}");
}
