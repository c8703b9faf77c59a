//! The node view (`--all-netns`): every network namespace at once, named, with the container
//! behind it. Real namespaces (named, bind-mounted only, Docker-style), real cgroups named as
//! the runtimes name them, and real Podman containers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{require_root, run_json, run_ok, Netns};

/// A scratch tree standing in for `/` (run/docker/netns, the runtimes' metadata), removed
/// with its mounts on drop.
pub(crate) struct FsRoot {
    pub(crate) dir: PathBuf,
    mounts: Vec<PathBuf>,
}

impl FsRoot {
    pub(crate) fn new() -> FsRoot {
        FsRoot::tagged("node")
    }

    /// A tree of its own per test (`tag`), so tests running side by side do not share one.
    pub(crate) fn tagged(tag: &str) -> FsRoot {
        let dir = std::env::temp_dir().join(format!("ssc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        // `ip netns` names stay where they are: the tree stands in for / as a whole.
        std::os::unix::fs::symlink("/run/netns", dir.join("run/netns")).unwrap();
        std::fs::create_dir_all(dir.join("var/lib")).unwrap();
        std::os::unix::fs::symlink("/var/lib/containers", dir.join("var/lib/containers")).unwrap();
        FsRoot {
            dir,
            mounts: Vec::new(),
        }
    }

    /// A new network namespace kept alive only by a bind mount at `rel`.
    pub(crate) fn bind_netns(&mut self, rel: &str) -> String {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        let arg = format!("--net={}", path.display());
        run_ok("unshare", &[arg.as_str(), "true"]);
        self.mounts.push(path.clone());
        let p = path.display().to_string();
        run_ok(
            "nsenter",
            &[&format!("--net={p}"), "ip", "link", "set", "lo", "up"],
        );
        p
    }

    pub(crate) fn write(&self, rel: &str, body: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

impl Drop for FsRoot {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = Command::new("umount").arg(m).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cgroup v2 directory named as a runtime names it, holding one process of ours.
pub(crate) struct Cgroup {
    dir: PathBuf,
    pub(crate) holder: std::process::Child,
}

impl Cgroup {
    /// Starts `sleep` inside the namespace at `netns` and moves it into `rel` under the
    /// cgroup2 mount (hybrid hosts mount it at /sys/fs/cgroup/unified).
    pub(crate) fn new(rel: &str, netns: &str) -> Cgroup {
        let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
            .expect("a cgroup2 mount");
        let dir = base.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        let holder = Command::new("nsenter")
            .args([&format!("--net={netns}"), "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter sleep");
        std::fs::write(dir.join("cgroup.procs"), holder.id().to_string()).unwrap();
        Cgroup { dir, holder }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // The directory empties once the process is reaped; remove it and the parents we made.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A Podman container (runc runtime, busybox image made locally, no network) that sleeps;
/// removed on drop.
pub(crate) struct Podman {
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) id: String,
}

const IMAGE: &str = "localhost/sockscope-test-busybox:1";

impl Podman {
    fn image() {
        let have = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status()
            .expect("podman is installed (scripts/setup installs it)");
        if have.success() {
            return;
        }
        let root = std::env::temp_dir().join(format!("ssc-bb-{}", std::process::id()));
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let mut tar = Command::new("tar")
            .args(["-C", &root.display().to_string(), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Command::new("podman")
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        let _ = tar.wait();
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn run(name: &str) -> Podman {
        Podman::image();
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", name])
            .output();
        let out = run_ok(
            "podman",
            &[
                "run",
                "-d",
                "--runtime",
                "runc",
                "--network",
                "none",
                "--ulimit",
                "nofile=4096:4096",
                "--ulimit",
                "nproc=4096:4096",
                "--name",
                name,
                IMAGE,
                "/bin/sleep",
                "300",
            ],
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = run_ok("podman", &["inspect", "--format", "{{.State.Pid}}", name]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        Podman {
            name: name.to_string(),
            pid,
            id,
        }
    }

    pub(crate) fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

/// Runs `f` on a thread inside the namespace at `path`.
pub(crate) fn within<T: Send>(path: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::support::enter(path);
            f()
        })
        .join()
        .unwrap()
    })
}

/// `n` TIME_WAIT sockets inside the namespace at `path` (tcp_tw_reuse off there, so each
/// connection leaves one), plus the listener they went to, which is returned.
pub(crate) fn populate(path: &str, n: usize) -> TcpListener {
    run_ok(
        "nsenter",
        &[
            &format!("--net={path}"),
            "sysctl",
            "-qw",
            "net.ipv4.tcp_tw_reuse=0",
        ],
    );
    let l = within(path, || {
        let l = listen("127.0.0.1:0", 128);
        make_time_wait(&l, n);
        l
    });
    // Bounded wait until the kernel shows them all (the last FINs may still be in flight).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = run_ok(
            "nsenter",
            &[
                &format!("--net={path}"),
                "ss",
                "-Htan",
                "state",
                "time-wait",
            ],
        );
        let got = String::from_utf8_lossy(&out.stdout).lines().count();
        if got == n {
            return l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: {got} TIME_WAIT, expected {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn place(doc: &Value, inode: u64) -> &Value {
    doc["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["netns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["inode"] == inode)
        })
        .unwrap_or_else(|| panic!("namespace {inode} not in {doc:#}"))
}

fn inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn states_all_netns_names_every_namespace_and_container() {
    if !require_root("states_all_netns_names_every_namespace_and_container") {
        return;
    }
    let pid = std::process::id();
    let a = Netns::new();
    let b = Netns::new();
    let mut root = FsRoot::new();
    // Docker's namespace (a bind mount under run/docker/netns) with a process in a cgroup
    // named as Docker's systemd driver names it, and Docker's metadata for it.
    let docker_id = format!("{:0>64x}", 0x5eed_0000_u64 + pid as u64);
    let docker_ns = root.bind_netns(&format!("run/docker/netns/{}", &docker_id[..12]));
    root.write(
        &format!("var/lib/docker/containers/{docker_id}/config.v2.json"),
        r#"{"Name":"/shop-web","Config":{"Labels":{"io.kubernetes.pod.name":"web-7d9f","io.kubernetes.pod.namespace":"shop","io.kubernetes.container.name":"nginx"}}}"#,
    );
    let _docker = Cgroup::new(
        &format!("system.slice/docker-{docker_id}.scope"),
        &docker_ns,
    );
    // A namespace nobody is in and nobody named: only its bind mount keeps it.
    let orphan = root.bind_netns("keep/orphan");
    // Two real Podman containers.
    let c1 = Podman::run(&format!("ssc-node-{pid}-api"));
    let c2 = Podman::run(&format!("ssc-node-{pid}-db"));

    a.sysctl("net.ipv4.tcp_tw_reuse", "0");
    b.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let _la = a.within(|| {
        let l = listen("127.0.0.1:0", 128);
        make_time_wait(&l, 30);
        l
    });
    let _lb = b.within(|| {
        let l = listen("127.0.0.1:0", 128);
        make_time_wait(&l, 12);
        l
    });
    let _ld = populate(&docker_ns, 5);
    let _lo = populate(&orphan, 3);
    let _l1 = populate(&c1.netns(), 21);
    let _l2 = populate(&c2.netns(), 8);
    wait_for_state(&a, "time-wait", 30);
    wait_for_state(&b, "time-wait", 12);

    let fs_root = root.dir.display().to_string();
    let doc = run_json(&["states", "--all-netns", "--fs-root", &fs_root, "--json"]);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["by"], "netns");
    let tw = |p: &Value| p["states"]["time-wait"].as_u64().unwrap();
    let listening = |p: &Value| p["states"]["listening"].as_u64().unwrap();

    let pa = place(&doc, inode(&a.path()));
    assert_eq!((tw(pa), listening(pa)), (30, 1));
    assert_eq!(pa["netns"][0]["name"], a.name.as_str());
    assert!(pa.get("container").is_none(), "{pa}");
    assert_eq!(tw(place(&doc, inode(&b.path()))), 12);

    let pd = place(&doc, inode(&docker_ns));
    assert_eq!(tw(pd), 5);
    assert_eq!(
        pd["netns"][0]["name"],
        format!("docker/{}", &docker_id[..12])
    );
    let c = &pd["container"];
    assert_eq!(c["runtime"], "docker");
    assert_eq!(c["id"], docker_id.as_str());
    assert_eq!(
        (&c["name"], &c["pod"], &c["pod_namespace"]),
        (
            &Value::from("nginx"),
            &Value::from("web-7d9f"),
            &Value::from("shop")
        )
    );

    let po = place(&doc, inode(&orphan));
    assert_eq!(tw(po), 3);
    assert!(po["netns"][0].get("name").is_none(), "{po}");

    for (c, n) in [(&c1, 21), (&c2, 8)] {
        let p = place(&doc, inode(&c.netns()));
        assert_eq!((tw(p), listening(p)), (n, 1), "{p}");
        assert_eq!(p["container"]["runtime"], "podman");
        assert_eq!(p["container"]["id"], c.id.as_str());
        assert_eq!(p["container"]["name"], c.name.as_str());
    }
    // Each namespace once, worst first (by TIME_WAIT here: no ephemeral use to speak of).
    let inodes: Vec<u64> = doc["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["netns"][0]["inode"].as_u64().unwrap())
        .collect();
    let mut unique = inodes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), inodes.len());

    // The table names the container the way people say it.
    let (code, table, err) = crate::support::run(&["states", "--all-netns", "--fs-root", &fs_root]);
    assert_eq!(code, 0, "{err}");
    let line = table
        .lines()
        .find(|l| l.contains(&docker_id[..12]) && l.contains("k8s/shop/web-7d9f/nginx"))
        .unwrap_or_else(|| panic!("no docker row:\n{table}"));
    assert!(line.split_whitespace().any(|w| w == "5"), "{line}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&format!("podman/{}", c1.name))),
        "{table}"
    );

    // --by container groups by container; --all-netns and --netns do not mix.
    let by = run_json(&[
        "states",
        "--all-netns",
        "--by",
        "container",
        "--fs-root",
        &fs_root,
        "--json",
    ]);
    assert_eq!(by["by"], "container");
    let p1 = place(&by, inode(&c1.netns()));
    assert_eq!(
        (tw(p1), &p1["container"]["name"]),
        (21, &Value::from(c1.name.as_str()))
    );
    let (code, _, err) = crate::support::run(&["states", "--all-netns", "--netns", &a.name]);
    assert_eq!(code, 2, "{err}");
}

/// Polls until something listens on TCP `port` inside the namespace at `path` (bounded).
fn wait_listening(path: &str, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = run_ok(
            "nsenter",
            &[
                &format!("--net={path}"),
                "ss",
                "-Htln",
                &format!("sport = :{port}"),
            ],
        );
        if !out.stdout.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port} in {path}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn sockets_and_listeners_across_the_node_name_namespace_container_and_owners() {
    if !require_root("sockets_and_listeners_across_the_node_name_namespace_container_and_owners") {
        return;
    }
    let me = std::process::id();
    let a = Netns::new();
    let b = Netns::new();
    let c = Podman::run(&format!("ssc-node-{me}-web"));
    // Below the ephemeral range, so no other test's connection can hold them.
    const PORT: u16 = 17301;
    const OTHER: u16 = 17302;
    let _la = a.within(|| listen(&format!("127.0.0.1:{PORT}"), 16));
    let _lb = b.within(|| {
        (
            listen(&format!("127.0.0.1:{PORT}"), 32),
            listen(&format!("127.0.0.1:{OTHER}"), 8),
        )
    });
    // A listener held by a process of the container (busybox nc in it).
    run_ok(
        "podman",
        &[
            "exec",
            "-d",
            &c.name,
            "/bin/busybox",
            "nc",
            "-l",
            "-p",
            &PORT.to_string(),
        ],
    );
    wait_listening(&c.netns(), PORT);

    let doc = run_json(&[
        "listeners",
        "--all-netns",
        "--port",
        &PORT.to_string(),
        "--json",
    ]);
    assert_eq!(doc["schema_version"], 1);
    // Tests run side by side, each in namespaces of its own: only ours are looked at.
    let ours = [inode(&a.path()), inode(&b.path()), inode(&c.netns())];
    let mine = |r: &&Value| ours.iter().any(|&i| r["netns"]["inode"] == i);
    let rows: Vec<&Value> = doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(mine)
        .collect();
    // Exactly our three.
    assert_eq!(rows.len(), 3, "{doc:#}");
    let at = |ns: u64| {
        rows.iter()
            .find(|r| r["netns"]["inode"] == ns)
            .unwrap_or_else(|| panic!("no listener in namespace {ns}: {doc:#}"))
    };
    let ra = at(inode(&a.path()));
    assert_eq!(ra["netns"]["name"], a.name.as_str());
    assert_eq!(ra["netns"]["host"], false);
    assert_eq!(ra["backlog"], 16);
    assert!(ra.get("container").is_none(), "{ra}");
    assert_eq!(
        ra["processes"],
        serde_json::json!([{"pid": me, "name": proc_name(me)}])
    );
    let rb = at(inode(&b.path()));
    assert_eq!(
        (&rb["netns"]["name"], &rb["backlog"]),
        (&Value::from(b.name.as_str()), &Value::from(32))
    );
    let rc = at(inode(&c.netns()));
    assert_eq!(rc["container"]["runtime"], "podman");
    assert_eq!(rc["container"]["name"], c.name.as_str());
    assert_eq!(rc["container"]["id"], c.id.as_str());
    let owners = rc["processes"].as_array().unwrap();
    assert_eq!(owners.len(), 1, "{rc}");
    assert_eq!(owners[0]["container"]["name"], c.name.as_str(), "{rc}");
    assert_eq!(owners[0]["container"]["id"], c.id.as_str());

    // The table: a row per namespace, named, with the container the way people say it.
    let (code, table, err) =
        crate::support::run(&["listeners", "--all-netns", "--port", &PORT.to_string()]);
    assert_eq!(code, 0, "{err}");
    let all: Vec<&str> = table.lines().collect();
    assert!(
        all[0].starts_with("Netns") && all[0].contains("Container"),
        "{table}"
    );
    let lines: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| {
            l.starts_with(a.name.as_str())
                || l.starts_with(b.name.as_str())
                || l.contains(&c.id[..12])
        })
        .collect();
    assert_eq!(lines.len(), 3, "{table}");
    for ns in [&a.name, &b.name] {
        let l = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(ns.as_str()))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(l.contains(&format!("({me})")), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("podman/{} {}", c.name, &c.id[..12]))),
        "{table}"
    );

    // sockets: the same node view, one row per socket; -p owners matched by inode.
    let socks = run_json(&[
        "sockets",
        "--all-netns",
        "-p",
        "-t",
        "--sport",
        &OTHER.to_string(),
        "--json",
    ]);
    let socks: Vec<&Value> = socks["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(mine)
        .collect();
    assert_eq!(socks.len(), 1, "{socks:?}");
    assert_eq!(socks[0]["netns"]["name"], b.name.as_str());
    assert_eq!(socks[0]["processes"][0]["pid"], me);
    assert_eq!(socks[0]["send_q"], 8);
    let ports = run_json(&[
        "sockets",
        "--all-netns",
        "-t",
        "-l",
        "--sport",
        &PORT.to_string(),
        "--json",
    ]);
    let listed: Vec<&Value> = ports["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(mine)
        .collect();
    assert_eq!(listed.len(), 3, "{ports:#}");
    assert!(listed[0].get("processes").is_none());

    // Nothing anywhere: exit 1, said for the whole node.
    let (code, _, err) = crate::support::run(&["listeners", "--all-netns", "--port", "17399"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nothing listens on port 17399 in any network namespace on the node"),
        "{err}"
    );
    let (code, _, err) = crate::support::run(&["sockets", "--all-netns", "--netns", &a.name]);
    assert_eq!(code, 2, "{err}");
}

fn proc_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim_end()
        .to_string()
}
