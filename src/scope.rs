//! Where to look: the caller's network namespace, one named by `--netns`, or every namespace
//! on the node (`--all-netns`). Running a collector across the node happens here, one way:
//! worker threads enter each namespace in turn (setns moves only the calling thread), and a
//! namespace that vanishes mid-scan is skipped with a note while the others are kept.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::host::Host;
use crate::netns::{self, NetnsError, NetnsSpec};
use crate::procs::container::{Attributor, Container};
use crate::procs::discover::{discover, NetnsEntry, Roots};

/// Which network namespaces a command covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The namespace sockscope runs in.
    Here,
    /// One namespace (`--netns`).
    One(NetnsSpec),
    /// Every namespace on the node (`--all-netns`).
    All,
}

impl Scope {
    pub fn new(netns: Option<&NetnsSpec>, all: bool) -> Scope {
        match (netns, all) {
            (_, true) => Scope::All,
            (Some(spec), false) => Scope::One(spec.clone()),
            (None, false) => Scope::Here,
        }
    }
}

/// Where a row lives on the node: the namespace and, when its processes belong to one, the
/// container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Where {
    pub netns: NetnsRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetnsRef {
    pub inode: u64,
    /// The `ip netns` name (`docker/ID` for Docker's), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host's own namespace (PID 1's).
    pub host: bool,
}

impl NetnsRef {
    /// `host`, the name, or `net:[INODE]`.
    pub fn label(&self) -> String {
        match (&self.name, self.host) {
            (Some(n), _) => n.clone(),
            (None, true) => "host".into(),
            (None, false) => format!("net:[{}]", self.inode),
        }
    }
}

/// One namespace's result.
pub struct Found<T> {
    pub place: Where,
    pub value: T,
}

/// The result of a node-wide run: every namespace that could be read, and notes for the rest.
pub struct NodeRun<T> {
    pub found: Vec<Found<T>>,
    pub notes: Vec<String>,
}

/// Runs `collect` inside every network namespace of the node, spread over a few worker
/// threads. A namespace that is gone by the time it is entered is a note; a missing privilege
/// is an error (it would be the same for every namespace).
pub fn for_each_netns<T, F>(
    host: &dyn Host,
    roots: &Roots,
    collect: F,
) -> Result<NodeRun<T>, crate::commands::RunError>
where
    T: Send,
    F: Fn() -> Result<T, crate::commands::RunError> + Sync,
{
    // Discovery and attribution read through the run's host, so a snapshot recorded with
    // --all-netns replays the node it saw.
    let discovery = discover(host, roots);
    let mut notes = discovery.notes;
    let mut attributor = Attributor::new(host, &roots.fs);
    let places: Vec<Where> = discovery
        .namespaces
        .iter()
        .map(|e| place_of(host, e, roots, &mut attributor))
        .collect();
    notes.append(&mut attributor.notes);

    let entries = &discovery.namespaces;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<T, crate::commands::RunError>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(entries.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(e) = entries.get(i) else { break };
                let r = netns::enter(host, &NetnsSpec::Path(e.path.clone()))
                    .map_err(Into::into)
                    .and_then(|()| collect());
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut found = Vec::with_capacity(results.len());
    for (i, r) in results {
        match r {
            Ok(value) => found.push(Found {
                place: places[i].clone(),
                value,
            }),
            Err(crate::commands::RunError::Netns(e)) if vanished(host, &e, &entries[i].path) => {
                notes.push(format!(
                    "network namespace {} went away during the scan; skipped",
                    places[i].netns.label()
                ))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(NodeRun { found, notes })
}

/// A namespace (or the process holding it) that no longer exists. Between discovery and
/// setns a process can exit (its `ns/net` then answers EACCES while it is a zombie, ENOENT
/// after) and `ip netns del` can unmount a name (the file left behind is no namespace:
/// EINVAL): each is a namespace that went away, not a privilege or input problem.
fn vanished(host: &dyn Host, e: &NetnsError, path: &std::path::Path) -> bool {
    match e {
        NetnsError::NotFound { .. } | NetnsError::NoProcess { .. } => true,
        NetnsError::Io { source, .. } => source.raw_os_error() == Some(libc::ENOENT),
        NetnsError::NotNetns { .. } => !host.is_nsfs(&path.to_string_lossy()),
        NetnsError::DeniedToRoot { .. } | NetnsError::Permission { .. } => process_gone(host, path),
    }
}

/// For a `PROC/PID/ns/net` path: the process no longer exists or is a zombie.
fn process_gone(host: &dyn Host, ns_path: &std::path::Path) -> bool {
    let Some(pid_dir) = ns_path.parent().and_then(|p| p.parent()) else {
        return false;
    };
    let stat = host.read_file(&pid_dir.join("stat").to_string_lossy());
    match stat.map(|b| String::from_utf8_lossy(&b).into_owned()) {
        // The state follows the name, which is in parentheses and may hold anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The namespace's name and the container its processes belong to: the one holding most of
/// them (a Kubernetes pod's pause process shares the namespace with the app containers).
fn place_of(host: &dyn Host, e: &NetnsEntry, roots: &Roots, attributor: &mut Attributor) -> Where {
    let mut counts: Vec<(Container, usize)> = Vec::new();
    // The host's namespace is nobody's container, even when a container shares it
    // (`--network host`): naming it after one would be wrong, and skipping it spares a cgroup
    // read per host process.
    let pids: &[u32] = if e.host { &[] } else { &e.pids };
    for pid in pids {
        let path = roots.proc.join(format!("{pid}/cgroup"));
        let Ok(bytes) = host.read_file(&path.to_string_lossy()) else {
            continue;
        };
        let Some(c) = attributor.of_cgroup(&String::from_utf8_lossy(&bytes)) else {
            continue;
        };
        match counts.iter_mut().find(|(k, _)| k.id == c.id) {
            Some((_, n)) => *n += 1,
            None => counts.push((c, 1)),
        }
    }
    let container = counts
        .into_iter()
        .max_by_key(|(c, n)| (*n, c.name.is_some(), std::cmp::Reverse(c.id.clone())))
        .map(|(c, _)| c);
    Where {
        netns: NetnsRef {
            inode: e.inode,
            name: e.name.clone(),
            host: e.host,
        },
        container,
    }
}

/// Roots for the live host; `fs_root` (a hidden flag) stands a fixture tree in for `/` so
/// tests can provide Docker's `/run/docker/netns` and the runtimes' metadata files.
pub fn live_roots(fs_root: Option<&PathBuf>) -> Roots {
    let mut r = Roots::default();
    if let Some(fs) = fs_root {
        r.fs = fs.clone();
    }
    r
}

#[cfg(test)]
mod vanish_tests {
    use super::*;

    /// What a namespace that went away between discovery and setns looks like, told apart
    /// from a real refusal.
    #[test]
    fn a_namespace_gone_mid_scan_is_told_from_a_refusal() {
        let me = std::path::PathBuf::from(format!(
            "{}/{}/ns/net",
            crate::host::PROC,
            std::process::id()
        ));
        let gone =
            std::path::PathBuf::from(format!("{}/{}/ns/net", crate::host::PROC, u32::MAX - 1));
        let denied = |p: &std::path::Path| NetnsError::DeniedToRoot {
            spec: p.display().to_string(),
            path: p.display().to_string(),
        };
        assert!(
            vanished(&crate::host::LiveHost, &denied(&gone), &gone),
            "an exited process"
        );
        assert!(
            !vanished(&crate::host::LiveHost, &denied(&me), &me),
            "a live process refusing is a refusal"
        );
        // `ip netns del` leaves a plain file behind: setns answers EINVAL.
        let file = std::env::temp_dir().join(format!("ssc-not-netns-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let not = NetnsError::NotNetns {
            path: file.display().to_string(),
        };
        assert!(vanished(&crate::host::LiveHost, &not, &file));
        let _ = std::fs::remove_file(&file);
        assert!(!vanished(
            &crate::host::LiveHost,
            &NetnsError::NotNetns {
                path: me.display().to_string()
            },
            &me
        ));
    }
}
