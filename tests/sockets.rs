//! `sockets`, `listeners`, `states` against a known population in a private namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, child, run, run_json, Netns, Watch};

/// Runs a `sockets` or `listeners` listing with `--json` and returns its records: the
/// document is `{"schema_version": 1, "sockets"|"listeners": [...]}`.
pub fn run_list(args: &[&str]) -> Value {
    let doc = run_json(args);
    assert_eq!(doc["schema_version"], 1, "{doc}");
    let obj = doc.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "{doc}");
    let key = ["sockets", "listeners"]
        .into_iter()
        .find(|k| obj.contains_key(*k))
        .unwrap_or_else(|| panic!("no listing in {doc}"));
    doc[key].clone()
}

/// A TCP listener with an explicit backlog (std's `bind` always uses 128).
pub fn listen(addr: &str, backlog: i32) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let fd = support::tcp_socket(&addr);
    // SAFETY: plain socket syscalls on an fd we own; the fd is handed to TcpListener.
    unsafe {
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            4,
        );
        if addr.is_ipv6() {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                (&one as *const libc::c_int).cast(),
                4,
            );
        }
        let (sa, len) = support::sockaddr(&addr);
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len),
            0,
            "bind {addr}: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::listen(fd, backlog), 0);
        TcpListener::from_raw_fd(fd)
    }
}

/// Makes `n` connections to `server` that end in TIME_WAIT on the client side: the client
/// closes first, the server answers with its own FIN.
pub fn make_time_wait(server: &TcpListener, n: usize) {
    let addr = server.local_addr().unwrap();
    for _ in 0..n {
        let c = TcpStream::connect(addr).unwrap();
        let (mut s, _) = server.accept().unwrap();
        drop(c);
        let mut buf = [0u8; 16];
        // Reads EOF once the client's FIN is in.
        let _ = s.read(&mut buf);
        drop(s);
    }
}

/// Polls `ss` inside the namespace until `state` has `want` sockets (bounded).
pub fn wait_for_state(ns: &Netns, state: &str, want: usize) {
    // Generous: on a loaded machine (parallel builds) thousands of closes take a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ns.exec("ss", &["-Htan", "state", state]);
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        if n == want {
            return;
        }
        if Instant::now() >= deadline {
            // Every socket of the namespace, to show where the missing ones are (seen once: 29
            // of 30 TIME_WAIT for 30 s in a full run, never reproduced).
            let all = ns.exec("ss", &["-Htanoi"]);
            panic!(
                "{state}: {n} sockets, expected {want} (ss: {})\nall TCP sockets:\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&all.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The known population of the issue, built in one namespace.
struct Population {
    ns: Netns,
    _keep: Vec<Box<dyn Send>>,
}

fn build_population() -> Population {
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    ns.sysctl("net.ipv4.ip_local_port_range", "20000 20999");
    let keep = ns.within(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l1 = listen("127.0.0.1:8001", 128);
        let l2 = listen("[::1]:8002", 16);
        let l3 = listen("127.0.0.1:8003", 4);
        let udp = UdpSocket::bind("127.0.0.1:5353").unwrap();
        // 200 established pairs on 8001.
        for _ in 0..200 {
            let c = TcpStream::connect("127.0.0.1:8001").unwrap();
            let (s, _) = l1.accept().unwrap();
            keep.push(Box::new(c));
            keep.push(Box::new(s));
        }
        // 500 TIME_WAIT on the client side.
        make_time_wait(&l1, 500);
        // 5 clients that 8003 never accepts: its accept queue holds 5 against a backlog of 4.
        for _ in 0..5 {
            keep.push(Box::new(TcpStream::connect("127.0.0.1:8003").unwrap()));
        }
        keep.push(Box::new(l1));
        keep.push(Box::new(l2));
        keep.push(Box::new(l3));
        keep.push(Box::new(udp));
        keep
    });
    wait_for_state(&ns, "time-wait", 500);
    Population { ns, _keep: keep }
}

fn count_by(v: &Value, f: impl Fn(&Value) -> bool) -> usize {
    v.as_array().unwrap().iter().filter(|s| f(s)).count()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sockets_states_and_listeners_match_a_known_population() {
    if !support::require_root("sockets_states_and_listeners_match_a_known_population") {
        return;
    }
    let pop = build_population();
    let ns = pop.ns.name.as_str();
    let me = std::process::id();

    // Every socket, by state.
    let all = run_list(&["sockets", "--netns", ns, "--json"]);
    let tcp = |st: &str| count_by(&all, |s| s["proto"] == "tcp" && s["state"] == st);
    assert_eq!(tcp("listening"), 3);
    assert_eq!(tcp("established"), 410);
    assert_eq!(tcp("time-wait"), 500);
    assert_eq!(count_by(&all, |s| s["proto"] == "udp"), 1);
    assert_eq!(all.as_array().unwrap().len(), 914);

    // The full accept queue, exactly.
    let full = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "listening" && s["local"]["port"] == 8003)
        .unwrap();
    assert_eq!(full["recv_q"], 5);
    assert_eq!(full["send_q"], 4);
    assert_eq!(full["family"], 4);

    // Kernel-side state filter and user-side port/address filters.
    let tw = run_list(&["sockets", "--netns", ns, "--state", "time-wait", "--json"]);
    assert_eq!(tw.as_array().unwrap().len(), 500);
    assert!(tw
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["peer"]["port"] == 8001));
    let two = run_list(&[
        "sockets",
        "--netns",
        ns,
        "--state",
        "listening",
        "--state",
        "time-wait",
        "--json",
    ]);
    // 3 TCP listeners, 500 TIME_WAIT, and the unconnected UDP socket (listening, for UDP).
    assert_eq!(two.as_array().unwrap().len(), 504);
    let connected = run_list(&[
        "sockets",
        "--netns",
        ns,
        "--tcp",
        "--state",
        "connected",
        "--json",
    ]);
    assert_eq!(connected.as_array().unwrap().len(), 910);
    let dport = run_list(&["sockets", "--netns", ns, "--dport", "8003", "--json"]);
    assert_eq!(dport.as_array().unwrap().len(), 5);
    let sport = run_list(&["sockets", "--netns", ns, "--sport", "8003", "--json"]);
    assert_eq!(sport.as_array().unwrap().len(), 6);
    let port = run_list(&["sockets", "--netns", ns, "--port", "8003", "--json"]);
    assert_eq!(port.as_array().unwrap().len(), 11);
    let v6 = run_list(&["sockets", "--netns", ns, "-6", "--json"]);
    assert_eq!(v6.as_array().unwrap().len(), 1);
    assert_eq!(v6[0]["local"]["addr"], "::1");
    assert_eq!(v6[0]["local"]["port"], 8002);
    assert_eq!(v6[0]["send_q"], 16);
    let src = run_list(&["sockets", "--netns", ns, "--src", "::1/128", "--json"]);
    assert_eq!(src.as_array().unwrap().len(), 1);
    let dst = run_list(&[
        "sockets",
        "--netns",
        ns,
        "--dst",
        "127.0.0.0/8",
        "--state",
        "established",
        "--json",
    ]);
    assert_eq!(dst.as_array().unwrap().len(), 410);
    let udp = run_list(&["sockets", "--netns", ns, "--udp", "--json"]);
    assert_eq!(udp.as_array().unwrap().len(), 1);
    assert_eq!(udp[0]["state"], "unconn");
    assert_eq!(udp[0]["local"]["port"], 5353);

    // Owners: every socket with an inode here is ours (time-wait and queued children have none).
    let owned = run_list(&[
        "sockets",
        "--netns",
        ns,
        "-p",
        "--state",
        "established",
        "--json",
    ]);
    let with_owner = count_by(&owned, |s| {
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == me)
    });
    assert_eq!(
        with_owner, 405,
        "200 pairs + 5 clients are ours; 5 queued children have no fd yet"
    );

    // tcp_info and timers.
    let info = run_list(&[
        "sockets",
        "--netns",
        ns,
        "-i",
        "--state",
        "established",
        "--dport",
        "8001",
        "--json",
    ]);
    assert_eq!(info.as_array().unwrap().len(), 200);
    for s in info.as_array().unwrap() {
        assert!(s["info"]["rtt_us"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["info"]["unacked"], 0);
        assert_eq!(s["info"]["lost"], 0);
        assert!(s["info"]["cwnd"].as_u64().unwrap() >= 1);
    }
    let twi = run_list(&[
        "sockets",
        "--netns",
        ns,
        "-i",
        "--state",
        "time-wait",
        "--json",
    ]);
    assert!(twi
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["timer"]["kind"] == "time-wait"));

    // listeners: sorted by port, queue fill, owners.
    let l = run_list(&["listeners", "--netns", ns, "--json"]);
    let ports: Vec<u64> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["local"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![5353, 8001, 8002, 8003]);
    assert_eq!(l[3]["backlog"], 4);
    assert_eq!(l[3]["accept_queue"], 5);
    assert_eq!(l[3]["fill_percent"], 125.0);
    assert_eq!(l[1]["backlog"], 128);
    assert_eq!(l[1]["accept_queue"], 0);
    assert_eq!(l[2]["family"], 6);
    assert!(l[0]["backlog"].is_null());
    for x in l.as_array().unwrap() {
        assert_eq!(x["processes"][0]["pid"], me, "{x}");
    }
    // The full queue is said on stderr too; the exit code stays 0 (a listing, not a check).
    let (code, _, err) = run(&["listeners", "--netns", ns]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "accept queue full on 127.0.0.1:8003 (5 waiting, backlog 4): the kernel drops new \
             handshakes there"
        ),
        "{err}"
    );
    assert_eq!(err.matches("accept queue full").count(), 1, "{err}");

    // states: exact counts, peers, ephemeral use of the narrowed range.
    let st = run_json(&["states", "--netns", ns, "--json"]);
    assert_eq!(st["states"]["time-wait"], 500);
    assert_eq!(st["states"]["established"], 410);
    assert_eq!(st["states"]["listening"], 3);
    assert_eq!(st["total"], 913);
    assert_eq!(st["top_peers"][0]["addr"], "127.0.0.1");
    assert_eq!(st["top_peers"][0]["total"], 910);
    assert_eq!(st["top_time_wait"][0]["time_wait"], 500);
    assert_eq!(st["ephemeral"]["low"], 20000);
    assert_eq!(st["ephemeral"]["size"], 1000);
    assert_eq!(st["ephemeral"]["busiest"]["peer"]["port"], 8001);
    assert_eq!(st["ephemeral"]["busiest"]["ports_used"], 700);
    assert_eq!(st["ephemeral"]["busiest"]["time_wait"], 500);
    assert_eq!(st["ephemeral"]["busiest"]["percent"], 70.0);
    assert_eq!(st["settings"]["tcp_tw_reuse"], 0);

    // The human table says the same.
    let (code, table, _) = run(&["states", "--netns", ns]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["time-wait", "500"]),
        "{table}"
    );

    // And socket for socket, sockets agrees with ss in the same namespace.
    let ours = normalize_ours(&all);
    let theirs = normalize_ss(&String::from_utf8_lossy(
        &pop.ns.exec("ss", &["-tuanH"]).stdout,
    ));
    assert_eq!(ours.values().sum::<usize>(), 914);
    assert_eq!(ours, theirs);
}

type Tuple = (String, String, u64, u64, String, String);

fn normalize_ours(v: &Value) -> BTreeMap<Tuple, usize> {
    let mut m = BTreeMap::new();
    for s in v.as_array().unwrap() {
        let ep = |e: &Value| {
            let port = match e["port"].as_u64().unwrap() {
                0 => "*".to_string(),
                p => p.to_string(),
            };
            let a = e["addr"].as_str().unwrap();
            // ss prints a dual-stack socket's wildcard as `*`.
            if a == "::" && s["v6only"] == false {
                format!("*:{port}")
            } else if a.contains(':') {
                format!("[{a}]:{port}")
            } else {
                format!("{a}:{port}")
            }
        };
        let t = (
            s["proto"].as_str().unwrap().to_string(),
            s["state"].as_str().unwrap().to_string(),
            s["recv_q"].as_u64().unwrap(),
            s["send_q"].as_u64().unwrap(),
            ep(&s["local"]),
            ep(&s["peer"]),
        );
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

fn normalize_ss(text: &str) -> BTreeMap<Tuple, usize> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let state = match f[1] {
            "ESTAB" => "established".to_string(),
            "LISTEN" => "listening".to_string(),
            "UNCONN" => "unconn".to_string(),
            other => other.to_ascii_lowercase(),
        };
        let t = (
            f[0].to_string(),
            state,
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].to_string(),
            f[5].to_string(),
        );
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn listeners_port_names_the_owner_or_exits_1() {
    if !support::require_root("listeners_port_names_the_owner_or_exits_1") {
        return;
    }
    let ns = Netns::new();
    // The whole process inside the namespace, so `pid:PID` (which follows the main thread)
    // really names it.
    let web = child::spawn_whole("sockets:listen", &["127.0.0.1:9000".into()], &ns.path());
    let v = run_list(&[
        "listeners",
        "--netns",
        &ns.path(),
        "--port",
        "9000",
        "--json",
    ]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["processes"][0]["pid"], web.pid);
    assert_eq!(v[0]["processes"][0]["name"], "ssc-web");
    let (code, table, _) = run(&["listeners", "--netns", &ns.name, "--port", "9000"]);
    assert_eq!(code, 0);
    assert!(table.contains(&format!("ssc-web({})", web.pid)), "{table}");

    // The namespace of a process works like its name.
    let v = run_list(&[
        "listeners",
        "--netns",
        &format!("pid:{}", web.pid),
        "--json",
    ]);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["local"]["port"], 9000, "{v}");
    assert_eq!(v[0]["processes"][0]["pid"], web.pid);

    let (code, _, err) = run(&["listeners", "--netns", &ns.name, "--port", "9001"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing listens on port 9001"), "{err}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn bad_namespaces_and_privileges_are_environment_errors() {
    if !support::require_root("bad_namespaces_and_privileges_are_environment_errors") {
        return;
    }
    let (code, out, err) = run(&["sockets", "--netns", "ssc-no-such-namespace"]);
    assert_eq!(code, 3);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ip netns list"), "{err}");

    let (code, _, err) = run(&["states", "--netns", "pid:999999999"]);
    assert_eq!(code, 3);
    assert!(err.contains("no process 999999999"), "{err}");

    let (code, _, err) = run(&["listeners", "--netns", "/etc/hostname"]);
    assert_eq!(code, 3);
    assert!(err.contains("not a network namespace"), "{err}");

    // Unprivileged, entering a namespace names the missing capability.
    let ns = Netns::new();
    let out = support::as_nobody(env!("CARGO_BIN_EXE_sockscope"))
        .args(["sockets", "--netns", &ns.name])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
}

/// Udp.RcvbufErrors of the calling thread's namespace, from the kernel's own table.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn memory_shows_buffers_and_the_drops_of_a_full_udp_socket() {
    if !support::require_root("memory_shows_buffers_and_the_drops_of_a_full_udp_socket") {
        return;
    }
    let ns = Netns::new();
    // A 4 KiB receive buffer (the kernel doubles it), never read, sent 200 × 500 bytes: most
    // datagrams find it full, and the kernel counts each drop on the socket and in Udp.
    let (sink, dropped) = ns.within(|| {
        let sink = UdpSocket::bind("127.0.0.1:5400").unwrap();
        support::set_rcvbuf(&sink, 4096);
        let before = udp_rcvbuf_errors();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            tx.send_to(&[7u8; 500], "127.0.0.1:5400").unwrap();
        }
        (sink, udp_rcvbuf_errors() - before)
    });
    assert!(dropped > 100, "only {dropped} datagrams dropped");
    let v = run_list(&["sockets", "--netns", &ns.path(), "-u", "-m", "--json"]);
    let s = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["local"]["port"] == 5400)
        .unwrap_or_else(|| panic!("no socket on 5400: {v:#}"));
    let mem = &s["mem"];
    assert_eq!(mem["drops"], dropped, "{s}");
    assert_eq!(mem["rcvbuf"], 8192, "{s}");
    assert!(mem["rmem_alloc"].as_u64().unwrap() > 0, "{s}");
    assert!(s["recv_q"].as_u64().unwrap() > 0, "{s}");
    // The table has the columns; without -m the JSON has no "mem".
    let (code, table, err) = run(&["sockets", "--netns", &ns.path(), "-u", "-m"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .ends_with("Rmem  Rcvbuf  Wmem  Sndbuf  Drops"),
        "{table}"
    );
    assert!(table.contains(&format!(" {dropped}\n")), "{table}");
    let v = run_list(&["sockets", "--netns", &ns.path(), "-u", "--json"]);
    assert!(v[0].get("mem").is_none(), "{v:#}");
    drop(sink);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sockets_of_one_program_are_read_in_its_own_namespace() {
    if !support::require_root("sockets_of_one_program_are_read_in_its_own_namespace") {
        return;
    }
    let ns = Netns::new();
    // 3 TCP pairs and their listener, 2 UDP sockets, a UNIX pair (not a TCP/UDP socket), all
    // in a namespace sockscope is not in and is not told about.
    let args = [
        "ssc-owner",
        "1024",
        "1024",
        "3",
        "2",
        "1",
        "0",
        "0",
        "/dev/null",
    ]
    .map(String::from);
    let owner = child::spawn_whole("fds:hold", &args, &ns.path());
    let pid = owner.pid.to_string();
    let v = run_list(&["sockets", "--pid", &pid, "--json"]);
    let socks = v.as_array().unwrap();
    let count = |proto: &str, state: &str| {
        socks
            .iter()
            .filter(|s| s["proto"] == proto && s["state"] == state)
            .count()
    };
    assert_eq!(socks.len(), 9, "{v:#}");
    assert_eq!(count("tcp", "listening"), 1, "{v:#}");
    assert_eq!(count("tcp", "established"), 6, "{v:#}");
    assert_eq!(count("udp", "unconn"), 2, "{v:#}");
    for s in socks {
        assert_eq!(
            s["processes"],
            serde_json::json!([{"pid": owner.pid, "name": "ssc-owner"}]),
            "{s}"
        );
    }
    // By name, with the kernel filters on top.
    let v = run_list(&[
        "sockets",
        "--name",
        "ssc-own",
        "-t",
        "--state",
        "listening",
        "--json",
    ]);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v:#}");
    let port = v[0]["local"]["port"].as_u64().unwrap();
    assert!(socks.iter().any(|s| s["local"]["port"] == port));
    // Told to look in another namespace: none of the child's sockets are there.
    let other = Netns::new();
    let v = run_list(&["sockets", "--pid", &pid, "--netns", &other.path(), "--json"]);
    assert_eq!(v, serde_json::json!([]));
    // The table names the owner.
    let (code, table, err) = run(&["sockets", "--pid", &pid, "-u"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        table.matches(&format!("ssc-owner({pid})")).count(),
        2,
        "{table}"
    );
}

/// `ss FLAGS` in `ns` for one protocol, with the Netid column ss leaves out then put back.
fn ss_one(ns: &Netns, proto: &str, flags: &str) -> String {
    String::from_utf8_lossy(&ns.exec("ss", &[flags]).stdout)
        .lines()
        .map(|l| format!("{proto} {l}\n"))
        .collect()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn udp_states_and_dual_stack_listeners_read_like_ss() {
    if !support::require_root("udp_states_and_dual_stack_listeners_read_like_ss") {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        // std sets no IPV6_V6ONLY: with the default net.ipv6.bindv6only=0 these are dual-stack.
        let dual = TcpListener::bind("[::]:6300").unwrap();
        let v6only = listen("[::]:6301", 16);
        let dual_udp = UdpSocket::bind("[::]:5300").unwrap();
        let a = UdpSocket::bind("127.0.0.1:5301").unwrap();
        let b = UdpSocket::bind("127.0.0.1:5302").unwrap();
        b.connect("127.0.0.1:5301").unwrap();
        // The dual-stack listener takes IPv4; the V6ONLY one refuses it.
        let c = TcpStream::connect("127.0.0.1:6300").unwrap();
        let (s, _) = dual.accept().unwrap();
        let refused = TcpStream::connect("127.0.0.1:6301").unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
        (dual, v6only, dual_udp, a, b, c, s)
    });
    let n = ns.name.as_str();

    // UDP states by ss's names: two unconnected, one connected.
    let udp = run_list(&["sockets", "--netns", n, "-u", "--json"]);
    let state = |port: u64| {
        udp.as_array()
            .unwrap()
            .iter()
            .find(|s| s["local"]["port"] == port)
            .unwrap_or_else(|| panic!("no UDP socket on {port}: {udp:#}"))["state"]
            .clone()
    };
    assert_eq!(state(5300), "unconn");
    assert_eq!(state(5301), "unconn");
    assert_eq!(state(5302), "established");
    assert_eq!(
        normalize_ours(&udp),
        normalize_ss(&ss_one(&ns, "udp", "-uanH"))
    );
    // "listening" for UDP is what ss -lu lists: the unconnected sockets.
    let listening = run_list(&[
        "sockets",
        "--netns",
        n,
        "-u",
        "--state",
        "listening",
        "--json",
    ]);
    let ss_l = ss_one(&ns, "udp", "-lunH");
    assert_eq!(ss_l.lines().count(), 2);
    assert_eq!(normalize_ours(&listening), normalize_ss(&ss_l));
    let l = run_list(&["listeners", "--netns", n, "-u", "--json"]);
    assert_eq!(l.as_array().unwrap().len(), 2, "{l:#}");
    let (code, table, _) = run(&["sockets", "--netns", n, "-u"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["udp", "unconn", "0", "0", "*:5300", "*:*"]),
        "{table}"
    );

    // The dual-stack listener: v6only false, shown as `*` like ss, found for IPv4.
    let all = run_list(&["sockets", "--netns", n, "-t", "--json"]);
    let v6only = |port: u64| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["local"]["port"] == port && s["state"] == "listening")
            .unwrap()["v6only"]
            .clone()
    };
    assert_eq!(v6only(6300), false);
    assert_eq!(v6only(6301), true);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["family"] == 4)
        .all(|s| s["v6only"].is_null()));
    assert_eq!(
        normalize_ours(&all),
        normalize_ss(&ss_one(&ns, "tcp", "-tanH"))
    );
    let (code, out, err) = run(&["listeners", "--netns", n, "-4", "--port", "6300", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let v = &doc["listeners"];
    assert_eq!(v.as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(v[0]["family"], 6);
    assert_eq!(v[0]["v6only"], false);
    let (code, table, _) = run(&["listeners", "--netns", n, "-4", "--port", "6300"]);
    assert_eq!(code, 0);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("tcp6   *      6300"),
        "{table}"
    );
    // The IPv6-only listener really refuses IPv4: nothing for -4.
    let (code, _, err) = run(&["listeners", "--netns", n, "-4", "--port", "6301"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing listens on port 6301"), "{err}");
    drop(keep);
}

/// Child roles of this module.
pub fn child(role: &str, args: &[String]) -> bool {
    match role {
        "sockets:listen" => {
            child::enter_netns();
            let l = listen(&args[0], 64);
            child::serve("ssc-web", "", |_| {});
            drop(l);
            true
        }
        "sockets:unix" => {
            use std::io::Write;
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::net::{self, UnixDatagram, UnixListener, UnixStream};
            child::enter_netns();
            let dir = std::path::Path::new(&args[0]);
            let l = UnixListener::bind(dir.join("l.sock")).unwrap();
            let client = UnixStream::connect(dir.join("l.sock")).unwrap();
            let (server, _) = l.accept().unwrap();
            // Five bytes the server never reads; one connection never accepted.
            (&client).write_all(b"hello").unwrap();
            let pending = UnixStream::connect(dir.join("l.sock")).unwrap();
            // SOCK_SEQPACKET pair: two connected ends, no name.
            let mut fds = [0; 2];
            // SAFETY: socketpair fills the two ints it is given.
            let rc = unsafe {
                libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr())
            };
            assert_eq!(rc, 0);
            let abs = net::SocketAddr::from_abstract_name(args[1].as_bytes()).unwrap();
            let dgram = UnixDatagram::bind_addr(&abs).unwrap();
            child::serve("ssc-unix", "", |_| {});
            drop((l, client, server, pending, dgram));
            // SAFETY: closing the fds socketpair returned.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            true
        }
        _ => false,
    }
}

/// A listing longer than the table's measured first chunk streams: every row is written,
/// columns still line up (widths from the chunk and the address families), and `--jsonl`
/// gives exactly `--json`'s records, one per line.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn long_listings_stream_in_every_format() {
    if !support::require_root("long_listings_stream_in_every_format") {
        return;
    }
    const N: usize = 2100; // more than render::columns::CHUNK (2048)
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let _l = ns.within(|| {
        let l = listen("127.0.0.1:7400", 128);
        make_time_wait(&l, N);
        l
    });
    wait_for_state(&ns, "time-wait", N);
    let n = ns.name.as_str();

    let records = run_list(&["sockets", "--netns", n, "-t", "--json"]);
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), N + 1);
    let (code, lines, err) = run(&["sockets", "--netns", n, "-t", "--jsonl"]);
    assert_eq!(code, 0, "{err}");
    // The same records (TIME_WAIT timers tick between the two runs: compared without them).
    let key = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("timer");
        v.to_string()
    };
    let mut jsonl: Vec<String> = lines
        .lines()
        .map(|l| key(&serde_json::from_str(l).unwrap()))
        .collect();
    let mut json: Vec<String> = records.iter().map(key).collect();
    jsonl.sort();
    json.sort();
    assert!(jsonl == json, "--jsonl and --json differ");

    let (code, table, err) = run(&["sockets", "--netns", n, "-t"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), N + 2, "header, the listener and {N} TIME_WAIT");
    let local = rows[0].find("Local").unwrap();
    let peer = rows[0].find("Peer").unwrap();
    // Room for an IPv6 endpoint was left (-t dumps both families), so nothing overflows.
    assert!(peer - local >= 47 + 2, "{}", rows[0]);
    for r in &rows[1..] {
        assert!(r.starts_with("tcp  "), "{r}");
        assert_eq!(&r[local..local + 10], "127.0.0.1:", "{r}");
        let p = &r[peer..];
        assert!(p.starts_with("127.0.0.1:") || p == "0.0.0.0:*", "{r}");
    }
    assert_eq!(rows.iter().filter(|r| r.contains("time-wait")).count(), N);
}

/// `sockets -x`: UNIX sockets of a child process (a bound listener with an accepted and a
/// pending connection, a seqpacket pair, an abstract datagram socket) read exactly as `ss -xa`
/// reads them, with both ends' owners under -p.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn unix_sockets_read_like_ss_with_both_ends_owners() {
    if !support::require_root("unix_sockets_read_like_ss_with_both_ends_owners") {
        return;
    }
    let ns = Netns::new();
    let dir = std::env::temp_dir().join(format!("ssc-x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let abs = format!("ssc-x-{}", std::process::id());
    let c = child::spawn(
        "sockets:unix",
        &[dir.display().to_string(), abs.clone()],
        Some(&ns.path()),
    );
    let path = dir.join("l.sock").display().to_string();
    let n = ns.name.as_str();

    let all = run_list(&["sockets", "-x", "--netns", n, "--json"]);
    let all = all.as_array().unwrap();
    // The same sockets, fields and numbers as ss -xa in the namespace.
    let ours: BTreeSet<String> = all
        .iter()
        .map(|s| {
            let state = match s["state"].as_str().unwrap() {
                "established" => "ESTAB",
                "listening" => "LISTEN",
                "unconn" => "UNCONN",
                other => panic!("state {other}"),
            };
            let netid = match s["type"].as_str().unwrap() {
                "stream" => "u_str",
                "dgram" => "u_dgr",
                "seqpacket" => "u_seq",
                other => panic!("type {other}"),
            };
            format!(
                "{netid} {state} {} {} {} {} * {}",
                s["recv_q"],
                s["send_q"],
                s["path"].as_str().unwrap_or("*"),
                s["inode"],
                s["peer_inode"]
            )
        })
        .collect();
    let out = ns.exec("ss", &["-xaH"]);
    let theirs: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(ours, theirs);

    let at = |p: &str, state: &str| {
        all.iter()
            .filter(|s| s["path"] == p && s["state"] == state)
            .collect::<Vec<_>>()
    };
    let listener = at(&path, "listening");
    assert_eq!(listener.len(), 1, "{all:?}");
    assert_eq!(
        listener[0]["recv_q"], 1,
        "one connection waits for accept()"
    );
    assert_eq!(listener[0]["type"], "stream");
    // The accepted end carries the listener's path and holds the 5 unread bytes.
    let accepted = at(&path, "established");
    assert_eq!(accepted.len(), 1, "{all:?}");
    assert_eq!(accepted[0]["recv_q"], 5);
    let client = all
        .iter()
        .find(|s| s["inode"] == accepted[0]["peer_inode"])
        .unwrap();
    assert!(client.get("path").is_none(), "{client}");
    assert_eq!(client["peer_inode"], accepted[0]["inode"]);
    let abstract_ = at(&format!("@{abs}"), "unconn");
    assert_eq!(abstract_.len(), 1, "{all:?}");
    assert_eq!(abstract_[0]["type"], "dgram");
    let pair: Vec<&Value> = all.iter().filter(|s| s["type"] == "seqpacket").collect();
    assert_eq!(pair.len(), 2);
    assert_eq!(pair[0]["peer_inode"], pair[1]["inode"]);

    // -p: both ends' processes.
    let owned = run_list(&["sockets", "-xp", "--netns", n, "--json"]);
    let me = serde_json::json!([{"pid": c.pid, "name": "ssc-unix"}]);
    let acc = owned
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["inode"] == accepted[0]["inode"])
        .unwrap();
    assert_eq!((&acc["processes"], &acc["peer_processes"]), (&me, &me));
    let (code, table, err) = run(&["sockets", "-xp", "--netns", n]);
    assert_eq!(code, 0, "{err}");
    let row = table
        .lines()
        .find(|l| l.contains(&path) && l.contains("established"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.ends_with(&format!("ssc-unix({0}) ⇄ ssc-unix({0})", c.pid)),
        "{row}"
    );
    assert!(row.starts_with("u_str"), "{row}");
    // -l: listening and unconnected, as ss -xl.
    let l = run_list(&["sockets", "-xl", "--netns", n, "--json"]);
    assert_eq!(l.as_array().unwrap().len(), 2, "{l:#}");
    // -x is not -t.
    let (code, _, err) = run(&["sockets", "-x", "-t"]);
    assert_eq!(code, 2, "{err}");
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `listeners --port N --wait D`: returns as soon as something listens (exit 0, the row
/// shown), or exits 1 when nothing did within D. No timing is asserted: only that the command
/// was still waiting when the listener was made, and how it ended.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn listeners_wait_for_a_port_to_open() {
    if !support::require_root("listeners_wait_for_a_port_to_open") {
        return;
    }
    let ns = Netns::new();
    let mut waiting = support::sockscope()
        .args([
            "listeners",
            "--netns",
            &ns.name,
            "--port",
            "7501",
            "--wait",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to start polling (not asserted: it would pass either way).
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "exited before anything listened"
    );
    let _l = ns.within(|| listen("127.0.0.1:7501", 7));
    let out = waiting.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].starts_with("tcp4   127.0.0.1  7501        7"),
        "{text}"
    );

    // Nothing on another port: exit 1 once the wait is over, said on stderr.
    let (code, _, err) = run(&[
        "listeners",
        "--netns",
        &ns.name,
        "--port",
        "7502",
        "--wait",
        "300ms",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nothing listens on port 7502 in network namespace")
            && err.contains("(waited 300ms)"),
        "{err}"
    );
    // Zero, or no port to wait for, is a usage error.
    for args in [
        &["listeners", "--port", "7502", "--wait", "0"][..],
        &["listeners", "--wait", "1s"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

/// The established sockets of a namespace by (local port, peer port), as ss sees them.
fn ss_established(ns: &Netns) -> Vec<(u16, u16)> {
    let out = ns.exec("ss", &["-Htn", "state", "established"]);
    assert!(out.status.success());
    let port = |s: &str| s.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let mut v: Vec<(u16, u16)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (port(f[2]), port(f[3]))
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn kill_destroys_exactly_the_matching_connections() {
    if !support::require_root("kill_destroys_exactly_the_matching_connections") {
        return;
    }
    let ns = Netns::new();
    // Three connections to each of two ports, both ends held here.
    let (_listeners, mut conns) = ns.within(|| {
        let mut ls = Vec::new();
        let mut conns = Vec::new();
        for port in [7601u16, 7602] {
            let l = listen(&format!("127.0.0.1:{port}"), 16);
            for _ in 0..3 {
                let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let (a, _) = l.accept().unwrap();
                conns.push((port, c, a));
            }
            ls.push(l);
        }
        (ls, conns)
    });
    assert_eq!(ss_established(&ns).len(), 12);

    let path = ns.path();
    let (code, out, err) = run(&[
        "sockets", "--netns", &path, "-K", "--yes", "--json", "dport", "=", ":7601",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("killed 3 of 3 matching sockets"), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let killed = doc["sockets"].as_array().unwrap();
    assert_eq!(killed.len(), 3, "{doc}");
    assert!(killed.iter().all(|s| s["peer"]["port"] == 7601), "{doc}");

    // The killed ends see ECONNABORTED, their peers a reset; the other port's are untouched.
    for (port, c, a) in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        a.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 1];
        if *port == 7601 {
            let e = c.read(&mut buf).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ECONNABORTED), "{e}");
            let e = a.read(&mut buf).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}");
        } else {
            let e = a.read(&mut buf).unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            );
        }
    }
    let left = ss_established(&ns);
    assert_eq!(left.len(), 6, "{left:?}");
    assert!(
        left.iter().all(|&(l, p)| l == 7602 || p == 7602),
        "{left:?}"
    );

    // Nothing matches any more: nothing killed, exit 0.
    let (code, _, err) = run(&["sockets", "--netns", &path, "-K", "--yes", "dport = :7601"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("nothing killed"), "{err}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn kill_refuses_without_filter_terminal_privilege_or_namespace() {
    if !support::require_root("kill_refuses_without_filter_terminal_privilege_or_namespace") {
        return;
    }
    let ns = Netns::new();
    let _l = ns.within(|| listen("127.0.0.1:7603", 4));
    let path = ns.path();
    let listening = || ss_listening_ports(&ns);
    assert_eq!(listening(), vec![7603]);

    // No filter: it would kill everything.
    let (code, _, err) = run(&["sockets", "--netns", &path, "-K", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("sockscope: -K needs a filter"), "{err}");
    // A state alone names no socket in particular either.
    let (code, _, err) = run(&[
        "sockets",
        "--netns",
        &path,
        "-K",
        "--yes",
        "state",
        "listening",
    ]);
    assert_eq!(code, 2, "{err}");

    // Not a terminal (stdin is /dev/null here) and no --yes.
    let (code, _, err) = run(&["sockets", "--netns", &path, "-K", "sport = :7603"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("add --yes"), "{err}");

    // Unprivileged: the capability is named before anything else is tried.
    let out = support::as_nobody(env!("CARGO_BIN_EXE_sockscope"))
        .args(["sockets", "--netns", &path, "-K", "--yes", "sport = :7603"])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A namespace that is gone.
    let gone = Netns::new();
    let gone_path = gone.path();
    drop(gone);
    let (code, out, err) = run(&[
        "sockets",
        "--netns",
        &gone_path,
        "-K",
        "--yes",
        "sport = :7603",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("does not exist"), "{err}");

    // After all of it, the listener is still there.
    assert_eq!(listening(), vec![7603]);
}

fn ss_listening_ports(ns: &Netns) -> Vec<u16> {
    let out = ns.exec("ss", &["-Htln"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[3].rsplit(':').next().unwrap().parse().unwrap()
        })
        .collect()
}

/// Closes a TCP socket with a reset (SO_LINGER 0): no TIME_WAIT left behind.
fn abort(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a valid linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lin as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

impl Watch {
    /// The change records up to the next tick (bounded wait).
    fn until_tick(&self) -> (Vec<Value>, Value) {
        let mut changes = Vec::new();
        loop {
            let v = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a record within 60 s");
            if v["type"] == "tick" {
                return (changes, v);
            }
            changes.push(v);
        }
    }

    /// Reads readings until `want` change records of `kind` came (bounded), and returns them.
    fn changes(&self, kind: &str, want: usize) -> Vec<Value> {
        let mut got = Vec::new();
        for _ in 0..200 {
            let (changes, tick) = self.until_tick();
            assert_eq!(
                tick["new"].as_u64().unwrap() as usize + tick["gone"].as_u64().unwrap() as usize,
                changes.len(),
                "{tick}"
            );
            for c in changes {
                assert_eq!(c["type"], kind, "{c}");
                got.push(c);
            }
            if got.len() >= want {
                break;
            }
        }
        got
    }
}

/// (local port, peer port) of change records (a connection's state when first seen may be
/// syn-recv or established: not asserted).
fn tuples(v: &[Value]) -> BTreeSet<(u64, u64)> {
    v.iter()
        .map(|s| {
            (
                s["local"]["port"].as_u64().unwrap(),
                s["peer"]["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn watch_reports_exactly_the_sockets_that_come_and_go() {
    if !support::require_root("watch_reports_exactly_the_sockets_that_come_and_go") {
        return;
    }
    let ns = Netns::new();
    let path = ns.path();
    let w = Watch::start(&[
        "sockets", "--netns", &path, "-t", "--jsonl", "--watch", "100ms",
    ]);
    // An empty namespace: the first reading has nothing.
    let (first, _) = w.until_tick();
    assert!(first.is_empty(), "{first:?}");

    let (l, c, a) = ns.within(|| {
        let l = listen("127.0.0.1:7801", 4);
        let c = TcpStream::connect("127.0.0.1:7801").unwrap();
        let (a, _) = l.accept().unwrap();
        (l, c, a)
    });
    let eph = c.local_addr().unwrap().port() as u64;
    let want: BTreeSet<(u64, u64)> = [(7801, 0), (eph, 7801), (7801, eph)].into_iter().collect();
    let new = w.changes("new", 3);
    assert_eq!(new.len(), 3, "{new:?}");
    assert_eq!(tuples(&new), want);
    assert!(new.iter().any(|s| s["state"] == "listening"), "{new:?}");

    // Both ends reset, the listener closed: the same three go, and nothing else happens.
    abort(c);
    drop(a);
    drop(l);
    let gone = w.changes("gone", 3);
    assert_eq!(gone.len(), 3, "{gone:?}");
    assert_eq!(tuples(&gone), want);
    let (after, tick) = w.until_tick();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(tick["total"], 0);
    w.stop();

    // An interval of zero is a usage error.
    let (code, _, err) = run(&["sockets", "--watch", "0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["listeners", "--watch", "0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn listeners_watch_follows_listeners() {
    if !support::require_root("listeners_watch_follows_listeners") {
        return;
    }
    let ns = Netns::new();
    let path = ns.path();
    let w = Watch::start(&["listeners", "--netns", &path, "--jsonl", "--watch", "100ms"]);
    let (first, _) = w.until_tick();
    assert!(first.is_empty(), "{first:?}");
    let l = ns.within(|| listen("127.0.0.1:7802", 9));
    let new = w.changes("new", 1);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["local"]["port"], 7802);
    assert_eq!(new[0]["backlog"], 9);
    drop(l);
    let gone = w.changes("gone", 1);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["local"]["port"], 7802);
    w.stop();
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn watch_rate_measures_a_connection_moving_known_bytes() {
    if !support::require_root("watch_rate_measures_a_connection_moving_known_bytes") {
        return;
    }
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ns = Netns::new();
    let path = ns.path();
    let (_l, mut c, mut a) = ns.within(|| {
        let l = listen("127.0.0.1:7803", 4);
        let c = TcpStream::connect("127.0.0.1:7803").unwrap();
        let (a, _) = l.accept().unwrap();
        (l, c, a)
    });
    let eph = c.local_addr().unwrap().port();
    // 64 KiB every 100 ms: about 640 KiB/s while it runs, read as it comes.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..600 {
                if stop.load(Ordering::Relaxed) || c.write_all(&chunk).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while a.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let w = Watch::start(&[
        "sockets",
        "--netns",
        &path,
        "-t",
        "-p",
        "--jsonl",
        "--watch",
        "300ms",
        "--rate",
        "state",
        "established",
    ]);
    let expected = 64.0 * 1024.0 * 10.0;
    let (mut sender, mut receiver, mut process) = (None, None, None);
    for _ in 0..100 {
        let mut rest = Vec::new();
        loop {
            let v = w
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a record");
            if v["type"] == "tick" {
                break;
            }
            rest.push(v);
        }
        for r in rest {
            let local = r["local"]["port"].as_u64();
            match r["type"].as_str().unwrap() {
                "rate" if local == Some(eph as u64) && r["rate"]["sent"].as_f64() > Some(0.0) => {
                    sender = Some(r)
                }
                "rate" if local == Some(7803) && r["rate"]["received"].as_f64() > Some(0.0) => {
                    receiver = Some(r)
                }
                "process" if r["pid"] == std::process::id() && r["sent"].as_f64() > Some(0.0) => {
                    process = Some(r)
                }
                _ => {}
            }
        }
        if sender.is_some() && receiver.is_some() && process.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    w.stop();
    writer.join().unwrap();
    let (sender, receiver, process) = (sender.unwrap(), receiver.unwrap(), process.unwrap());
    // The order of magnitude only: the writer's pace on a loaded machine is not exact.
    let sent = sender["rate"]["sent"].as_f64().unwrap();
    assert!(sent > expected / 10.0 && sent < expected * 10.0, "{sender}");
    let received = receiver["rate"]["received"].as_f64().unwrap();
    assert!(
        received > expected / 10.0 && received < expected * 10.0,
        "{receiver}"
    );
    // Both ends are held here: the process's sums count both connections.
    assert_eq!(process["connections"], 2, "{process}");
    assert!(process["received"].as_f64().unwrap() > 0.0, "{process}");
    drop(reader);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sort_orders_sockets_by_queue_and_listeners_by_fill() {
    if !support::require_root("sort_orders_sockets_by_queue_and_listeners_by_fill") {
        return;
    }
    use std::io::Write;
    let ns = Netns::new();
    let path = ns.path();
    // Three unread amounts on the accepted ends; listeners 10% (1 of 10), 50% (1 of 2) and
    // 0% full, in port order.
    let _keep = ns.within(|| {
        let l = listen("127.0.0.1:7810", 16);
        let mut conns = Vec::new();
        for n in [10usize, 300, 50] {
            let mut c = TcpStream::connect("127.0.0.1:7810").unwrap();
            c.write_all(&vec![1u8; n]).unwrap();
            let (a, _) = l.accept().unwrap();
            conns.push((c, a));
        }
        let a = listen("127.0.0.1:7811", 10);
        let b = listen("127.0.0.1:7812", 2);
        let c = listen("127.0.0.1:7813", 5);
        let pending = vec![
            TcpStream::connect("127.0.0.1:7811").unwrap(),
            TcpStream::connect("127.0.0.1:7812").unwrap(),
        ];
        (l, conns, a, b, c, pending)
    });
    let queues = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec![
            "sockets", "--netns", &path, "-t", "--json", "--sport", "7810",
        ];
        args.extend_from_slice(extra);
        run_list(&args)
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "established")
            .map(|s| s["recv_q"].as_u64().unwrap())
            .collect()
    };
    // Bounded wait for the bytes to be queued (loopback: at once, but not asserted as such).
    let deadline = Instant::now() + Duration::from_secs(30);
    while queues(&[]).iter().sum::<u64>() != 360 {
        assert!(Instant::now() < deadline, "{:?}", queues(&[]));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(queues(&["--sort", "queue"]), vec![300, 50, 10]);
    assert_eq!(queues(&["--sort", "queue", "-p"]), vec![300, 50, 10]);
    let owned = run_list(&[
        "sockets", "--netns", &path, "-t", "--json", "--sort", "owner",
    ]);
    // Every socket here is the test's but the two connections still in an accept queue
    // (no inode, no owner yet): those come last.
    let pids: Vec<Option<u64>> = owned
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["processes"][0]["pid"].as_u64())
        .collect();
    let me = Some(std::process::id() as u64);
    assert_eq!(pids.len(), 14, "{owned}");
    assert!(pids[..12].iter().all(|p| *p == me), "{owned}");
    assert_eq!(pids[12..], [None, None], "{owned}");

    let ports = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["listeners", "--netns", &path, "--json"];
        args.extend_from_slice(extra);
        run_list(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["local"]["port"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ports(&[]), vec![7810, 7811, 7812, 7813]);
    assert_eq!(ports(&["--sort", "fill"]), vec![7812, 7811, 7810, 7813]);
    assert_eq!(ports(&["--sort", "queue"]), vec![7811, 7812, 7810, 7813]);

    let (code, _, err) = run(&["sockets", "--sort", "fill"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("listeners --sort fill"), "{err}");
}

/// Runs sockscope on a pseudo-terminal (util-linux `script`), typing `answer` once it has
/// had time to ask; returns its exit code and everything the terminal showed.
fn on_terminal(args: &[&str], answer: &str) -> (i32, String) {
    use std::io::Write;
    let cmd = std::iter::once(env!("CARGO_BIN_EXE_sockscope").to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    // The answer waits in the terminal's input until sockscope reads it after its question.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn kill_on_a_terminal_lists_and_asks_first() {
    if !support::require_root("kill_on_a_terminal_lists_and_asks_first") {
        return;
    }
    let ns = Netns::new();
    let path = ns.path();
    let (_l, _c, _a) = ns.within(|| {
        let l = listen("127.0.0.1:7605", 4);
        let c = TcpStream::connect("127.0.0.1:7605").unwrap();
        let (a, _) = l.accept().unwrap();
        (l, c, a)
    });
    let args = ["sockets", "--netns", &path, "-K", "dport = :7605"];
    let (code, shown) = on_terminal(&args, "n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains(":7605"), "{shown}");
    assert!(shown.contains("kill 1 socket? [y/N]"), "{shown}");
    assert!(shown.contains("nothing killed"), "{shown}");
    assert_eq!(ss_established(&ns).len(), 2);

    let (code, shown) = on_terminal(&args, "y");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("killed 1 of 1 matching socket"), "{shown}");
    assert!(ss_established(&ns).is_empty());
}
