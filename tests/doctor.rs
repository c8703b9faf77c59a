//! `doctor`, `explain`, `pool`: each row of the symptom table reproduced for real in a private
//! namespace, and doctor must name it; a healthy namespace must come out clean.

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, child, run, Netns};

/// Runs doctor (with `--json`) and returns its exit code and parsed report.
fn doctor(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert!(
        code == 0 || code == 1,
        "doctor {args:?} exited {code}: {err}"
    );
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"));
    (code, v)
}

fn findings(v: &Value) -> &Vec<Value> {
    v["findings"].as_array().unwrap()
}

fn symptoms(v: &Value) -> Vec<&str> {
    findings(v)
        .iter()
        .map(|f| f["symptom"].as_str().unwrap())
        .collect()
}

fn the(v: &Value, symptom: &str) -> Value {
    findings(v)
        .iter()
        .find(|f| f["symptom"] == symptom)
        .unwrap_or_else(|| panic!("no {symptom} finding in {v:#}"))
        .clone()
}

/// Runs `f` in a background thread inside `ns` until `stop` is set (at most 15 s): the load
/// that makes the kernel's counters move while doctor samples them.
fn background(ns: &Netns, stop: Arc<AtomicBool>, f: fn()) -> std::thread::JoinHandle<()> {
    let path = ns.path();
    std::thread::spawn(move || {
        support::enter(&path);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            f();
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn healthy_namespace_has_no_findings_and_exits_0() {
    if !support::require_root("healthy_namespace_has_no_findings_and_exits_0") {
        return;
    }
    let ns = Netns::new();
    let _web = child::spawn(
        "sockets:listen",
        &["127.0.0.1:9000".into()],
        Some(&ns.path()),
    );
    let keep = ns.within(|| {
        let l = listen("127.0.0.1:8001", 128);
        let conns: Vec<_> = (0..10)
            .map(|_| {
                let c = TcpStream::connect("127.0.0.1:8001").unwrap();
                let (s, _) = l.accept().unwrap();
                (c, s)
            })
            .collect();
        (l, conns)
    });
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "300ms"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(findings(&v).is_empty(), "{v:#}");
    let checked: Vec<&str> = v["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        checked[0].starts_with("accept queues of 2 TCP listeners"),
        "{checked:?}"
    );
    assert!(
        checked[1].starts_with("22 TCP sockets, 0 in TIME_WAIT"),
        "{checked:?}"
    );
    assert!(checked
        .iter()
        .any(|c| c.contains("system file table: skipped")));
    // The children hold their sockets in the namespace from a thread, so no process's main
    // thread is in it; doctor itself entered it and does not count itself.
    assert!(
        checked
            .iter()
            .any(|c| c.starts_with("fd use against the soft limit of 0 processes")),
        "{checked:?}"
    );

    // The human form says so, and a probe of the healthy listener connects.
    let (code, text, _) = run(&["doctor", "--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("No problems found."), "{text}");
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "8001"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["probe"]["outcome"], "connected");
    // Durations are whole microseconds; addresses {addr, port}.
    assert!(v["probe"]["connect_us"].as_u64().is_some(), "{v:#}");
    assert!(v["probe"]["waited_us"].as_u64().is_some(), "{v:#}");
    assert_eq!(v["probe"]["target"]["addr"], "127.0.0.1");
    assert_eq!(v["probe"]["target"]["port"], 8001);
    drop(keep);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn nothing_listening_is_refused() {
    if !support::require_root("nothing_listening_is_refused") {
        return;
    }
    let ns = Netns::new();
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "9"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["refused"]);
    let f = the(&v, "refused");
    assert_eq!(f["severity"], "critical");
    let ev = f["evidence"].as_str().unwrap();
    assert!(
        ev.starts_with("connect to 127.0.0.1:9 answered with RST (ECONNREFUSED)"),
        "{ev}"
    );
    assert!(
        ev.ends_with("nothing listens on port 9 here (kernel socket table)"),
        "{ev}"
    );
    assert_eq!(v["probe"]["outcome"], "refused");
    assert_eq!(v["probe"]["errno"], "ECONNREFUSED");
    assert_eq!(
        v["checked"][0],
        "listening sockets on port 9 (kernel socket table): 0"
    );

    // With the packets: one SYN, answered by the kernel's RST.
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "9", "--capture"]);
    assert_eq!(code, 1);
    assert_eq!(v["capture"]["outcome"], "refused", "{v:#}");
    assert_eq!(v["capture"]["syn_attempts"], 1);
    assert_eq!(v["capture"]["reset_by"], "server");
    assert_eq!(v["capture"]["tcp_segments"], 2);
    assert!(the(&v, "refused")["evidence"]
        .as_str()
        .unwrap()
        .ends_with("; capture: SYN sent 1 time(s), answered by RST from the server"));

    // HOST:PORT form, IPv6, table output.
    let (code, text, _) = run(&["doctor", "--netns", &ns.name, "[::1]:9"]);
    assert_eq!(code, 1);
    let line = text.lines().nth(1).unwrap();
    assert!(line.starts_with("critical  refused"), "{text}");
    assert!(line.contains("[::1]:9"), "{text}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn dropped_syns_time_out_behind_a_listener() {
    if !support::require_root("dropped_syns_time_out_behind_a_listener") {
        return;
    }
    let ns = Netns::new();
    let l = ns.within(|| listen("127.0.0.1:8080", 128));
    for args in [
        &["add", "table", "inet", "t"][..],
        &[
            "add",
            "chain",
            "inet",
            "t",
            "input",
            "{ type filter hook input priority 0; }",
        ],
        &[
            "add", "rule", "inet", "t", "input", "tcp", "dport", "8080", "drop",
        ],
    ] {
        let out = ns.exec("nft", args);
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, v) = doctor(&["--netns", &ns.name, "127.0.0.1:8080", "--timeout", "400ms"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["timed-out"]);
    let f = the(&v, "timed-out");
    let ev = f["evidence"].as_str().unwrap();
    assert!(ev.starts_with("no SYN-ACK from 127.0.0.1:8080 in "), "{ev}");
    assert!(
        ev.ends_with("port 8080 has a listener on 127.0.0.1:8080"),
        "{ev}"
    );
    let cause = f["cause"].as_str().unwrap();
    assert!(cause.contains("firewall"), "{cause}");
    // The dropping rule, read from `nft -j list ruleset` in the namespace.
    assert!(
        cause.contains("; the rule: nft table inet t chain input handle ")
            && cause.ends_with(": tcp dport 8080 drop"),
        "{cause}"
    );
    assert_eq!(f["rule"], 26);
    assert_eq!(v["probe"]["outcome"], "timed-out");
    assert!(v["probe"]["connect_us"].is_null());
    // The numbers behind the words: the target and the listener seen on its port.
    assert_eq!(f["data"]["target"]["port"], 8080, "{f:#}");
    assert_eq!(f["data"]["listeners"][0]["addr"], "127.0.0.1", "{f:#}");

    // --capture backs it with the packets: the SYN and its retransmission, never answered.
    // (The kernel retransmits the first SYN after 1 s; a 1.5 s probe sees exactly two.)
    let (code, v) = doctor(&[
        "--netns",
        &ns.name,
        "127.0.0.1:8080",
        "--timeout",
        "1500ms",
        "--capture",
    ]);
    assert_eq!(code, 1);
    let c = &v["capture"];
    assert_eq!(c["outcome"], "unanswered", "{v:#}");
    assert_eq!(c["syn_attempts"], 2, "{v:#}");
    assert_eq!(c["tcp_segments"], 2, "only our two SYNs: {v:#}");
    assert!(c["handshake_rtt_us"].is_null());
    // Two SYNs: the first at 0, the retransmission later, in whole µs.
    let at = c["syn_at_us"].as_array().unwrap();
    assert_eq!(at[0], 0, "{v:#}");
    assert!(at[1].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(v["probe"]["local"]["addr"], "127.0.0.1", "{v:#}");
    assert!(v["probe"]["local"]["port"].as_u64().unwrap() > 0, "{v:#}");
    let ev = the(&v, "timed-out")["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ev.contains("; capture: SYN sent 2 time(s) (at 0 s, "),
        "{ev}"
    );
    assert!(ev.ends_with("), no reply"), "{ev}");
    drop(l);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn linger_zero_server_is_reset() {
    if !support::require_root("linger_zero_server_is_reset") {
        return;
    }
    let ns = Netns::new();
    let _srv = child::spawn(
        "doctor:rst-server",
        &["127.0.0.1:8081".into()],
        Some(&ns.path()),
    );
    // The probe: the handshake completes, then the RST.
    let (code, v) = doctor(&["--netns", &ns.name, "127.0.0.1:8081"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["reset"]);
    let ev = the(&v, "reset")["evidence"].as_str().unwrap().to_string();
    assert!(
        ev.starts_with("handshake with 127.0.0.1:8081 completed in "),
        "{ev}"
    );
    assert!(ev.contains("then the peer sent RST (ECONNRESET)"), "{ev}");
    assert_eq!(v["probe"]["outcome"], "reset");

    // Whole namespace: clients keep getting reset while doctor samples the counters.
    let stop = Arc::new(AtomicBool::new(false));
    let load = background(&ns, stop.clone(), || {
        if let Ok(mut c) = TcpStream::connect("127.0.0.1:8081") {
            let _ = std::io::Read::read(&mut c, &mut [0u8; 8]);
        }
    });
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "1s"]);
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(symptoms(&v), ["reset"], "{v:#}");
    let f = the(&v, "reset");
    assert_eq!(f["severity"], "warning");
    let ev = f["evidence"].as_str().unwrap();
    assert!(ev.starts_with("TCPAbortOnData +"), "{ev}");
    assert!(ev.contains("EstabResets +"), "{ev}");
    assert!(f["cause"].as_str().unwrap().contains("SO_LINGER 0"));
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn process_at_its_fd_limit_is_emfile() {
    if !support::require_root("process_at_its_fd_limit_is_emfile") {
        return;
    }
    let ns = Netns::new();
    let hog = child::spawn_whole("doctor:fd-hog", &["64".into()], &ns.path());
    // "EMFILE <fds held>": the kernel refused the next open at the limit.
    let (hit, held) = hog.info.split_once(' ').unwrap();
    assert_eq!(hit, "EMFILE", "the child hit {}", hog.info);
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["emfile"], "{v:#}");
    let f = the(&v, "emfile");
    assert_eq!(f["severity"], "critical");
    assert_eq!(
        f["evidence"],
        format!(
            "pid {} (ssc-fdhog) holds {held} fds, soft limit 64 ({:.0}%), hard limit 4096",
            hog.pid,
            held.parse::<f64>().unwrap() * 100.0 / 64.0
        )
    );
    assert!(f["fix"]
        .as_str()
        .unwrap()
        .contains(&format!("sockscope fds --pid {}", hog.pid)));
    // The whole host covers every process (this one too) and the system file table.
    let (_, host) = doctor(&["--interval", "0"]);
    assert!(host["checked"].as_array().unwrap().iter().any(|c| c
        .as_str()
        .unwrap()
        .starts_with("system file table: ")
        && !c.as_str().unwrap().contains("skipped")));
    assert!(findings(&host).iter().any(|f| f["evidence"]
        .as_str()
        .unwrap()
        .contains(&format!("pid {} ", hog.pid))));
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn overflowing_accept_queue_is_named_with_its_counters() {
    if !support::require_root("overflowing_accept_queue_is_named_with_its_counters") {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        let l = listen("127.0.0.1:8003", 4);
        let clients: Vec<_> = (0..5)
            .map(|_| TcpStream::connect("127.0.0.1:8003").unwrap())
            .collect();
        (l, clients)
    });
    // More clients knock while doctor samples: the kernel drops their SYNs and counts them.
    let stop = Arc::new(AtomicBool::new(false));
    let load = background(&ns, stop.clone(), || {
        // SAFETY: a nonblocking socket whose connect is left in flight, then closed.
        unsafe {
            let fd = libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: 8003u16.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
                },
                sin_zero: [0; 8],
            };
            libc::connect(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
            std::thread::sleep(Duration::from_millis(20));
            libc::close(fd);
        }
    });
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "1s"]);
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["accept-queue"], "{v:#}");
    let f = the(&v, "accept-queue");
    assert_eq!(f["severity"], "critical");
    let ev = f["evidence"].as_str().unwrap();
    // The listener is this test process's socket: the finding names it.
    let me = format!(
        "{}({})",
        std::fs::read_to_string("/proc/self/comm")
            .unwrap()
            .trim_end(),
        std::process::id()
    );
    assert!(
        ev.starts_with(&format!(
            "accept queue 5/4 on 127.0.0.1:8003 held by {me}; ListenOverflows +"
        )),
        "{ev}"
    );
    assert!(ev.contains("ListenDrops +"), "{ev}");
    assert!(f["fix"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{me} is not accepting fast enough")));

    // A probe of that port times out, and doctor says why: the full queue, not a firewall.
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "8003", "--timeout", "300ms"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["accept-queue", "timed-out"], "{v:#}");
    let t = the(&v, "timed-out");
    assert!(t["cause"]
        .as_str()
        .unwrap()
        .starts_with("the listener's accept queue is full"));
    assert!(the(&v, "accept-queue")["evidence"]
        .as_str()
        .unwrap()
        .starts_with(&format!("accept queue 5/4 on 127.0.0.1:8003 held by {me}")));
    let _ = keep.0.as_raw_fd();
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn close_wait_pile_up_is_named_with_its_owner() {
    if !support::require_root("close_wait_pile_up_is_named_with_its_owner") {
        return;
    }
    const LEAKED: usize = 150;
    let ns = Netns::new();
    // A server that never closes what its clients closed: 150 sockets in CLOSE_WAIT.
    let leaky = child::spawn(
        "doctor:close-wait",
        &["127.0.0.1:8100".into(), LEAKED.to_string()],
        Some(&ns.path()),
    );
    wait_for_state(&ns, "close-wait", LEAKED);
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(symptoms(&v), ["close-wait"], "{v:#}");
    let f = the(&v, "close-wait");
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        f["evidence"],
        format!(
            "{LEAKED} TCP sockets in CLOSE_WAIT (closed by the peer, never closed here); held \
             by ssc-leaky({}): {LEAKED} sockets",
            leaky.pid
        )
    );
    assert!(f["fix"].as_str().unwrap().starts_with(&format!(
        "ssc-leaky({}) does not close() connections its peers have closed",
        leaky.pid
    )));
    let checked = v["checked"][1].as_str().unwrap();
    assert!(
        checked.contains(&format!(", {LEAKED} in CLOSE_WAIT;")),
        "{checked}"
    );
    // explain knows the row.
    let (code, text, _) = run(&["explain", "close_wait"]);
    assert_eq!(code, 0);
    assert!(text.contains("CLOSE_WAIT"), "{text}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn full_udp_receive_buffer_drops_are_named_with_the_socket() {
    if !support::require_root("full_udp_receive_buffer_drops_are_named_with_the_socket") {
        return;
    }
    let ns = Netns::new();
    // A UDP socket with a small buffer that is never read, and a sender that keeps at it
    // while doctor samples: the kernel drops and counts (Udp.RcvbufErrors).
    let sink = child::spawn(
        "doctor:udp-sink",
        &["127.0.0.1:5353".into()],
        Some(&ns.path()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = background(&ns, stop.clone(), || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..50 {
            let _ = s.send_to(&[0u8; 1000], "127.0.0.1:5353");
        }
    });
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "1s"]);
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(symptoms(&v), ["udp-drops"], "{v:#}");
    let f = the(&v, "udp-drops");
    let ev = f["evidence"].as_str().unwrap();
    assert!(ev.starts_with("UdpRcvbufErrors +"), "{ev}");
    // The socket's own drop counter names it, with its (doubled) 4 KiB buffer.
    let named = format!("; by socket: 127.0.0.1:5353 (ssc-udpsink({})) ", sink.pid);
    assert!(ev.contains(&named), "{ev}");
    assert!(ev.ends_with(" dropped (receive buffer 8192 bytes)"), "{ev}");
    assert!(f["fix"].as_str().unwrap().starts_with(&format!(
        "ssc-udpsink({}) reads 127.0.0.1:5353 too slowly",
        sink.pid
    )));
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn time_wait_exhausting_a_narrow_port_range() {
    if !support::require_root("time_wait_exhausting_a_narrow_port_range") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    ns.sysctl("net.ipv4.ip_local_port_range", "20000 20999");
    let l = ns.within(|| {
        let l = listen("127.0.0.1:8001", 128);
        make_time_wait(&l, 950);
        l
    });
    wait_for_state(&ns, "time-wait", 950);
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 1);
    assert_eq!(symptoms(&v), ["time-wait"], "{v:#}");
    let f = the(&v, "time-wait");
    assert_eq!(f["severity"], "critical");
    assert_eq!(
        f["evidence"],
        "950 of 1000 ephemeral ports (20000-20999) in use towards 127.0.0.1:8001 (950 in \
         TIME_WAIT; 950 TIME_WAIT in all; tcp_tw_reuse=0)"
    );
    // And the kernel agrees: the range towards that peer is nearly gone. 50 more connects
    // fit; the 51st gets EADDRNOTAVAIL, the error `explain` maps to this row.
    let err = ns.within(|| {
        let mut held = Vec::new();
        for _ in 0..60 {
            match TcpStream::connect("127.0.0.1:8001") {
                Ok(c) => held.push(c),
                Err(e) => return (held.len(), e.raw_os_error()),
            }
        }
        (held.len(), None)
    });
    assert_eq!(err, (50, Some(libc::EADDRNOTAVAIL)));
    let (code, out, _) = run(&["explain", "EADDRNOTAVAIL", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["id"],
        "time-wait"
    );
    drop(l);
}

/// Adds nft rules in `ns` (`nft add rule inet t input …` for each of `rules`).
fn nft_rules(ns: &Netns, rules: &[&str]) {
    let mut all: Vec<Vec<&str>> = vec![
        vec!["add", "table", "inet", "t"],
        vec![
            "add",
            "chain",
            "inet",
            "t",
            "input",
            "{ type filter hook input priority 0; }",
        ],
    ];
    for r in rules {
        let mut v = vec!["add", "rule", "inet", "t", "input"];
        v.extend(r.split(' '));
        all.push(v);
    }
    for args in all {
        let out = ns.exec("nft", &args);
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn firewall_reject_in_front_of_a_listener_is_named_not_blamed_on_the_bind_address() {
    if !support::require_root(
        "firewall_reject_in_front_of_a_listener_is_named_not_blamed_on_the_bind_address",
    ) {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        [
            listen("127.0.0.1:9004", 16),
            listen("127.0.0.1:9005", 16),
            listen("127.0.0.2:9007", 16),
        ]
    });
    nft_rules(
        &ns,
        &[
            "tcp dport 9004 reject with tcp reset",
            "tcp dport 9005 reject",
        ],
    );
    // The handles nft gave the rules, to check the finding names the right one.
    let listing =
        String::from_utf8_lossy(&ns.exec("nft", &["-a", "list", "ruleset"]).stdout).into_owned();
    let handle = |needle: &str| {
        let line = listing.lines().find(|l| l.contains(needle)).unwrap();
        line.rsplit("# handle ").next().unwrap().trim().to_string()
    };
    for (port, text) in [
        (9004, "tcp dport 9004 reject with tcp reset"),
        // Plain reject: ICMP port unreachable, which connect() also reports as ECONNREFUSED.
        (9005, "tcp dport 9005 reject"),
    ] {
        let target = format!("127.0.0.1:{port}");
        let (code, v) = doctor(&["--netns", &ns.name, &target]);
        assert_eq!(code, 1);
        assert_eq!(symptoms(&v), ["refused"], "{v:#}");
        assert_eq!(v["probe"]["errno"], "ECONNREFUSED");
        let f = the(&v, "refused");
        assert_eq!(f["rule"], 21, "{f:#}");
        assert_eq!(
            f["evidence"].as_str().unwrap().rsplit("; ").next().unwrap(),
            format!("port {port} has a listener on {target}")
        );
        let cause = f["cause"].as_str().unwrap();
        assert!(!cause.contains("listens only on"), "{cause}");
        assert!(
            cause.starts_with(&format!(
                "a listener takes {target}, so the RST did not come from a missing socket: a \
                 firewall or policy rule rejects the connection"
            )),
            "{cause}"
        );
        assert!(
            cause.ends_with(&format!(
                "; the rule: nft table inet t chain input handle {}: {text}",
                handle(text)
            )),
            "{cause}"
        );
        assert!(v["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("firewall rules (nft")));
    }
    // A real bind mismatch stays one: the service is on 127.0.0.2 only.
    let (code, v) = doctor(&["--netns", &ns.name, "127.0.0.1:9007"]);
    assert_eq!(code, 1);
    let f = the(&v, "refused");
    assert_eq!(f["rule"], 23);
    assert_eq!(
        f["cause"],
        "the service listens only on 127.0.0.2:9007, not on the address probed (127.0.0.1)"
    );
    drop(keep);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn an_ipv6_only_listener_refusing_ipv4_is_named_and_a_dual_stack_one_connects() {
    if !support::require_root(
        "an_ipv6_only_listener_refusing_ipv4_is_named_and_a_dual_stack_one_connects",
    ) {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        // `listen` sets IPV6_V6ONLY; std's bind leaves it off (dual-stack).
        (
            listen("[::]:6301", 16),
            std::net::TcpListener::bind("[::]:6300").unwrap(),
        )
    });
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "6301"]);
    assert_eq!(code, 1);
    let f = the(&v, "refused");
    assert_eq!(f["rule"], 22, "{f:#}");
    assert!(f["evidence"]
        .as_str()
        .unwrap()
        .ends_with("; port 6301 has a listener on [::]:6301 (IPV6_V6ONLY)"));
    assert_eq!(
        f["cause"],
        "the service listens on [::]:6301 with IPV6_V6ONLY=1: that socket takes IPv6 only, and \
         nothing listens for IPv4 on port 6301, so 127.0.0.1:6301 is refused"
    );
    let (code, v) = doctor(&["--netns", &ns.name, "--port", "6300"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["probe"]["outcome"], "connected");
    assert_eq!(
        v["checked"][0],
        "listening sockets on port 6300 (kernel socket table): 1"
    );
    drop(keep);
}

/// Bytes written on `fd` and not yet acknowledged by the peer (SIOCOUTQ).
fn unacked(fd: &impl AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for a TCP socket we own.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0);
    n
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn a_stuck_reader_is_named_with_its_unread_bytes() {
    if !support::require_root("a_stuck_reader_is_named_with_its_unread_bytes") {
        return;
    }
    const SENT: usize = 200_000;
    let ns = Netns::new();
    let stuck = child::spawn(
        "doctor:stuck-reader",
        &["127.0.0.1:7000".into()],
        Some(&ns.path()),
    );
    let client = ns.within(|| {
        let mut c = TcpStream::connect("127.0.0.1:7000").unwrap();
        std::io::Write::write_all(&mut c, &[7u8; SENT]).unwrap();
        // Every byte acknowledged: all of it sits in the child's receive queue.
        let deadline = Instant::now() + Duration::from_secs(10);
        while unacked(&c) > 0 {
            assert!(
                Instant::now() < deadline,
                "{} bytes never acked",
                unacked(&c)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        c
    });
    let cport = client.local_addr().unwrap().port();
    let (code, v) = doctor(&["--netns", &ns.name, "--interval", "300ms"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(symptoms(&v), ["recv-q"], "{v:#}");
    let f = the(&v, "recv-q");
    assert_eq!(f["rule"], 13);
    assert_eq!(f["severity"], "warning");
    let ev = f["evidence"].as_str().unwrap();
    assert!(
        ev.starts_with(&format!(
            "Recv-Q {SENT} bytes on 127.0.0.1:7000 (peer 127.0.0.1:{cport}) held by \
             ssc-stuck({}): {SENT} at the first reading, {SENT} after ",
            stuck.pid
        )),
        "{ev}"
    );
    assert!(f["fix"].as_str().unwrap().starts_with(&format!(
        "ssc-stuck({}) does not read 127.0.0.1:7000",
        stuck.pid
    )));
    // explain covers both meanings of Recv-Q.
    let (code, text, _) = run(&["explain", "recv-q"]);
    assert_eq!(code, 0);
    assert!(text.contains("On an established socket"), "{text}");
    assert!(text.contains("On a listening socket"), "{text}");
    drop(client);
}

#[test]
fn explain_and_pool() {
    let (code, out, err) = run(&["explain", "ECONNREFUSED"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("refused: Connection refused (ECONNREFUSED)"),
        "{out}"
    );
    for (name, id) in [
        ("ETIMEDOUT", "timed-out"),
        ("econnreset", "reset"),
        ("EMFILE", "emfile"),
        ("ENFILE", "enfile"),
        ("EADDRINUSE", "addr-in-use"),
        ("time-wait", "time-wait"),
        ("recv-q", "recv-q"),
        ("backlog", "accept-queue"),
    ] {
        let (code, out, _) = run(&["explain", name, "--json"]);
        assert_eq!(code, 0);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], id, "{name}");
        assert!(!v["fix"].as_str().unwrap().is_empty());
    }
    // The lesson's worked numbers.
    let (code, out, _) = run(&[
        "pool",
        "--qps",
        "2000",
        "--latency",
        "50ms",
        "--upstreams",
        "3",
        "--fd-limit",
        "65536",
        "--rtt",
        "50ms",
        "--json",
    ]);
    assert_eq!(code, 0);
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["in_flight"], 100.0);
    assert_eq!(p["pool_max"], 125);
    assert_eq!(p["pool_fds"], 375);
    assert_eq!(p["fits"], true);
    assert_eq!(p["keepalive_idle_s"], 55.0);
    assert_eq!(p["setup"]["new_connection_ms"], 100.0);
    assert_eq!(p["setup"]["thousand_calls_without_pool_s"], 150.0);
    assert_eq!(p["setup"]["thousand_calls_with_pool_s"], 50.0);
    // Pools that do not fit the fd limit exit 1.
    let (code, out, _) = run(&[
        "pool",
        "--qps",
        "2000",
        "--latency",
        "50ms",
        "--upstreams",
        "3",
        "--fd-limit",
        "300",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("DOES NOT FIT"), "{out}");
}

#[test]
fn bad_doctor_input_is_one_line_and_exit_2() {
    for (args, needle) in [
        (&["doctor", "localhost"][..], "is not HOST:PORT"),
        (&["doctor", "10.0.0.1:99999"], "the port must be 1..=65535"),
        (
            &["doctor", "--capture"],
            "required arguments were not provided",
        ),
        (
            &["doctor", "--timeout", "soon", "127.0.0.1:1"],
            "is not a duration",
        ),
        (
            &["explain", "EWHATEVER"],
            "unknown error or symptom 'EWHATEVER'; closest: ",
        ),
        (
            &["pool", "--qps", "-5", "--latency", "50ms"],
            "'-5' is not a rate",
        ),
        (
            &["pool", "--qps", "10", "--latency", "0ms"],
            "must be more than zero",
        ),
        (
            &["doctor", "no-such-host.invalid:80"],
            "cannot resolve no-such-host.invalid",
        ),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.starts_with("sockscope:"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// A namespace file's inode (what `netns.inode` holds).
fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn all_netns_names_the_namespace_container_and_process_of_each_finding() {
    if !support::require_root("all_netns_names_the_namespace_container_and_process_of_each_finding")
    {
        return;
    }
    // A: a full accept queue held by a child process that lives there.
    let full = Netns::new();
    let holder = child::spawn_whole(
        "doctor:full-queue",
        &["127.0.0.1:8090".into()],
        &full.path(),
    );
    // B: healthy, with a listener nobody waits on.
    let healthy = Netns::new();
    let _calm = healthy.within(|| listen("127.0.0.1:8091", 16));
    // A Podman container whose namespace holds a full queue (the socket is this test's).
    let c = crate::node::Podman::run(&format!("ssc-doctor-{}-web", std::process::id()));
    let _in_container = crate::node::within(&c.netns(), || {
        let l = listen("127.0.0.1:8092", 2);
        let clients: Vec<_> = (0..3)
            .map(|_| TcpStream::connect("127.0.0.1:8092").unwrap())
            .collect();
        (l, clients)
    });

    let (code, v) = doctor(&["--all-netns", "--interval", "0"]);
    assert_eq!(code, 1, "{v:#}");
    let at = |inode: u64| -> Vec<Value> {
        findings(&v)
            .iter()
            .filter(|f| f["netns"]["inode"] == inode)
            .cloned()
            .collect()
    };
    // A: exactly the one finding, named with the namespace and the child holding it.
    let a = at(ns_inode(&full.path()));
    assert_eq!(a.len(), 1, "{v:#}");
    assert_eq!(a[0]["symptom"], "accept-queue");
    assert_eq!(a[0]["rule"], 1);
    assert_eq!(a[0]["netns"]["name"], full.name.as_str());
    assert_eq!(a[0]["netns"]["host"], false);
    assert_eq!(a[0]["data"]["queued"], 2);
    assert_eq!(a[0]["data"]["backlog"], 1);
    assert_eq!(a[0]["data"]["owners"][0]["pid"], holder.pid);
    assert_eq!(a[0]["data"]["owners"][0]["name"], "ssc-fullq");
    let ev = a[0]["evidence"].as_str().unwrap();
    assert_eq!(
        ev,
        format!(
            "accept queue 2/1 on 127.0.0.1:8090 in netns {}, held by ssc-fullq({})",
            full.name, holder.pid
        )
    );
    // B: nothing.
    assert!(at(ns_inode(&healthy.path())).is_empty(), "{v:#}");
    // The container: its finding names the container.
    let k = at(ns_inode(&c.netns()));
    assert_eq!(k.len(), 1, "{v:#}");
    assert_eq!(k[0]["data"]["queued"], 3);
    assert_eq!(k[0]["data"]["backlog"], 2);
    assert_eq!(k[0]["container"]["runtime"], "podman");
    assert_eq!(k[0]["container"]["id"], c.id.as_str());
    assert_eq!(k[0]["container"]["name"], c.name.as_str());
    let ev = k[0]["evidence"].as_str().unwrap();
    assert!(
        ev.starts_with(&format!(
            "accept queue 3/2 on 127.0.0.1:8092 in container podman/{} {} (netns ",
            c.name,
            &c.id[..12]
        )),
        "{ev}"
    );
    assert!(v["checked"][0]
        .as_str()
        .unwrap()
        .starts_with("every check in each of "));

    // C, made just before the run (TIME_WAIT lasts 60 s): TIME_WAIT holding 6 of its 10
    // ephemeral ports toward one peer, a warning. Plain doctor's cheap look sees it only when
    // the namespace's socket totals send it on to the full dump.
    let tw = Netns::new();
    tw.sysctl("net.ipv4.ip_local_port_range", "20000 20009");
    let _tw_server = tw.within(|| {
        let l = listen("127.0.0.1:8093", 16);
        crate::sockets::make_time_wait(&l, 6);
        l
    });
    crate::sockets::wait_for_state(&tw, "time-wait", 6);

    // Plain doctor on the host checks its own namespace, and says there is more elsewhere.
    let (code, out, err) = support::run(&["doctor", "--interval", "0", "--json"]);
    assert!(code == 0 || code == 1, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        findings(&doc).iter().all(|f| f["netns"].is_null()),
        "{doc:#}"
    );
    // Other tests may run namespaces with problems at the same time: at least ours.
    assert!(
        doc["elsewhere"]["findings"].as_u64().unwrap() >= 2,
        "{doc:#}"
    );
    assert!(
        doc["elsewhere"]["namespaces"].as_u64().unwrap() >= 2,
        "{doc:#}"
    );
    // Exactly ours, by namespace: the full queue, the container's queue, the TIME_WAIT ports.
    let seen_at = |inode: u64| {
        doc["elsewhere"]["where"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["netns"]["inode"] == inode)
            .map(|w| w["findings"].as_u64().unwrap())
    };
    assert_eq!(seen_at(ns_inode(&full.path())), Some(1), "{doc:#}");
    assert_eq!(seen_at(ns_inode(&c.netns())), Some(1), "{doc:#}");
    assert_eq!(seen_at(ns_inode(&tw.path())), Some(1), "{doc:#}");
    assert_eq!(seen_at(ns_inode(&healthy.path())), None, "{doc:#}");
    assert!(
        err.lines().any(|l| l.starts_with("sockscope: ")
            && l.ends_with(" other network namespaces; run with --all-netns")),
        "{err}"
    );
    drop(holder);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn severity_is_coloured_with_color_always_even_under_no_color() {
    if !support::require_root("severity_is_coloured_with_color_always_even_under_no_color") {
        return;
    }
    let ns = Netns::new();
    let doctor_run = |color: &str, no_color: bool| {
        let mut cmd = support::sockscope();
        cmd.args([
            "doctor",
            "--netns",
            &ns.name,
            "127.0.0.1:9",
            "--color",
            color,
        ]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    let red = doctor_run("always", false);
    let line = red.lines().nth(1).unwrap();
    assert!(
        line.starts_with("\x1b[31mcritical\x1b[0m  refused"),
        "{line:?}"
    );
    // --color always beats NO_COLOR; auto into a pipe, or under NO_COLOR, is plain.
    let under_no_color = doctor_run("always", true);
    assert!(
        under_no_color
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("\x1b[31mcritical\x1b[0m  refused"),
        "{under_no_color:?}"
    );
    for (choice, no_color) in [("auto", true), ("auto", false), ("never", false)] {
        let plain = doctor_run(choice, no_color);
        assert!(!plain.contains('\x1b'), "{choice} {no_color}: {plain:?}");
        assert!(plain
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("critical  refused"));
    }
}

/// Child roles of this module.
pub fn child(role: &str, args: &[String]) -> bool {
    match role {
        // Listens with a backlog of 1 and connects twice to itself, never accepting: the
        // accept queue holds 2 of 1 (past its backlog).
        "doctor:full-queue" => {
            child::enter_netns();
            let l = listen(&args[0], 1);
            let clients: Vec<_> = (0..2)
                .map(|_| TcpStream::connect(&args[0]).unwrap())
                .collect();
            child::serve("ssc-fullq", "", |_| {});
            drop((l, clients));
            true
        }
        // Accepts and aborts every connection with SO_LINGER 0: the peer gets a RST.
        "doctor:rst-server" => {
            child::enter_netns();
            let l = listen(&args[0], 64);
            std::thread::spawn(move || {
                for c in l.incoming().flatten() {
                    let lg = libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    };
                    // SAFETY: setsockopt on a socket we own, with a valid linger struct.
                    unsafe {
                        libc::setsockopt(
                            c.as_raw_fd(),
                            libc::SOL_SOCKET,
                            libc::SO_LINGER,
                            (&lg as *const libc::linger).cast(),
                            std::mem::size_of::<libc::linger>() as u32,
                        );
                    }
                    drop(c);
                }
            });
            child::serve("ssc-rst", "", |_| {});
            true
        }
        // Accepts N connections from its own clients, closes the clients and keeps the
        // accepted ends: they sit in CLOSE_WAIT.
        "doctor:close-wait" => {
            child::enter_netns();
            let l = listen(&args[0], 1024);
            let n: usize = args[1].parse().unwrap();
            let mut kept = Vec::with_capacity(n);
            for _ in 0..n {
                let c = TcpStream::connect(&args[0]).unwrap();
                kept.push(l.accept().unwrap().0);
                drop(c);
            }
            child::serve("ssc-leaky", "", |_| {});
            drop(kept);
            true
        }
        // A UDP socket with the smallest receive buffer, never read.
        "doctor:udp-sink" => {
            child::enter_netns();
            let s = std::net::UdpSocket::bind(&args[0]).unwrap();
            support::set_rcvbuf(&s, 4096);
            child::serve("ssc-udpsink", "", |_| {});
            drop(s);
            true
        }
        // Accepts one connection into a 1 MiB receive buffer and never reads it.
        "doctor:stuck-reader" => {
            child::enter_netns();
            let l = listen(&args[0], 16);
            support::set_rcvbuf(&l, 1 << 20);
            let held = std::thread::spawn(move || l.accept().map(|(s, _)| s));
            child::serve("ssc-stuck", "", |_| {});
            drop(held);
            true
        }
        // Lowers its soft fd limit to N and opens files until the kernel says EMFILE.
        "doctor:fd-hog" => {
            // Everything that opens a file (entering the namespace, naming the process) comes
            // before the fds run out.
            child::enter_netns();
            child::set_name("ssc-fdhog");
            let n: u64 = args[0].parse().unwrap();
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: 4096,
            };
            // SAFETY: setrlimit with a valid struct; lowering limits needs no privilege.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
            // fds already open (the listing's own fd excluded): the harness may hold some
            // above the new limit, which stay open and count.
            let before = std::fs::read_dir("/proc/self/fd").unwrap().count() - 1;
            let mut files = Vec::new();
            let hit = loop {
                match std::fs::File::open("/dev/null") {
                    Ok(f) => files.push(f),
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break "EMFILE",
                    Err(_) => break "other",
                }
                if files.len() > n as usize {
                    break "no-limit";
                }
            };
            println!("ready {hit} {}", before + files.len());
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
                line.clear();
            }
            drop(files);
            true
        }
        _ => false,
    }
}
