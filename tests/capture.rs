//! `capture`: live handshakes with known outcomes in a private namespace, `-w` files read back
//! by `-r` and tcpdump, SIGINT mid-capture, privilege and device errors, and fixtures (every
//! link type, broken files) read without a panic.

mod edges;
mod nolib;
mod pcapfile;

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, run, sockscope, Netns};
use pcapfile::Record;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pcap");

/// A temporary file path removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        TempPath(
            std::env::temp_dir().join(format!("sockscope-test-{}-{tag}.pcap", std::process::id())),
        )
    }
    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running `sockscope capture`, started and ready (it has said so on stderr).
struct Running {
    child: Child,
    /// Reads stdout as it comes: a large report must not block on a full pipe.
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = sockscope()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockscope capture");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        // Bounded: the first stderr line is either the banner or an error, then EOF.
        if err.read_line(&mut line).unwrap_or(0) == 0 || !line.contains("capturing handshakes") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("capture did not start: {line}");
        }
        assert!(
            !line.contains("Kernel filter failed"),
            "the kernel rejected the BPF filter"
        );
        // Keep draining stderr so the child never blocks on it.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            assert!(!rest.contains("Kernel filter failed"), "{rest}");
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Running {
            child,
            stdout: Some(stdout),
        }
    }

    /// Sends SIGINT and waits (bounded) for the report; returns (exit code, stdout).
    fn interrupt(self) -> (i32, String) {
        self.signal(libc::SIGINT)
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `sig` and waits (bounded) for the report; returns (exit code, stdout).
    fn signal(self, sig: i32) -> (i32, String) {
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        self.wait(Duration::from_secs(20))
    }

    /// Waits (at most `limit`) for the capture to end by itself; returns (exit code, stdout).
    fn wait(mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = self.stdout.take().unwrap().join().unwrap();
                return (status.code().unwrap_or(-1), out);
            }
            assert!(Instant::now() < deadline, "capture did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connect that gives up after `syncnt` SYN retransmissions (TCP_SYNCNT), so an unanswered
/// handshake ends in seconds with a known number of SYNs (1 + syncnt).
fn connect_with_syncnt(addr: SocketAddr, syncnt: i32) -> std::io::Result<TcpStream> {
    let fd = support::tcp_socket(&addr);
    // SAFETY: plain socket syscalls on an fd we own; ownership passes to TcpStream.
    unsafe {
        let stream = <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd);
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_SYNCNT,
            (&syncnt as *const i32).cast(),
            4,
        );
        let (sa, len) = support::sockaddr(&addr);
        if libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Aborts a connection: SO_LINGER {on, 0} then close sends RST instead of FIN.
fn abort(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an fd we own, with a correctly sized struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(rc, 0);
    drop(s);
}

/// Counts of the population made by [`make_handshakes`].
const ESTABLISHED: usize = 5;
const CLOSED: usize = 3;
const REFUSED_V4: usize = 2;
const REFUSED_V6: usize = 2;
const UNANSWERED: usize = 2;
/// TCP_SYNCNT for the unanswered connects: the kernel gives up after ~3 s, having sent at
/// least one retransmission (how many depends on its timer arithmetic, so tests compare with
/// what tcpdump saw instead of assuming).
const SYNCNT: i32 = 1;
const RESET: usize = 1;

/// Makes the known population inside `ns`; returns the sockets to keep open until the
/// capture has stopped (the established ones).
fn make_handshakes(ns: &Netns) -> Vec<TcpStream> {
    ns.exec("nft", &["add", "table", "inet", "t"]);
    let out = ns.exec(
        "nft",
        &["add chain inet t input { type filter hook input priority 0 ; }"],
    );
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ns.exec("nft", &["add rule inet t input tcp dport 9003 drop"]);
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns.within(|| {
        let mut keep = Vec::new();
        let l1 = TcpListener::bind("127.0.0.1:9001").unwrap();
        for _ in 0..ESTABLISHED {
            let c = TcpStream::connect("127.0.0.1:9001").unwrap();
            let (s, _) = l1.accept().unwrap();
            keep.push(c);
            keep.push(s);
        }
        for _ in 0..CLOSED {
            let c = TcpStream::connect("127.0.0.1:9001").unwrap();
            let (mut s, _) = l1.accept().unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut buf = [0u8; 8];
            // EOF once the client's FIN is in; then the server closes too.
            assert_eq!(s.read(&mut buf).unwrap(), 0);
            drop(s);
            let mut c = c;
            assert_eq!(c.read(&mut buf).unwrap(), 0);
        }
        for _ in 0..REFUSED_V4 {
            let e = TcpStream::connect("127.0.0.1:9002").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        for _ in 0..REFUSED_V6 {
            let e = TcpStream::connect("[::1]:9002").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        // The dropped SYNs: in parallel, so the test waits ~3 s once.
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..UNANSWERED)
                .map(|_| {
                    sc.spawn(|| connect_with_syncnt("127.0.0.1:9003".parse().unwrap(), SYNCNT))
                })
                .collect();
            for h in hs {
                let e = h.join().unwrap().unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT), "{e}");
            }
        });
        let l4 = TcpListener::bind("127.0.0.1:9004").unwrap();
        for _ in 0..RESET {
            let mut c = TcpStream::connect("127.0.0.1:9004").unwrap();
            let (s, _) = l4.accept().unwrap();
            abort(s);
            let mut buf = [0u8; 8];
            let e = c.read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        }
        keep
    })
}

/// An `{"addr", "port"}` object as `addr:port` (IPv6 in brackets), to compare with.
fn ep(e: &Value) -> String {
    let addr = e["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("not an {{addr, port}} object: {e}"));
    let port = e["port"].as_u64().unwrap();
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn flows_by_port(v: &Value, port: u16) -> Vec<&Value> {
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["server"]["port"] == port)
        .collect()
}

fn outcomes(flows: &[&Value]) -> Vec<String> {
    flows
        .iter()
        .map(|f| f["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// Checks the known population's flows and summary in a capture report.
fn assert_population(v: &Value) {
    let total = ESTABLISHED + CLOSED + REFUSED_V4 + REFUSED_V6 + UNANSWERED + RESET;
    assert_eq!(v["flows"].as_array().unwrap().len(), total, "{v:#}");

    let f9001 = flows_by_port(v, 9001);
    let mut o = outcomes(&f9001);
    o.sort();
    let mut want = vec!["closed".to_string(); CLOSED];
    want.extend(vec!["established".to_string(); ESTABLISHED]);
    assert_eq!(o, want);
    for f in &f9001 {
        assert_eq!(f["syn_attempts"], 1);
        assert!(f["handshake_rtt_us"].is_u64(), "{f}");
        assert!(f["ack_rtt_us"].is_u64(), "{f}");
    }
    for f in f9001.iter().filter(|f| f["outcome"] == "closed") {
        assert_eq!(f["closed_by"], "client");
    }

    let f9002 = flows_by_port(v, 9002);
    assert_eq!(outcomes(&f9002), vec!["refused"; REFUSED_V4 + REFUSED_V6]);
    let v6 = f9002
        .iter()
        .filter(|f| f["server"]["addr"] == "::1")
        .count();
    assert_eq!(v6, REFUSED_V6);
    for f in &f9002 {
        assert_eq!(f["reset_by"], "server");
    }

    let f9003 = flows_by_port(v, 9003);
    assert_eq!(outcomes(&f9003), vec!["unanswered"; UNANSWERED]);
    let mut retransmits = 0;
    for f in &f9003 {
        let n = f["syn_attempts"].as_u64().unwrap();
        assert!(n > 1, "no SYN retransmission recorded: {f}");
        assert_eq!(f["syn_times_us"].as_array().unwrap().len() as u64, n);
        assert!(f["handshake_rtt_us"].is_null());
        retransmits += n - 1;
    }

    let f9004 = flows_by_port(v, 9004);
    assert_eq!(outcomes(&f9004), vec!["reset"; RESET]);
    assert_eq!(f9004[0]["reset_by"], "server");

    let summary = v["summary"].as_array().unwrap();
    let dest = |s: &str| {
        summary
            .iter()
            .find(|d| ep(&d["server"]) == s)
            .unwrap_or_else(|| panic!("no summary for {s}: {v:#}"))
    };
    let d = dest("127.0.0.1:9001");
    assert_eq!(d["attempts"], (ESTABLISHED + CLOSED) as u64);
    assert_eq!(d["established"], ESTABLISHED as u64);
    assert_eq!(d["closed"], CLOSED as u64);
    assert!(d["rtt_min_us"].as_u64().unwrap() <= d["rtt_median_us"].as_u64().unwrap());
    assert!(d["rtt_median_us"].as_u64().unwrap() <= d["rtt_p99_us"].as_u64().unwrap());
    assert_eq!(dest("127.0.0.1:9002")["refused"], REFUSED_V4 as u64);
    assert_eq!(dest("[::1]:9002")["refused"], REFUSED_V6 as u64);
    let d = dest("127.0.0.1:9003");
    assert_eq!(d["unanswered"], UNANSWERED as u64);
    assert_eq!(d["syn_retransmits"], retransmits);
    assert!(d["rtt_min_us"].is_null());
    assert_eq!(dest("127.0.0.1:9004")["reset"], RESET as u64);
    assert_eq!(dest("127.0.0.1:9004")["reset_by_server"], RESET as u64);
    assert_eq!(summary.len(), 5);

    // Each problem destination is explained once, in destination order; 9001 is healthy.
    let verdicts: Vec<(String, String, String)> = v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap().to_string();
            (ep(&x["server"]), s("symptom"), s("text"))
        })
        .collect();
    let heads: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|(server, symptom, _)| (server.as_str(), symptom.as_str()))
        .collect();
    assert_eq!(
        heads,
        [
            ("127.0.0.1:9002", "refused"),
            ("127.0.0.1:9003", "timed-out"),
            ("127.0.0.1:9004", "reset"),
            ("[::1]:9002", "refused"),
        ],
        "{v:#}"
    );
    let starts = [
        format!("{REFUSED_V4} of {REFUSED_V4} attempts refused"),
        format!("{UNANSWERED} of {UNANSWERED} attempts unanswered ({retransmits} SYN retransmissions"),
        format!("{RESET} of {RESET} connections reset after the handshake ({RESET} by the server, 0 by the client)"),
        format!("{REFUSED_V6} of {REFUSED_V6} attempts refused"),
    ];
    for ((_, _, text), start) in verdicts.iter().zip(&starts) {
        assert!(text.starts_with(start.as_str()), "{text}");
    }
    // Each verdict names the numbered rule (README "What it means") that produced it.
    let rules: Vec<&str> = v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["V1", "V2", "V3", "V1"]);
}

/// Checks each flow's SYN count against the SYNs tcpdump printed for its client.
fn assert_syns_match_tcpdump(v: &Value, lines: &[String]) {
    let mut total = 0;
    for f in v["flows"].as_array().unwrap() {
        let dotted = |a: &str| {
            let (ip, port) = a.rsplit_once(':').unwrap();
            format!("{}.{port}", ip.trim_matches(['[', ']']))
        };
        let pat = format!(
            " {} > {}: Flags [S],",
            dotted(&ep(&f["client"])),
            dotted(&ep(&f["server"]))
        );
        let n = lines.iter().filter(|l| l.contains(&pat)).count() as u64;
        assert_eq!(f["syn_attempts"].as_u64().unwrap(), n, "{pat}");
        total += n;
    }
    let syns = lines.iter().filter(|l| l.contains("Flags [S],")).count() as u64;
    assert_eq!(syns, total);
}

fn tcpdump_lines(file: &str) -> Vec<String> {
    let out = support::run_ok("tcpdump", &["-nr", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("truncated"), "tcpdump: {err}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs the population under a live capture on `device`; returns the live report and the file.
fn capture_population(device: &str, tag: &str) -> (Value, TempPath, Netns) {
    let ns = Netns::new();
    let file = TempPath::new(tag);
    let cap = Running::start(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        device,
        "--json",
        "-w",
        file.s(),
    ]);
    let keep = make_handshakes(&ns);
    let (code, out) = cap.interrupt();
    drop(keep);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (v, file, ns)
}

/// Saves a capture as a fixture when asked (SOCKSCOPE_WRITE_FIXTURES=1): fixtures are made by
/// the tool itself from these live runs.
fn maybe_save_fixture(file: &TempPath, name: &str) {
    if std::env::var_os("SOCKSCOPE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(FIXTURES).unwrap();
        std::fs::copy(&file.0, Path::new(FIXTURES).join(name)).unwrap();
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_handshake_outcomes_on_lo_and_the_file_reads_back_identically() {
    if !support::require_root("live_handshake_outcomes_on_lo_and_the_file_reads_back_identically") {
        return;
    }
    let (live, file, _ns) = capture_population("lo", "lo");
    assert_population(&live);
    assert_eq!(live["stats"]["dropped"], 0);

    // -r analyses the file to the same flows and summary.
    let offline = support::run_json(&["capture", "-r", file.s(), "--json"]);
    assert_eq!(offline["flows"], unnamed(&live["flows"]));
    assert_eq!(offline["summary"], live["summary"]);
    assert_eq!(
        offline["stats"]["tcp_segments"],
        live["stats"]["tcp_segments"]
    );

    // tcpdump reads every packet, and sees the same SYNs.
    let lines = tcpdump_lines(file.s());
    assert_eq!(
        lines.len() as u64,
        offline["stats"]["received"].as_u64().unwrap()
    );
    assert_eq!(
        lines.len() as u64,
        live["stats"]["tcp_segments"].as_u64().unwrap()
    );
    assert_syns_match_tcpdump(&live, &lines);
    maybe_save_fixture(&file, "lo-en10mb.pcap");
}

/// Flows without what a live capture adds about their local ends (a file has none).
fn unnamed(flows: &Value) -> Value {
    let mut flows = flows.clone();
    for f in flows.as_array_mut().unwrap() {
        let f = f.as_object_mut().unwrap();
        for k in ["local", "client_processes", "server_processes"] {
            f.remove(k);
        }
    }
    flows
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_capture_on_any_device_uses_linux_sll() {
    if !support::require_root("live_capture_on_any_device_uses_linux_sll") {
        return;
    }
    let (live, file, _ns) = capture_population("any", "any");
    assert_population(&live);
    let bytes = std::fs::read(&file.0).unwrap();
    let (linktype, _) = pcapfile::read(&bytes);
    assert_eq!(linktype, pcapfile::LINUX_SLL);
    let offline = support::run_json(&["capture", "-r", file.s(), "--json"]);
    assert_eq!(offline["flows"], unnamed(&live["flows"]));
    assert_syns_match_tcpdump(&live, &tcpdump_lines(file.s()));
    maybe_save_fixture(&file, "any-linux-sll.pcap");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_lines_explain_each_event() {
    if !support::require_root("live_lines_explain_each_event") {
        return;
    }
    let ns = Netns::new();
    let cap = Running::start(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "--port",
        "9002",
    ]);
    ns.within(|| {
        assert!(TcpStream::connect("127.0.0.1:9002").is_err());
        // Another port: filtered out by --port in the kernel.
        assert!(TcpStream::connect("127.0.0.1:9005").is_err());
    });
    let (code, out) = cap.interrupt();
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(" → ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("→ 127.0.0.1:9002  SYN      (attempt 1)"),
        "{out}"
    );
    assert!(lines[1].contains("127.0.0.1:9002 → 127.0.0.1:"), "{out}");
    assert!(
        lines[1].ends_with("RST      → refused (nothing listens there, or a firewall rejects)"),
        "{out}"
    );
    assert!(!out.contains(":9005"), "{out}");
    assert!(out.contains("Destination"), "{out}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sigint_mid_capture_leaves_a_complete_file() {
    if !support::require_root("sigint_mid_capture_leaves_a_complete_file") {
        return;
    }
    let ns = Netns::new();
    let file = TempPath::new("sigint");
    let cap = Running::start(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "-w",
        file.s(),
        "--json",
    ]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let made = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            ns.within(|| {
                let l = TcpListener::bind("127.0.0.1:9101").unwrap();
                let mut n = 0u64;
                // Bounded: at most 100,000 connections, stopped after SIGINT is sent.
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 100_000 {
                    let c = TcpStream::connect("127.0.0.1:9101").unwrap();
                    let (s, _) = l.accept().unwrap();
                    drop(s);
                    drop(c);
                    n += 1;
                }
                n
            })
        });
        std::thread::sleep(Duration::from_millis(700));
        let result = cap.interrupt();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (result, h.join().unwrap())
    });
    let ((code, out), n) = made;
    assert_eq!(code, 0);
    assert!(n > 0);
    let live: Value = serde_json::from_str(&out).unwrap();
    // The file ends on a whole record: tcpdump and -r read all of it without complaint.
    let lines = tcpdump_lines(file.s());
    let (c, _, err) = run(&["capture", "-r", file.s(), "--json"]);
    assert_eq!(c, 0);
    assert!(!err.contains("stopped after"), "{err}");
    let bytes = std::fs::read(&file.0).unwrap();
    let (_, recs) = pcapfile::read(&bytes);
    let whole: usize = 24 + recs.iter().map(|r| 16 + r.data.len()).sum::<usize>();
    assert_eq!(whole, bytes.len(), "file ends mid-record");
    assert_eq!(recs.len(), lines.len());
    assert_eq!(
        recs.len() as u64,
        live["stats"]["tcp_segments"].as_u64().unwrap()
    );
}

/// `n` refused connects to `port` inside `ns`: exactly 2n packets (SYN, RST) on lo.
fn refused_connects(ns: &Netns, port: u16, n: usize) {
    ns.within(|| {
        for _ in 0..n {
            let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
    });
}

/// The records of a pcap file being written, once it holds `want` of them (polled, bounded
/// by 5 s); None if it never did.
fn poll_records(path: &Path, want: usize) -> Option<Vec<Record>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let bytes = std::fs::read(path).unwrap_or_default();
        if bytes.len() >= 24 {
            let (_, recs) = pcapfile::read(&bytes);
            if recs.len() >= want {
                return Some(recs);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sighup_and_sigterm_end_a_capture_like_sigint() {
    if !support::require_root("sighup_and_sigterm_end_a_capture_like_sigint") {
        return;
    }
    for (sig, port) in [(libc::SIGHUP, 9501), (libc::SIGTERM, 9502)] {
        let ns = Netns::new();
        let file = TempPath::new(&format!("sig{sig}"));
        let cap = Running::start(&[
            "capture",
            "--netns",
            &ns.path(),
            "-i",
            "lo",
            "-w",
            file.s(),
            "--json",
        ]);
        refused_connects(&ns, port, 4);
        let (code, out) = cap.signal(sig);
        assert_eq!(code, 0, "signal {sig}: {out}");
        let live: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(live["summary"][0]["refused"], 4, "{live:#}");
        assert_eq!(live["stats"]["tcp_segments"], 8);
        // The file holds exactly what the report counted, and reads back to the same flows.
        let (_, recs) = pcapfile::read(&std::fs::read(&file.0).unwrap());
        assert_eq!(recs.len(), 8, "signal {sig}");
        let offline = support::run_json(&["capture", "-r", file.s(), "--json"]);
        assert_eq!(offline["flows"], unnamed(&live["flows"]));
        assert_eq!(offline["stats"]["received"], 8);
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn a_file_being_written_can_be_followed() {
    if !support::require_root("a_file_being_written_can_be_followed") {
        return;
    }
    // -U: every packet is in the file as soon as it is captured. Without it: within about a
    // second (polled up to 5 s either way: no timing is asserted).
    for (flag, port) in [(Some("-U"), 9511), (None, 9512)] {
        let ns = Netns::new();
        let file = TempPath::new(&format!("follow{port}"));
        let nspath = ns.path();
        let mut args = vec!["capture", "--netns", &nspath, "-i", "lo", "-w", file.s()];
        args.extend(flag);
        args.push("--json");
        let mut cap = Running::start(&args);
        refused_connects(&ns, port, 3);
        let recs = poll_records(&file.0, 6);
        assert!(cap.still_running(), "{flag:?}: the capture ended early");
        let recs =
            recs.unwrap_or_else(|| panic!("{flag:?}: packets not in the file while capturing"));
        assert_eq!(recs.len(), 6, "{flag:?}");
        let (code, _) = cap.interrupt();
        assert_eq!(code, 0);
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn full_writes_every_packet_whole_and_analyses_the_same() {
    if !support::require_root("full_writes_every_packet_whole_and_analyses_the_same") {
        return;
    }
    let ns = Netns::new();
    let full_file = TempPath::new("full");
    let short_file = TempPath::new("short");
    let base = [
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "--port",
        "9521",
        "--json",
    ];
    let full = Running::start(&[&base[..], &["-w", full_file.s(), "--full"]].concat());
    let short = Running::start(&[&base[..], &["-w", short_file.s()]].concat());
    const PAYLOAD: usize = 5000;
    ns.within(|| {
        use std::io::Write;
        let l = TcpListener::bind("127.0.0.1:9521").unwrap();
        let mut c = TcpStream::connect("127.0.0.1:9521").unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(&[0x5a; PAYLOAD]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), PAYLOAD);
        drop(s);
        assert_eq!(c.read(&mut [0u8; 8]).unwrap(), 0);
    });
    let (code, full_out) = full.interrupt();
    assert_eq!(code, 0);
    let (code, short_out) = short.interrupt();
    assert_eq!(code, 0);
    let full_v: Value = serde_json::from_str(&full_out).unwrap();
    let short_v: Value = serde_json::from_str(&short_out).unwrap();
    // The analysis does not change with what is written. (Each capture socket stamps its
    // own times, so those differ by microseconds between the two.)
    fn untimed(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !k.ends_with("_us"))
                    .map(|(k, v)| (k.clone(), untimed(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(untimed).collect()),
            other => other.clone(),
        }
    }
    for k in ["flows", "summary", "verdicts"] {
        assert_eq!(untimed(&full_v[k]), untimed(&short_v[k]), "{k}");
    }
    // Reading the full file back (data segments included) gives the live flows exactly.
    let offline = support::run_json(&["capture", "-r", full_file.s(), "--json"]);
    assert_eq!(offline["flows"], unnamed(&full_v["flows"]));
    assert_eq!(offline["summary"], full_v["summary"]);
    assert_eq!(full_v["flows"][0]["outcome"], "closed");

    let bytes = std::fs::read(&full_file.0).unwrap();
    assert_eq!(&bytes[16..20], &262_144u32.to_le_bytes(), "snap length");
    let (_, recs) = pcapfile::read(&bytes);
    // Every record whole, and the client's data all there.
    let mut data = 0;
    for r in &recs {
        assert_eq!(r.data.len() as u32, r.len);
        let ip = pcapfile::ip_of_ethernet(&r.data);
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = &ip[ihl..];
        let payload = total - ihl - usize::from(tcp[12] >> 4) * 4;
        if u16::from_be_bytes([tcp[2], tcp[3]]) == 9521 {
            data += payload;
        }
    }
    assert_eq!(data, PAYLOAD);
    assert_eq!(
        recs.len() as u64,
        full_v["stats"]["tcp_segments"].as_u64().unwrap()
    );
    // Without --full: no payload at all, headers only.
    let short_bytes = std::fs::read(&short_file.0).unwrap();
    assert_eq!(&short_bytes[16..20], &256u32.to_le_bytes());
    let (_, short_recs) = pcapfile::read(&short_bytes);
    assert!(short_recs.len() < recs.len());
    assert!(short_recs.iter().all(|r| r.data.len() <= 256));
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn unknown_device_lists_the_real_ones() {
    if !support::require_root("unknown_device_lists_the_real_ones") {
        return;
    }
    let ns = Netns::new();
    let (code, out, err) = run(&["capture", "--netns", &ns.path(), "-i", "nosuch0"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.starts_with("sockscope: no capture device nosuch0"),
        "{err}"
    );
    assert!(
        err.contains("devices here: ") && err.contains("lo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn without_cap_net_raw_the_error_names_it() {
    if !support::require_root("without_cap_net_raw_the_error_names_it") {
        return;
    }
    // Drop to nobody with no capabilities at all. The binary is copied to the temp dir first:
    // the build directory may not be reachable for nobody (a clone under /root).
    let copy = std::env::temp_dir().join(format!("sockscope-nocap-{}", std::process::id()));
    std::fs::copy(env!("CARGO_BIN_EXE_sockscope"), &copy).unwrap();
    let _cleanup = TempPath(copy.clone());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = support::as_nobody(copy.to_str().unwrap())
        .args(["capture", "-i", "lo", "-c", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---- fixtures: no root needed --------------------------------------------------------------

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn read_fixture_json(name: &str) -> (Value, String) {
    let (code, out, err) = run(&["capture", "-r", &fixture(name), "--json"]);
    assert_eq!(code, 0, "{name}: {err}");
    (
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}")),
        err,
    )
}

#[test]
fn fixture_of_each_link_type_gives_the_same_flows() {
    let (base, _) = read_fixture_json("lo-en10mb.pcap");
    assert_population(&base);
    for name in [
        "any-linux-sll.pcap",
        "linux-sll2.pcap",
        "raw.pcap",
        "null.pcap",
        "loop.pcap",
    ] {
        let (v, _) = read_fixture_json(name);
        assert_population(&v);
        assert_eq!(v["stats"]["undecoded"], 0, "{name}");
    }
    // IPV4 and IPV6 link types hold one family each.
    let (v4, _) = read_fixture_json("ipv4.pcap");
    assert_eq!(
        v4["flows"].as_array().unwrap().len(),
        ESTABLISHED + CLOSED + REFUSED_V4 + UNANSWERED + RESET
    );
    let (v6, _) = read_fixture_json("ipv6.pcap");
    let f = v6["flows"].as_array().unwrap();
    assert_eq!(f.len(), REFUSED_V6);
    assert!(f.iter().all(|f| f["outcome"] == "refused"));
}

#[test]
fn pcapng_with_interfaces_of_different_snap_lengths_is_read() {
    // libpcap (and so tcpdump) refuses this valid file at its first packet.
    let out = std::process::Command::new("tcpdump")
        .args(["-nr", &fixture("multi-snaplen.pcapng")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("snapshot length 8192 different"),
        "the fixture no longer shows the libpcap limitation"
    );
    let (v, err) = read_fixture_json("multi-snaplen.pcapng");
    assert_population(&v);
    assert_eq!(v["stats"]["partial"], false);
    assert_eq!(v["stats"]["undecoded"], 0);
    assert_eq!(err, "");
    // The same flows, to the microsecond, as the pcap it was made from.
    let (base, _) = read_fixture_json("lo-en10mb.pcap");
    assert_eq!(v["flows"], base["flows"]);
}

/// A damaged file is analysed up to the damage, marked partial, and exits 2 (bad input).
fn assert_partial(name: &str) -> Value {
    let (code, out, err) = run(&["capture", "-r", &fixture(name), "--json"]);
    assert_eq!(code, 2, "{name}: {err}");
    assert!(err.starts_with("sockscope: "), "{name}: {err}");
    assert!(err.contains("stopped after 50 packets"), "{name}: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(v["stats"]["partial"], true, "{name}");
    assert!(
        v["stats"]["read_error"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{name}: {v:#}"
    );
    assert_eq!(v["stats"]["received"], 50, "{name}");
    // The table says so too.
    let (code, out, _) = run(&["capture", "-r", &fixture(name)]);
    assert_eq!(code, 2);
    assert!(out.contains("\nPartial: the input broke off"), "{out}");
    v
}

#[test]
fn truncated_files_are_partial_and_exit_2() {
    for name in ["broken-truncated-file.pcap", "broken-truncated-file.pcapng"] {
        let v = assert_partial(name);
        assert_eq!(v["flows"].as_array().unwrap().len(), 15, "{name}");
    }
    // A whole file is not partial.
    let (v, _) = read_fixture_json("lo-en10mb.pcap");
    assert_eq!(v["stats"]["partial"], false);
    assert!(v["stats"]["read_error"].is_null());
}

#[test]
fn broken_fixtures_are_handled_without_a_panic() {
    // A packet cut inside its IP header: counted as undecoded, the rest analysed.
    let (v, _) = read_fixture_json("broken-truncated-packet.pcap");
    assert_eq!(v["stats"]["undecoded"], 1);
    assert_eq!(v["flows"][0]["outcome"], "refused");
    // IPv4 options, TCP options, IPv6 extension headers: decoded.
    let (v, _) = read_fixture_json("ipv4-options.pcap");
    assert_eq!(v["flows"][0]["outcome"], "refused");
    assert_eq!(v["stats"]["undecoded"], 0);
    let (v, _) = read_fixture_json("tcp-options.pcap");
    assert_eq!(v["flows"][0]["outcome"], "refused");
    let (v, _) = read_fixture_json("ipv6-extension-headers.pcap");
    assert_eq!(v["flows"][0]["outcome"], "refused");
    assert_eq!(
        v["flows"][0]["server"],
        serde_json::json!({"addr": "::1", "port": 9002})
    );
    // A zero-length packet record.
    let (v, _) = read_fixture_json("zero-length-packet.pcap");
    assert_eq!(v["stats"]["undecoded"], 1);
    // Unreadable files: one line, exit 2.
    for name in ["broken-bad-magic.pcap", "zero-length.pcap"] {
        let (code, _, err) = run(&["capture", "-r", &fixture(name)]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.starts_with("sockscope: cannot read "), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
    let (code, _, err) = run(&["capture", "-r", "/nonexistent/x.pcap"]);
    assert_eq!(code, 2, "{err}");
}

/// Regenerates the derived fixtures from the two live ones (run with --ignored after
/// SOCKSCOPE_WRITE_FIXTURES=1 has refreshed those).
#[test]
#[ignore]
fn regenerate_derived_fixtures() {
    let bytes = std::fs::read(fixture("lo-en10mb.pcap")).unwrap();
    let (lt, recs) = pcapfile::read(&bytes);
    assert_eq!(lt, pcapfile::EN10MB);
    let ip: Vec<Record> = recs
        .iter()
        .map(|r| Record {
            data: pcapfile::ip_of_ethernet(&r.data).to_vec(),
            len: r.len - 14,
            ..r.clone()
        })
        .collect();
    let save = |name: &str, linktype: u32, recs: &[Record]| {
        std::fs::write(fixture(name), pcapfile::write(linktype, recs)).unwrap();
    };
    for (name, lt) in [
        ("linux-sll2.pcap", pcapfile::LINUX_SLL2),
        ("raw.pcap", pcapfile::RAW),
        ("null.pcap", pcapfile::NULL),
        ("loop.pcap", pcapfile::LOOP),
    ] {
        save(name, lt, &pcapfile::reframe(&ip, lt));
    }
    let v4: Vec<Record> = ip.iter().filter(|r| r.data[0] >> 4 == 4).cloned().collect();
    let v6: Vec<Record> = ip.iter().filter(|r| r.data[0] >> 4 == 6).cloned().collect();
    save("ipv4.pcap", pcapfile::IPV4, &v4);
    save("ipv6.pcap", pcapfile::IPV6, &v6);

    // pcapng as dumpcap writes it for two interfaces: IPv4 on one (microseconds, snap length
    // 262144), IPv6 on another (nanoseconds, snap length 8192). libpcap refuses such a file
    // at its first packet; sockscope reads it.
    {
        use sockscope::capture::pcapng::write;
        let mut ng = Vec::new();
        write::section(&mut ng);
        write::interface(&mut ng, pcapfile::EN10MB as u16, 262_144, None);
        write::interface(&mut ng, pcapfile::EN10MB as u16, 8192, Some(9));
        for (eth, r) in recs.iter().zip(&ip) {
            let us = u64::from(r.sec) * 1_000_000 + u64::from(r.usec);
            if r.data[0] >> 4 == 4 {
                write::packet(&mut ng, 0, us, eth.len, &eth.data);
            } else {
                write::packet(&mut ng, 1, us * 1000, eth.len, &eth.data);
            }
        }
        std::fs::write(fixture("multi-snaplen.pcapng"), &ng).unwrap();
        std::fs::write(
            fixture("broken-truncated-file.pcapng"),
            &ng[..ng.len() - 10],
        )
        .unwrap();
    }

    // Broken inputs.
    let cut = bytes.len() - 10;
    std::fs::write(fixture("broken-truncated-file.pcap"), &bytes[..cut]).unwrap();
    let mut bad = bytes[..200].to_vec();
    bad[..4].copy_from_slice(b"JUNK");
    std::fs::write(fixture("broken-bad-magic.pcap"), bad).unwrap();
    std::fs::write(fixture("zero-length.pcap"), b"").unwrap();

    // A refused IPv4 handshake (SYN, RST) to edit.
    let syn = v4
        .iter()
        .find(|r| r.data[20 + 13] == 0x02 && r.data[22..24] == 9002u16.to_be_bytes())
        .unwrap()
        .clone();
    let rst = v4
        .iter()
        .find(|r| r.data[20 + 13] & 0x04 != 0 && r.data[20..22] == 9002u16.to_be_bytes())
        .unwrap()
        .clone();
    let mut short = syn.clone();
    short.data.truncate(12);
    save(
        "broken-truncated-packet.pcap",
        pcapfile::RAW,
        &[short, syn.clone(), rst.clone()],
    );
    let mut zero = syn.clone();
    zero.data.clear();
    save(
        "zero-length-packet.pcap",
        pcapfile::RAW,
        &[zero, syn.clone(), rst.clone()],
    );
    // IPv4 options: record route (7), 4 bytes of padding-length options (IHL 6).
    let with_opts = |r: &Record| {
        let mut d = r.data.clone();
        d[0] = 0x46;
        let total = u16::from_be_bytes([d[2], d[3]]) + 4;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d.splice(20..20, [0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
        Record {
            len: r.len + 4,
            data: d,
            ..r.clone()
        }
    };
    save(
        "ipv4-options.pcap",
        pcapfile::RAW,
        &[with_opts(&syn), with_opts(&rst)],
    );
    // TCP options: the SYN already carries MSS, SACK-permitted, timestamps and window scale
    // (data offset 10); keep it as the TCP-options fixture with its RST.
    assert_eq!(
        syn.data[20 + 12] >> 4,
        10,
        "live SYN carries 20 bytes of TCP options"
    );
    save(
        "tcp-options.pcap",
        pcapfile::RAW,
        &[syn.clone(), rst.clone()],
    );
    // IPv6 extension headers: a hop-by-hop (8 bytes, PadN) header before TCP.
    let v6syn = v6.iter().find(|r| r.data[40 + 13] == 0x02).unwrap();
    let v6rst = v6.iter().find(|r| r.data[40 + 13] & 0x04 != 0).unwrap();
    let with_hbh = |r: &Record| {
        let mut d = r.data.clone();
        let next = d[6];
        d[6] = 0; // hop-by-hop
        let plen = u16::from_be_bytes([d[4], d[5]]) + 8;
        d[4..6].copy_from_slice(&plen.to_be_bytes());
        d.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
        Record {
            len: r.len + 8,
            data: d,
            ..r.clone()
        }
    };
    save(
        "ipv6-extension-headers.pcap",
        pcapfile::RAW,
        &[with_hbh(v6syn), with_hbh(v6rst)],
    );
}

/// The library API `doctor --capture` uses: start in a namespace, make traffic, stop.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn capture_api_start_stop_in_a_namespace() {
    if !support::require_root("capture_api_start_stop_in_a_namespace") {
        return;
    }
    use sockscope::capture::{Capture, CaptureSpec, Outcome};
    let ns = Netns::new();
    let spec = CaptureSpec {
        device: "lo".into(),
        port: Some(9301),
        netns: Some(sockscope::netns::NetnsSpec::Path(ns.path().into())),
        ..CaptureSpec::default()
    };
    let cap = Capture::start(&sockscope::host::LiveHost, &spec).expect("start capture");
    assert_eq!(cap.linktype, 1, "lo is EN10MB");
    ns.within(|| {
        for _ in 0..3 {
            assert!(TcpStream::connect("127.0.0.1:9301").is_err());
        }
    });
    let report = cap.stop().expect("stop capture");
    assert_eq!(report.flows.len(), 3);
    assert!(report.flows.iter().all(|f| f.outcome == Outcome::Refused));
    assert_eq!(report.summary.len(), 1);
    assert_eq!(report.summary[0].refused, 3);
    assert_eq!(report.stats.tcp_segments, 6);

    // Errors come back from start, not from a thread later.
    let bad = CaptureSpec {
        device: "nosuch0".into(),
        netns: spec.netns.clone(),
        ..CaptureSpec::default()
    };
    match Capture::start(&sockscope::host::LiveHost, &bad) {
        Err(sockscope::capture::CaptureError::UnknownDevice { available, .. }) => {
            assert!(available.contains("lo"), "{available}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("capture on a missing device started"),
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn json_capture_shows_progress_on_a_terminal() {
    if !support::require_root("json_capture_shows_progress_on_a_terminal") {
        return;
    }
    let ns = Netns::new();
    let out = TempPath::new("progress-json");
    // `script` gives the capture a terminal for stderr; stdout goes to a file (--json).
    let cmd = format!(
        "{} capture --netns {} -i lo --json --duration 4s > {}",
        env!("CARGO_BIN_EXE_sockscope"),
        ns.path(),
        out.s()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the capture on a pseudo-terminal");
    let mut tty = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    tty.read_line(&mut banner).unwrap();
    assert!(banner.contains("capturing handshakes"), "{banner:?}");
    ns.within(|| {
        for _ in 0..3 {
            assert!(TcpStream::connect("127.0.0.1:9402").is_err());
        }
    });
    let mut rest = String::new();
    tty.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    // One line a second, rewritten in place; it ends once the three refused connects
    // (SYN + RST each) have been read.
    let lines: Vec<&str> = rest
        .split(['\r', '\n'])
        .filter(|l| l.starts_with("sockscope: "))
        .collect();
    assert!(lines.len() >= 2, "{rest:?}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("sockscope: 6 packets, 3 connection attempts in "),
        "{rest:?}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out.0).unwrap()).unwrap();
    assert_eq!(v["flows"].as_array().unwrap().len(), 3, "{v:#}");
    assert_eq!(v["summary"][0]["refused"], 3);
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn count_and_duration_end_a_capture_on_their_own() {
    if !support::require_root("count_and_duration_end_a_capture_on_their_own") {
        return;
    }
    let ns = Netns::new();
    // A quiet device: --duration still ends it (libpcap may wait past its timeout).
    let (code, out, err) = run(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "--duration",
        "300ms",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["flows"].as_array().unwrap().len(), 0);

    // -c 2: a refused connect is exactly SYN + RST, then the capture stops by itself.
    let mut child = sockscope()
        .args([
            "capture",
            "--netns",
            &ns.path(),
            "-i",
            "lo",
            "-c",
            "2",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("capturing handshakes"), "{line}");
    ns.within(|| assert!(TcpStream::connect("127.0.0.1:9401").is_err()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("-c 2 did not stop the capture");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["flows"][0]["outcome"], "refused");
    assert_eq!(v["stats"]["tcp_segments"], 2);
}

/// `--jsonl`: a flow line as each flow ends (a refused one arrives while the capture still
/// runs), then one summary line; together they are the population, exactly.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn jsonl_streams_each_flow_as_it_ends_then_the_summary() {
    if !support::require_root("jsonl_streams_each_flow_as_it_ends_then_the_summary") {
        return;
    }
    let ns = Netns::new();
    let mut child = sockscope()
        .args(["capture", "--netns", &ns.path(), "-i", "lo", "--jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    err.read_line(&mut banner).unwrap();
    assert!(banner.contains("capturing handshakes"), "{banner}");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    let keep = make_handshakes(&ns);
    // Streamed: a finished (refused) flow is written before the capture stops.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l: &String| l.contains("\"refused\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no flow line while capturing: {lines:?}");
        if let Ok(l) = rx.recv_timeout(left) {
            lines.push(l);
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the capture ended early"
    );
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    drop(keep);
    assert_eq!(status.code(), Some(0));
    lines.extend(rx.iter());
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (last, flows) = parsed.split_last().unwrap();
    assert_eq!(last["type"], "summary", "{last}");
    assert_eq!(last["schema_version"], 1);
    assert!(last.get("flows").is_none(), "{last}");
    for f in flows {
        assert_eq!(f["type"], "flow", "{f}");
        assert_eq!(f["schema_version"], 1);
    }
    let v = serde_json::json!({
        "flows": flows,
        "summary": last["summary"],
        "verdicts": last["verdicts"],
        "stats": last["stats"],
    });
    assert_population(&v);
}

/// `--json` is one compact line unless `--pretty`; both hold the same document, with
/// addresses as `{addr, port}` objects.
#[test]
fn json_is_compact_unless_pretty() {
    let (code, compact, err) = run(&["capture", "-r", &fixture("lo-en10mb.pcap"), "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(compact.lines().count(), 1, "{compact}");
    let (code, pretty, err) = run(&[
        "capture",
        "-r",
        &fixture("lo-en10mb.pcap"),
        "--json",
        "--pretty",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(pretty.lines().count() > 100, "{pretty}");
    let a: Value = serde_json::from_str(&compact).unwrap();
    let b: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(a, b);
    assert_eq!(a["schema_version"], 1);
    assert_eq!(
        a["summary"][0]["server"],
        serde_json::json!({"addr": "127.0.0.1", "port": 9001})
    );
    assert_eq!(a["flows"][0]["client"]["addr"], "127.0.0.1");
    // -r with --jsonl: the same flows, one per line, then the summary line.
    let (code, out, err) = run(&["capture", "-r", &fixture("lo-en10mb.pcap"), "--jsonl"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), a["flows"].as_array().unwrap().len() + 1);
    assert_eq!(lines.last().unwrap()["summary"], a["summary"]);
}

/// A -w file that cannot be written (/dev/full fails on the flush) no longer loses the
/// capture: the report is printed, marked partial with the error, and the exit code is 2
/// (the output path is the user's).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn a_failed_write_keeps_the_report_and_exits_2() {
    if !support::require_root("a_failed_write_keeps_the_report_and_exits_2") {
        return;
    }
    let ns = Netns::new();
    let (code, out, err) = run(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "-w",
        "/dev/full",
        "--duration",
        "300ms",
        "--json",
    ]);
    assert_eq!(code, 2, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(v["stats"]["partial"], true, "{v}");
    let e = v["stats"]["read_error"].as_str().unwrap();
    assert!(e.contains("/dev/full"), "{e}");
    assert!(err.contains("sockscope: cannot write /dev/full"), "{err}");
    // The table says it too.
    let (code, out, _) = run(&[
        "capture",
        "--netns",
        &ns.path(),
        "-i",
        "lo",
        "-w",
        "/dev/full",
        "--duration",
        "300ms",
    ]);
    assert_eq!(code, 2);
    assert!(out.contains("Partial: "), "{out}");
}

/// A device that disappears during a capture (a veth deleted, a container stopped) ends it
/// with what was captured, marked partial with libpcap's error, exit 3 (the host's doing).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn a_device_that_disappears_keeps_the_report_and_exits_3() {
    if !support::require_root("a_device_that_disappears_keeps_the_report_and_exits_3") {
        return;
    }
    let ns = Netns::new();
    let link = |args: &[&str]| {
        let mut all = vec!["-n", ns.name.as_str(), "link"];
        all.extend_from_slice(args);
        support::run_ok("ip", &all);
    };
    link(&["add", "ssc0", "type", "veth", "peer", "name", "ssc1"]);
    link(&["set", "ssc0", "up"]);
    link(&["set", "ssc1", "up"]);
    let cap = Running::start(&["capture", "--netns", &ns.path(), "-i", "ssc0", "--json"]);
    link(&["del", "ssc0"]);
    let (code, out) = cap.wait(Duration::from_secs(20));
    assert_eq!(code, 3, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["stats"]["partial"], true, "{v}");
    let e = v["stats"]["read_error"].as_str().unwrap();
    assert!(e.contains("read packets from ssc0"), "{e}");
}

/// Roles of the child processes the capture tests name (see `support::child`).
pub fn child(role: &str, args: &[String]) -> bool {
    use crate::support::child;
    match role {
        // A listener that accepts and holds every connection.
        "capture:listen" => {
            child::enter_netns();
            let l = TcpListener::bind(&args[0]).unwrap();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while let Ok((s, _)) = l.accept() {
                    held.push(s);
                }
            });
            child::serve("ssc-capsrv", "", |_| {});
            true
        }
        // Connects on request: `connect` holds the connection, `connect-close` closes it.
        "capture:connect" => {
            let addr: SocketAddr = args[0].parse().unwrap();
            let mut held = Vec::new();
            child::serve("ssc-capcli", "", |line| {
                let s = TcpStream::connect(addr).unwrap();
                if line == "connect" {
                    held.push(s);
                }
            });
            true
        }
        _ => false,
    }
}

/// Polls (bounded) until `ss` in the namespace lists exactly `want` sockets for `filter`.
fn wait_for_ss(ns: &Netns, filter: &[&str], want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut args = vec!["-Htn"];
        args.extend_from_slice(filter);
        let out = ns.exec("ss", &args);
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ss {filter:?}: {n} sockets, want {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A live capture names the processes behind both local ends of a loopback flow (the client's
/// socket and the server's accepted socket), from sock_diag dumps and one fd walk; a client
/// that closed before the end dump leaves its end local but unnamed, its server still named.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_flows_name_their_local_processes() {
    if !support::require_root("live_flows_name_their_local_processes") {
        return;
    }
    let ns = Netns::new();
    let path = ns.path();
    let srv = support::child::spawn("capture:listen", &["127.0.0.1:9031".into()], Some(&path));
    let mut cli = support::child::spawn("capture:connect", &["127.0.0.1:9031".into()], Some(&path));
    let cap = Running::start(&[
        "capture", "--netns", &path, "-i", "lo", "--port", "9031", "--json",
    ]);
    cli.send("connect");
    wait_for_ss(&ns, &["state", "established", "( dport = :9031 )"], 1);
    cli.send("connect-close");
    wait_for_ss(&ns, &["state", "close-wait", "( sport = :9031 )"], 1);
    let (code, out) = cap.interrupt();
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2, "{out}");
    let server = serde_json::json!([{"pid": srv.pid, "name": "ssc-capsrv"}]);
    let client = serde_json::json!([{"pid": cli.pid, "name": "ssc-capcli"}]);
    for f in flows {
        assert_eq!(f["local"], "both", "{f}");
        assert_eq!(f["server_processes"], server, "{f}");
    }
    let held: Vec<&Value> = flows
        .iter()
        .filter(|f| f.get("client_processes").is_some())
        .collect();
    assert_eq!(held.len(), 1, "{out}");
    assert_eq!(held[0]["client_processes"], client, "{out}");
    assert_eq!(held[0]["outcome"], "established", "{out}");
}

/// `-r`: a file may come from another host; nothing in it is named.
#[test]
fn files_name_no_processes() {
    let (v, _) = read_fixture_json("lo-en10mb.pcap");
    for f in v["flows"].as_array().unwrap() {
        assert!(f.get("local").is_none(), "{f}");
        assert!(f.get("client_processes").is_none(), "{f}");
    }
}

/// The table names the listener in the live line of a first SYN (from the start-of-capture
/// dump), and both ends in the flow and destination rows; `--jsonl` names the flows still open
/// at the end (written then).
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_lines_tables_and_jsonl_name_local_processes() {
    if !support::require_root("live_lines_tables_and_jsonl_name_local_processes") {
        return;
    }
    let ns = Netns::new();
    let path = ns.path();
    let srv = support::child::spawn("capture:listen", &["127.0.0.1:9032".into()], Some(&path));
    let mut cli = support::child::spawn("capture:connect", &["127.0.0.1:9032".into()], Some(&path));
    let cap = Running::start(&["capture", "--netns", &path, "-i", "lo", "--port", "9032"]);
    cli.send("connect");
    wait_for_ss(&ns, &["state", "established", "( dport = :9032 )"], 1);
    let (code, out) = cap.interrupt();
    assert_eq!(code, 0, "{out}");
    let syn = out
        .lines()
        .find(|l| l.contains("SYN      (attempt 1)"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        syn.ends_with(&format!("(attempt 1) to ssc-capsrv({})", srv.pid)),
        "{out}"
    );
    let client = format!("ssc-capcli({})", cli.pid);
    let server = format!("127.0.0.1:9032 ssc-capsrv({})", srv.pid);
    let row = out
        .lines()
        .find(|l| l.contains("established") && l.contains(&client))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(&server), "{out}");
    let dest = out
        .lines()
        .skip_while(|l| !l.starts_with("Destination"))
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    assert!(dest.starts_with(&server), "{out}");

    let cap = Running::start(&[
        "capture", "--netns", &path, "-i", "lo", "--port", "9032", "--jsonl",
    ]);
    cli.send("connect");
    wait_for_ss(&ns, &["state", "established", "( dport = :9032 )"], 2);
    let (code, out) = cap.interrupt();
    assert_eq!(code, 0, "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["local"], "both", "{out}");
    assert_eq!(lines[0]["client_processes"][0]["pid"], cli.pid, "{out}");
    assert_eq!(
        lines[0]["server_processes"][0]["name"], "ssc-capsrv",
        "{out}"
    );
}
