//! `exporter` against real parts: a real Prometheus scraping it (exact numbers through the
//! query API, the accept-queue alert from the shipped rules), node_exporter reading its
//! textfile, promtool checking the rules and the exposition, and a few hundred malformed
//! requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::{populate, Podman};
use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, child, Netns};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/prometheus/sockscope-rules.yml"
);
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/grafana/sockscope-dashboard.json"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/prometheus/sockscope-rules.test.yml"
);

/// A process name with every character the exposition format must escape (comm holds 15
/// bytes).
const WEIRD: &str = "q\"b\\c\nd";

/// Kills (by pid) and reaps a server this test started.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success()),
        "{name} is missing: run scripts/setup (Debian packages prometheus, prometheus-node-exporter)"
    );
    Command::new(name)
}

/// A loopback port free right now (for servers that cannot report the one they took).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(what: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "sockscope-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `sockscope exporter --listen 127.0.0.1:0 ARGS` and returns it with its address.
fn start_exporter(args: &[&str]) -> (Server, SocketAddr) {
    let mut c = support::sockscope()
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("sockscope: exporter listening on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address on stderr: {line:?}"))
        .parse()
        .unwrap();
    // Keep draining stderr so a chatty exporter never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).unwrap_or(0) > 0 {
            eprint!("exporter: {sink}");
            sink.clear();
        }
    });
    (Server(c), addr)
}

/// One HTTP/1.0 request (a test client, not the code under test): (status, body).
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    // Bounded by the exporter's own 60 s connection limit: an --all-netns cold scrape of a
    // node busy with other benchmarks can take a while.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"))
}

/// The value of the one sample line that starts with `series` (name and labels as written).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// `promtool check metrics` on an exposition body.
fn promtool_accepts(body: &str) {
    let mut c = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Prometheus {
    _server: Server,
    port: u16,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our own Prometheus on a free loopback port with private storage, scraping `target` every
/// second and evaluating the shipped rules every second.
fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = temp_dir("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {RULES}\n\
             scrape_configs:\n  - job_name: sockscope\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let server = tool("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    Prometheus {
        _server: Server(server),
        port,
        dir,
    }
}

impl Prometheus {
    /// The query's result vector (empty while Prometheus starts or has no such series).
    fn query(&self, q: &str) -> Vec<Value> {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let Ok(mut s) = TcpStream::connect(addr) else {
            return Vec::new();
        };
        let q: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let _ = write!(s, "GET /api/v1/query?query={q} HTTP/1.0\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let Some((_, body)) = text.split_once("\r\n\r\n") else {
            return Vec::new();
        };
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Polls (up to 30 s) until the query returns something for which `done` holds.
    fn wait_for(&self, q: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.query(q);
            if done(&r) {
                return r;
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!("{q}: got {r:?} after 30 s; prometheus log (last lines): {tail:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The value of a query that should return one series equal to `want`.
    fn wait_for_value(&self, q: &str, want: f64) {
        self.wait_for(q, |r| {
            r.len() == 1 && r[0]["value"][1].as_str().and_then(|v| v.parse().ok()) == Some(want)
        });
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn prometheus_scrapes_exact_numbers_and_the_accept_queue_alert_fires() {
    if !support::require_root("prometheus_scrapes_exact_numbers_and_the_accept_queue_alert_fires") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    ns.sysctl("net.ipv4.ip_local_port_range", "20000 20999");
    let _keep = ns.within(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l = listen("127.0.0.1:8001", 128);
        make_time_wait(&l, 40);
        // A listener nobody accepts on: 5 waiting against a backlog of 4, kept full.
        let full = listen("127.0.0.1:8003", 4);
        for _ in 0..5 {
            keep.push(Box::new(TcpStream::connect("127.0.0.1:8003").unwrap()));
        }
        keep.push(Box::new(l));
        keep.push(Box::new(full));
        keep
    });
    wait_for_state(&ns, "time-wait", 40);
    // A process in the namespace whose name needs escaping, holding a listener.
    let weird = child::spawn_whole("exporter:weird", &[], &ns.path());
    let (_exporter, addr) = start_exporter(&["--netns", &ns.name]);

    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    promtool_accepts(&body);
    let n = &ns.name;
    let tw = format!(r#"sockscope_sockets{{proto="tcp",state="time-wait",netns="{n}"}}"#);
    assert_eq!(sample(&body, &tw), Some(40.0), "{body}");
    let q8003 = format!(
        r#"sockscope_listener_accept_queue{{addr="127.0.0.1",port="8003",process="",netns="{n}"}}"#
    );
    assert_eq!(sample(&body, &q8003), Some(5.0), "{body}");
    // The escaped name, as the format writes it.
    let escaped = format!(
        r#"sockscope_listener_backlog{{addr="127.0.0.1",port="9000",process="q\"b\\c\nd",netns="{n}"}}"#
    );
    assert_eq!(sample(&body, &escaped), Some(7.0), "{body}");
    let fds = format!(
        r#"sockscope_process_fds{{pid="{}",comm="q\"b\\c\nd",netns="{n}"}}"#,
        weird.pid
    );
    assert!(sample(&body, &fds).is_some(), "{body}");

    let prom = start_prometheus(addr);
    prom.wait_for_value(r#"up{job="sockscope"}"#, 1.0);
    prom.wait_for_value(r#"sockscope_sockets{proto="tcp",state="time-wait"}"#, 40.0);
    prom.wait_for_value(r#"sockscope_listener_accept_queue{port="8003"}"#, 5.0);
    prom.wait_for_value(r#"sockscope_listener_backlog{port="8003"}"#, 4.0);
    prom.wait_for_value(
        r#"sockscope_ephemeral_ports_time_wait{peer="127.0.0.1:8001"}"#,
        40.0,
    );
    prom.wait_for_value(r#"sockscope_ephemeral_ports_range_size"#, 1000.0);
    // Prometheus read the escaped label back to the very bytes of the process name.
    let r = prom.wait_for(r#"sockscope_listener_backlog{port="9000"}"#, |r| {
        r.len() == 1
    });
    assert_eq!(r[0]["metric"]["process"], WEIRD);
    // The shipped rule sees the full queue (pending first: the rule waits `for: 1m`).
    let r = prom.wait_for(
        r#"ALERTS{alertname="SockscopeAcceptQueueFull",port="8003"}"#,
        |r| !r.is_empty(),
    );
    assert_eq!(r[0]["metric"]["symptom"], "accept-queue");
    assert_eq!(r[0]["metric"]["netns"], n.as_str());
    // And nothing about the listener that is fine.
    assert!(prom
        .query(r#"ALERTS{alertname="SockscopeAcceptQueueFull",port="8001"}"#)
        .is_empty());
    drop(weird);
}

/// The unacked bytes of a socket we own (SIOCOUTQ): 0 once the peer has everything.
fn unacked(fd: &impl std::os::fd::AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for a TCP socket we own.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0);
    n
}

/// The sample lines of `metric` whose labels contain every one of `labels` (`k="v"`).
fn lines_with<'a>(body: &'a str, metric: &str, labels: &[&str]) -> Vec<&'a str> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .filter(|l| labels.iter().all(|k| l.contains(k)))
        .collect()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn all_netns_labels_each_namespace_and_container_with_exact_numbers() {
    if !support::require_root("all_netns_labels_each_namespace_and_container_with_exact_numbers") {
        return;
    }
    let a = Netns::new();
    let b = Netns::new();
    a.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let c = Podman::run(&format!("ssc-exp-{}", std::process::id()));
    // a: 12 TIME_WAIT, and a listener nobody accepts on (5 waiting, backlog 4).
    let _keep_a = a.within(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l = listen("127.0.0.1:8001", 128);
        make_time_wait(&l, 12);
        let full = listen("127.0.0.1:8003", 4);
        for _ in 0..5 {
            keep.push(Box::new(TcpStream::connect("127.0.0.1:8003").unwrap()));
        }
        keep.push(Box::new(l));
        keep.push(Box::new(full));
        keep
    });
    wait_for_state(&a, "time-wait", 12);
    // b: 3 connections closed by their server with data unread (TCPAbortOnClose 3), and a
    // reader that never reads 200,000 bytes.
    let _keep_b = b.within(|| {
        let l = listen("127.0.0.1:8002", 16);
        let mut keep = Vec::new();
        for _ in 0..3 {
            let mut c = TcpStream::connect("127.0.0.1:8002").unwrap();
            c.write_all(b"unread").unwrap();
            let (s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1];
            // Blocks until the bytes are in: closing now resets.
            s.peek(&mut buf).unwrap();
            drop(s);
            keep.push(c);
        }
        keep
    });
    let stuck = child::spawn(
        "doctor:stuck-reader",
        &["127.0.0.1:7000".into()],
        Some(&b.path()),
    );
    let _client = b.within(|| {
        let mut c = TcpStream::connect("127.0.0.1:7000").unwrap();
        c.write_all(&[7u8; 200_000]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while unacked(&c) > 0 {
            assert!(Instant::now() < deadline, "never acked");
            std::thread::sleep(Duration::from_millis(10));
        }
        c
    });
    // The container: 7 TIME_WAIT in its namespace.
    let _keep_c = populate(&c.netns(), 7);

    let (_exporter, addr) = start_exporter(&["--all-netns"]);
    let (status, first) = get(addr, "/metrics");
    assert_eq!(status, 200);
    promtool_accepts(&first);
    let (_, body) = get(addr, "/metrics");
    promtool_accepts(&body);

    let (na, nb) = (
        format!(r#"netns="{}""#, a.name),
        format!(r#"netns="{}""#, b.name),
    );
    let tw = r#"state="time-wait""#;
    let one = |metric: &str, labels: &[&str]| -> f64 {
        let l = lines_with(&body, metric, labels);
        assert_eq!(l.len(), 1, "{metric} {labels:?}: {l:?}\n{body}");
        l[0].rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(one("sockscope_sockets", &[tw, &na, r#"proto="tcp""#]), 12.0);
    assert_eq!(one("sockscope_sockets", &[tw, &nb, r#"proto="tcp""#]), 0.0);
    assert_eq!(
        one("sockscope_listener_accept_queue", &[&na, r#"port="8003""#]),
        5.0
    );
    assert_eq!(
        one(
            "sockscope_netstat_tcp_aborts_total",
            &[&nb, r#"reason="close""#]
        ),
        3.0
    );
    assert_eq!(
        one(
            "sockscope_netstat_tcp_aborts_total",
            &[&na, r#"reason="close""#]
        ),
        0.0
    );
    // Findings where they live: the full queue in a, nothing of it in b.
    assert_eq!(
        one("sockscope_finding", &[r#"symptom="accept-queue""#, &na]),
        1.0
    );
    assert!(lines_with(
        &body,
        "sockscope_finding",
        &[r#"symptom="accept-queue""#, &nb]
    )
    .is_empty());
    // The stuck reader needs two readings: the previous scrape is the first one.
    assert!(
        lines_with(&first, "sockscope_finding", &[r#"symptom="recv-q""#]).is_empty(),
        "{first}"
    );
    assert_eq!(
        one(
            "sockscope_finding",
            &[r#"symptom="recv-q""#, r#"severity="warning""#, &nb]
        ),
        1.0
    );
    // The container's namespace carries its name; so does its process.
    let cn = format!(r#"container="podman/{}""#, c.name);
    let nc = format!(r#"netns="net:[{}]""#, {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(c.netns()).unwrap().ino()
    });
    assert_eq!(
        one("sockscope_sockets", &[tw, &nc, &cn, r#"proto="tcp""#]),
        7.0
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", c.pid))
        .unwrap()
        .count();
    assert_eq!(
        one(
            "sockscope_process_fds",
            &[&format!(r#"pid="{}""#, c.pid), &nc, &cn]
        ),
        fds as f64
    );
    // Plain namespaces have no container label; the node-wide series appear once.
    assert!(lines_with(&body, "sockscope_sockets", &[&na, "container="]).is_empty());
    assert_eq!(one("sockscope_system_file_handles_max", &[]), {
        let t = std::fs::read_to_string("/proc/sys/fs/file-nr").unwrap();
        t.split_whitespace().nth(2).unwrap().parse::<f64>().unwrap()
    });
    assert_eq!(
        one("sockscope_collector_up", &[r#"collector="netns""#]),
        1.0
    );
    // The exporter is a process of the namespace it was started in (only its collecting
    // threads entered the others): its own HTTP socket has an owner.
    let own = lines_with(
        &body,
        "sockscope_listener_backlog",
        &[&format!(r#"port="{}""#, addr.port()), r#"netns="host""#],
    );
    assert_eq!(own.len(), 1, "{body}");
    assert!(own[0].contains(r#"process="sockscope""#), "{}", own[0]);
    drop(stuck);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn textfile_output_is_read_by_node_exporter() {
    if !support::require_root("textfile_output_is_read_by_node_exporter") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let _keep = ns.within(|| {
        let l = listen("127.0.0.1:8001", 128);
        make_time_wait(&l, 3);
        l
    });
    wait_for_state(&ns, "time-wait", 3);
    let dir = temp_dir("textfile");
    let out = support::sockscope()
        .args(["exporter", "--once", "--netns", &ns.name, "--textfile"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["sockscope.prom"],
        "only the file, no temporary left"
    );

    let port = free_port();
    let node = Server(
        tool("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if TcpStream::connect(addr).is_ok() {
            let (status, body) = get(addr, "/metrics");
            if status == 200 {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "node_exporter never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    // node_exporter sorts labels by name.
    let tw = format!(
        r#"sockscope_sockets{{netns="{}",proto="tcp",state="time-wait"}}"#,
        ns.name
    );
    assert_eq!(sample(&body, &tw), Some(3.0), "{body}");
    assert_eq!(sample(&body, "node_textfile_scrape_error"), Some(0.0));
    drop(node);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tiny deterministic generator for the garbage (no crate, same bytes every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn garbage(i: usize, rng: &mut Lcg) -> Vec<u8> {
    match i % 10 {
        0 => (0..(rng.next() % 200 + 1))
            .map(|_| rng.next() as u8)
            .collect(),
        1 => b"GET\r\n\r\n".to_vec(),
        2 => b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(),
        3 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20_000)).into_bytes(),
        4 => format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "b".repeat(64 * 1024)
        )
        .into_bytes(),
        5 => {
            let mut h = String::from("GET /metrics HTTP/1.1\r\n");
            for n in 0..500 {
                h.push_str(&format!("X-{n}: y\r\n"));
            }
            h.push_str("\r\n");
            h.into_bytes()
        }
        6 => b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc".to_vec(),
        7 => b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        8 => b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        _ => b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            .to_vec(),
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn garbage_requests_get_4xx_or_a_close_and_slow_clients_block_nothing() {
    if !support::require_root("garbage_requests_get_4xx_or_a_close_and_slow_clients_block_nothing")
    {
        return;
    }
    let ns = Netns::new();
    let (mut exporter, addr) = start_exporter(&["--netns", &ns.name]);
    // Two clients that hold connections open: one silent, one sending a byte at a time.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /met").unwrap();
    let (status, _) = get(addr, "/metrics");
    assert_eq!(status, 200, "a scrape is served while two clients dawdle");

    let mut rng = Lcg(12345);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(addr).unwrap();
        // Bounded by the exporter's own 60 s connection limit: an --all-netns cold scrape of a
        // node busy with other benchmarks can take a while.
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // The server may close before reading everything: a failed write is an answer too.
        let _ = s.write_all(&garbage(i, &mut rng));
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        let status = if buf.is_empty() {
            "closed".to_string()
        } else {
            text.split(' ').nth(1).unwrap_or("?").to_string()
        };
        assert!(
            ["closed", "400", "404", "405", "414", "431"].contains(&status.as_str()),
            "request {i} got {text:?}"
        );
        *statuses.entry(status).or_insert(0) += 1;
    }
    for code in ["400", "404", "405", "431"] {
        assert!(statuses.contains_key(code), "no {code} among {statuses:?}");
    }
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "still serving after the garbage");
    assert!(body.contains("sockscope_sockets{"));
    assert_eq!(get(addr, "/").0, 200);
    assert_eq!(get(addr, "/nope").0, 404);
    assert_eq!(http(addr, "PUT /metrics HTTP/1.0\r\n\r\n").0, 405);

    // The silent client is cut off by the header timeout (5 s), not left forever.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = silent.read_to_end(&mut buf);
    let _ = slow.write_all(b"r");

    // SIGTERM stops it cleanly.
    // SAFETY: kill(2) on the pid of the child this test started.
    unsafe { libc::kill(exporter.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = exporter.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "exporter ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn shipped_rules_pass_promtool_and_carry_the_explain_text() {
    let out = tool("promtool")
        .args(["check", "rules", RULES])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = tool("promtool")
        .args(["test", "rules", RULE_TESTS])
        .current_dir(Path::new(RULES).parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every symptom of the table has an alert whose runbook is `sockscope explain`'s text.
    let rules = std::fs::read_to_string(RULES).unwrap();
    for symptom in [
        "accept-queue",
        "emfile",
        "enfile",
        "time-wait",
        "close-wait",
        "udp-drops",
        "reset",
    ] {
        assert!(
            rules.contains(&format!("symptom: {symptom}\n")),
            "no alert for {symptom}"
        );
        let (code, text, _) = support::run(&["explain", symptom]);
        assert_eq!(code, 0);
        let indented: String = text.lines().map(|l| format!("            {l}\n")).collect();
        assert!(
            rules.contains(&format!("runbook: |\n{indented}")),
            "the runbook of {symptom} differs from `sockscope explain {symptom}`"
        );
    }
}

/// Every query string of a dashboard (panel targets and template variables), wherever it sits.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", Value::String(q)) => out.push(q.clone()),
                    _ => queries(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| queries(x, out)),
        _ => {}
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn grafana_dashboard_queries_only_metrics_the_exporter_serves() {
    if !support::require_root("grafana_dashboard_queries_only_metrics_the_exporter_serves") {
        return;
    }
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap())
        .expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "sockscope");
    let mut qs = Vec::new();
    queries(&dash, &mut qs);
    assert!(qs.len() >= 13, "{qs:?}");
    // What a real scrape serves, of a namespace where every family has a series: a peer
    // with TIME_WAIT, a full listener (a finding).
    let ns = Netns::new();
    let _keep = ns.within(|| {
        let l = listen("127.0.0.1:8001", 128);
        make_time_wait(&l, 2);
        let full = listen("127.0.0.1:8003", 0);
        let c = TcpStream::connect("127.0.0.1:8003").unwrap();
        (l, full, c)
    });
    // And a process (fds against its limit).
    let _weird = child::spawn_whole("exporter:weird", &[], &ns.path());
    let dir = temp_dir("grafana");
    let (code, _, err) = support::run(&[
        "exporter",
        "--netns",
        &ns.name,
        "--textfile",
        &dir.display().to_string(),
        "--once",
    ]);
    assert_eq!(code, 0, "{err}");
    let body = std::fs::read_to_string(dir.join("sockscope.prom")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let served: std::collections::HashSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for q in &qs {
        let names: Vec<&str> = q
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.starts_with("sockscope_"))
            .collect();
        assert!(!names.is_empty(), "a query naming no sockscope metric: {q}");
        for n in names {
            assert!(served.contains(n), "{n} (in {q}) is not served:\n{body}");
        }
    }
}

/// Child roles of these tests.
pub fn child(role: &str, _args: &[String]) -> bool {
    match role {
        "exporter:weird" => {
            let l = listen("127.0.0.1:9000", 7);
            child::serve(WEIRD, "", |_| {});
            drop(l);
            true
        }
        _ => false,
    }
}
