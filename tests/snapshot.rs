//! `sockscope snapshot` and `--from`: a snapshot recorded from a live namespace replays to the
//! same JSON, byte for byte, as the commands run while recording; broken, foreign and hostile
//! snapshots are refused or escaped like live input.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};

use sockscope::host::archive::{write_archive, Manifest, FORMAT, VERSION};
use sockscope::host::tape::{Bytes, Tape};
use sockscope::host::{FileKind, Meta};

use crate::support::{self, run, Netns};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssc-snap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every collecting command replayed from a snapshot of a namespace holding a full accept
/// queue, TIME_WAIT sockets and a bound UDP socket prints what the same command printed while
/// the snapshot was recorded, and doctor finds the full queue in both.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn replays_give_the_recorded_reports_byte_for_byte() {
    if !support::require_root("replays_give_the_recorded_reports_byte_for_byte") {
        return;
    }
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let keep = ns.within(|| {
        // A backlog of 2 with 3 clients waiting: the accept queue is full.
        let full = support_listen("127.0.0.1:8401", 2);
        let waiting: Vec<_> = (0..3)
            .map(|_| TcpStream::connect("127.0.0.1:8401").unwrap())
            .collect();
        // 4 connections closed by the client first: 4 TIME_WAIT.
        let l = TcpListener::bind("127.0.0.1:8402").unwrap();
        for _ in 0..4 {
            let c = TcpStream::connect("127.0.0.1:8402").unwrap();
            let (s, _) = l.accept().unwrap();
            drop(c);
            drop(s);
        }
        let udp = UdpSocket::bind("127.0.0.1:8403").unwrap();
        (full, waiting, l, udp)
    });
    let dir = tmp("replay");
    let snap = dir.join("ns.tar.zst");
    let reports = dir.join("reports");
    // The snapshot of the namespace, with the reports of the recorded commands or without.
    let record = |file: &Path, reports: Option<&Path>| {
        let mut line = vec!["snapshot", "--netns", &ns.name, "--interval", "100ms"];
        if let Some(r) = reports {
            line.extend(["--reports", r.to_str().unwrap()]);
        }
        line.push(file.to_str().unwrap());
        let (code, _, err) = run(&line);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("snapshot written to"), "{err}");
    };
    // The recorded commands and the exit code each replays with.
    let commands = [
        ("sockets", &["sockets", "-p", "-i", "-m", "--json"][..], 0),
        ("listeners", &["listeners", "--json"][..], 0),
        ("states", &["states", "--json"][..], 0),
        ("fds", &["fds", "--all", "--kinds", "--json"][..], 0),
        ("doctor", &["doctor", "--json"][..], 1),
    ];
    record(&snap, Some(&reports));
    let from = snap.to_str().unwrap();
    for (name, args, want_code) in commands {
        let recorded = std::fs::read_to_string(reports.join(format!("{name}.json"))).unwrap();
        let mut line = args.to_vec();
        line.extend(["--from", from]);
        let (code, replayed, err) = run(&line);
        assert_eq!(code, want_code, "{name}: {err}");
        assert!(!recorded.is_empty(), "{name}: nothing recorded");
        assert_eq!(replayed, recorded, "{name} replayed differently");
    }
    // Without --reports the commands run only for what they read (nothing is rendered): the
    // snapshot still answers every one of them, and the same population gives the same lists.
    let quiet = dir.join("quiet.tar.zst");
    record(&quiet, None);
    for (name, args, want_code) in commands {
        let mut line = args.to_vec();
        line.extend(["--from", quiet.to_str().unwrap()]);
        let (code, replayed, err) = run(&line);
        assert_eq!(
            code, want_code,
            "{name} from a snapshot without reports: {err}"
        );
        if name == "listeners" || name == "states" {
            let recorded = std::fs::read_to_string(reports.join(format!("{name}.json"))).unwrap();
            assert_eq!(replayed, recorded, "{name} from a snapshot without reports");
        }
    }
    // And what was recorded is the namespace's real population.
    let states: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("states.json")).unwrap())
            .unwrap();
    assert_eq!(states["states"]["time-wait"], 4, "{states:#}");
    let doctor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("doctor.json")).unwrap())
            .unwrap();
    let symptoms: Vec<&str> = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["symptom"].as_str().unwrap())
        .collect();
    assert!(symptoms.contains(&"accept-queue"), "{doctor:#}");
    // A filter asked of a replay runs in user space, as the kernel would have run it.
    let (code, out, err) = run(&["sockets", "--json", "--from", from, "sport", "= :8403"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sockets"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["sockets"][0]["proto"], "udp", "{v:#}");
    // A probe cannot be replayed, nor can a namespace be entered, nor the node view asked of
    // a one-namespace snapshot: usage errors.
    for bad in [
        &["doctor", "--from", from, "127.0.0.1:8401"][..],
        &["states", "--from", from, "--all-netns"][..],
        &["doctor", "--from", from, "--all-netns"][..],
        &["states", "--from", from, "--netns", &ns.name][..],
        &["fds", "--from", from, "--watch", "--count", "1"][..],
    ] {
        let (code, _, err) = run(bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.starts_with("sockscope: "), "{err}");
    }
    drop(keep);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The namespace's place in a node-view report.
fn place_of(doc: &serde_json::Value, inode: u64) -> Option<&serde_json::Value> {
    doc["places"].as_array()?.iter().find(|p| {
        p["netns"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["inode"] == inode))
    })
}

fn inode_of(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// `snapshot --all-netns` records the node: a named namespace, a Docker-style bind-mounted one
/// under the `--fs-root` tree and a real Podman container. Replayed after all three are gone,
/// `states --all-netns` and `doctor --all-netns` print what they printed while recording.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn all_netns_snapshot_replays_the_node_after_it_is_gone() {
    if !support::require_root("all_netns_snapshot_replays_the_node_after_it_is_gone") {
        return;
    }
    let pid = std::process::id();
    let ns = Netns::new();
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let keep = ns.within(|| {
        let l = crate::sockets::listen("127.0.0.1:0", 128);
        crate::sockets::make_time_wait(&l, 7);
        l
    });
    crate::sockets::wait_for_state(&ns, "time-wait", 7);
    let mut root = crate::node::FsRoot::tagged("snapnode");
    let docker_id = format!("{:0>64x}", 0x5eed_1000_u64 + pid as u64);
    let docker_ns = root.bind_netns(&format!("run/docker/netns/{}", &docker_id[..12]));
    let keep_docker = crate::node::populate(&docker_ns, 3);
    let podman = crate::node::Podman::run(&format!("ssc-snap-{pid}-api"));
    let keep_podman = crate::node::populate(&podman.netns(), 5);
    let (ns_ino, docker_ino, podman_ino) = (
        inode_of(&ns.path()),
        inode_of(&docker_ns),
        inode_of(&podman.netns()),
    );

    let dir = tmp("node");
    let snap = dir.join("node.tar.zst");
    let reports = dir.join("reports");
    let fs_root = root.dir.display().to_string();
    let (code, _, err) = run(&[
        "snapshot",
        "--all-netns",
        "--fs-root",
        &fs_root,
        "--interval",
        "100ms",
        "--reports",
        reports.to_str().unwrap(),
        snap.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let recorded = |name: &str| std::fs::read_to_string(reports.join(name)).unwrap();
    let states = recorded("states-all-netns.json");
    let doc: serde_json::Value = serde_json::from_str(&states).unwrap();
    let tw = |ino: u64| place_of(&doc, ino).map(|p| p["states"]["time-wait"].clone());
    assert_eq!(tw(ns_ino), Some(7.into()), "{doc:#}");
    assert_eq!(tw(docker_ino), Some(3.into()), "{doc:#}");
    assert_eq!(tw(podman_ino), Some(5.into()), "{doc:#}");
    let docker_name = format!("docker/{}", &docker_id[..12]);
    assert_eq!(
        place_of(&doc, docker_ino).unwrap()["netns"][0]["name"],
        docker_name.as_str()
    );
    let p = place_of(&doc, podman_ino).unwrap();
    assert_eq!(p["container"]["name"], podman.name.as_str(), "{p:#}");
    assert_eq!(p["container"]["id"], podman.id.as_str(), "{p:#}");

    // The node is gone: the replay reads only the snapshot.
    drop((keep, keep_docker, keep_podman));
    drop(podman);
    drop(root);
    drop(ns);
    let from = snap.to_str().unwrap();
    let (code, replayed, err) = run(&["states", "--all-netns", "--json", "--from", from]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(replayed, states, "states --all-netns replayed differently");
    let (code, replayed, err) = run(&["doctor", "--all-netns", "--json", "--from", from]);
    assert!(code == 0 || code == 1, "{err}");
    assert_eq!(
        replayed,
        recorded("doctor-all-netns.json"),
        "doctor --all-netns replayed differently"
    );
    let (code, replayed, err) = run(&["doctor", "--json", "--from", from]);
    assert!(code == 0 || code == 1, "{err}");
    assert_eq!(
        replayed,
        recorded("doctor.json"),
        "doctor replayed differently"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn support_listen(addr: &str, backlog: i32) -> TcpListener {
    let l = TcpListener::bind(addr).unwrap();
    // SAFETY: listen on a socket we own, with a smaller backlog.
    unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), backlog) };
    l
}

fn manifest() -> Manifest {
    Manifest {
        format: FORMAT.into(),
        version: VERSION,
        sockscope_version: "0.1.0".into(),
        hostname: "crafted".into(),
        kernel: "6.8.0".into(),
        recorded_at: 0,
        netns: None,
        commands: vec![],
        interval_us: 0,
        all_netns: false,
        fs_root: None,
    }
}

fn one<T>(v: T) -> Vec<Result<T, i32>> {
    vec![Ok(v)]
}

/// A snapshot crafted by hand: one process with a name full of escape sequences and absurd
/// fd numbers.
fn crafted(path: &Path) {
    let mut t = Tape::default();
    t.dirs
        .insert("/proc".into(), one(vec![Bytes(b"4242".to_vec())]));
    t.procfs.insert("/proc".into(), vec![true]);
    t.release.push(Some("6.8.0".into()));
    t.stats.insert(
        "/proc/4242/fd".into(),
        one(Meta {
            size: u64::MAX,
            ino: 1,
            kind: FileKind::Dir,
        }),
    );
    t.nofile
        .insert("4242".into(), one((Some(1), Some(u64::MAX - 1))));
    t.files.insert(
        "/proc/4242/comm".into(),
        one(Bytes(b"\x1b[2J\x1b]0;pwned\x07evil\n".to_vec())),
    );
    t.files.insert(
        "/proc/sys/fs/file-nr".into(),
        one(Bytes(b"18446744073709551615\t0\t1\n".to_vec())),
    );
    let mut links = sockscope::fxhash::FxMap::default();
    links.insert(
        "/proc/4242".to_string(),
        one(std::sync::Arc::new(vec![(
            3,
            Ok(Bytes(b"socket:[99]".to_vec())),
        )])),
    );
    t.fd_links = links;
    write_archive(path, &manifest(), &mut t).unwrap();
}

/// Hostile content in a snapshot is treated as from a live host: escaped in tables, absurd
/// numbers shown as numbers, no panic.
#[test]
fn hostile_snapshot_content_is_escaped() {
    let dir = tmp("hostile");
    let snap = dir.join("hostile.tar.zst");
    crafted(&snap);
    let (code, out, err) = run(&["fds", "--from", snap.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("evil"), "{out}");
    assert!(out.contains("4242"), "{out}");
    let (code, out, err) = run(&["fds", "--json", "--from", snap.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["processes"][0]["fds"], 1, "one fd listed: {v:#}");
    // Recorded without --all-netns: the node view is not in it, and says how to get it.
    let (code, _, err) = run(&["states", "--all-netns", "--from", snap.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("snapshot --all-netns"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Truncated, damaged, foreign and future snapshots: one line, exit 2.
#[test]
fn broken_snapshots_are_a_one_line_input_error() {
    let dir = tmp("broken");
    let good = dir.join("good.tar.zst");
    crafted(&good);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.tar.zst");
    std::fs::write(&garbage, b"this is not a snapshot at all").unwrap();
    let foreign = dir.join("foreign.tar.zst");
    let mut m = manifest();
    m.format = "something-else".into();
    write_archive(&foreign, &m, &mut Tape::default()).unwrap();
    let future = dir.join("future.tar.zst");
    let mut m = manifest();
    m.version = VERSION + 1;
    write_archive(&future, &m, &mut Tape::default()).unwrap();
    let missing = dir.join("missing.tar.zst");
    for (file, says) in [
        (&cut, "truncated or damaged"),
        (&garbage, "not a sockscope snapshot"),
        (&foreign, "not a sockscope snapshot"),
        (&future, "format version"),
        (&missing, "cannot read snapshot"),
    ] {
        let (code, out, err) = run(&["doctor", "--from", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{file:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("sockscope: ") && err.contains(says),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
