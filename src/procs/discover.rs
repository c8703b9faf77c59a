//! Every network namespace on the node, each once: the `ns/net` of every process (deduplicated
//! by inode), the names `ip netns` keeps in `/run/netns`, Docker's `/run/docker/netns`, and
//! namespaces kept alive only by a bind mount (nsfs entries in each mount namespace's
//! `mountinfo`). `ss -N` sees only `/run/netns`; on a container node most namespaces live
//! elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::{Host, PROC};

/// The filesystems the node view reads, through the run's host: the proc root, and `/` for
/// `/run/netns`, `/run/docker/netns` and the container runtimes' metadata (a fixture tree in
/// tests).
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub fs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: PathBuf::from(PROC),
            fs: PathBuf::from("/"),
        }
    }
}

/// One network namespace and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetnsEntry {
    pub inode: u64,
    /// Its `ip netns` name, or `docker/ID` for Docker's, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The namespace of PID 1: the host's own.
    pub host: bool,
    /// A file to open for `setns` (a process's `ns/net` or a bind mount).
    #[serde(skip)]
    pub path: PathBuf,
    /// The processes whose main thread lives here.
    #[serde(skip)]
    pub pids: Vec<u32>,
}

impl NetnsEntry {
    /// What a user calls it: the name, `host`, or `net:[INODE]` as `ls -l /proc/PID/ns` shows.
    pub fn label(&self) -> String {
        match (&self.name, self.host) {
            (Some(n), _) => n.clone(),
            (None, true) => "host".to_string(),
            (None, false) => format!("net:[{}]", self.inode),
        }
    }
}

/// The namespaces found, sorted by inode (host first), with what could not be looked at.
#[derive(Debug, Default)]
pub struct Discovery {
    pub namespaces: Vec<NetnsEntry>,
    pub notes: Vec<String>,
}

/// `path` as the host's questions take it.
fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The inode of the host's own network namespace: PID 1's; where PID 1 is protected (even
/// from root, as on these machines), kthreadd's: kernel threads always live in the initial
/// namespace.
pub fn host_netns_inode(host: &dyn Host, proc_root: &Path) -> Option<u64> {
    ["1", "2"]
        .iter()
        .find_map(|p| host.ns_inode(&text(&proc_root.join(p).join("ns/net"))).ok())
}

pub fn discover(host: &dyn Host, roots: &Roots) -> Discovery {
    let mut found: BTreeMap<u64, NetnsEntry> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut mount_spaces = BTreeSet::new();
    let ino_of = |p: &Path| host.ns_inode(&text(p)).ok();
    let host_ino = host_netns_inode(host, &roots.proc);

    let pids = match super::fdwalk::list_pids(host, &text(&roots.proc)) {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!(
                "cannot list processes in {}: {e}",
                roots.proc.display()
            ));
            Vec::new()
        }
    };
    for pid in pids {
        let ns = roots.proc.join(format!("{pid}/ns/net"));
        // A process that exits now, or a kernel thread we may not look at: skipped.
        let Some(ino) = ino_of(&ns) else {
            continue;
        };
        let e = found.entry(ino).or_insert_with(|| NetnsEntry {
            inode: ino,
            name: None,
            host: Some(ino) == host_ino,
            path: ns,
            pids: Vec::new(),
        });
        e.pids.push(pid);
        // Bind-mounted namespaces: one mountinfo per mount namespace is enough.
        if let Some(mnt) = ino_of(&roots.proc.join(format!("{pid}/ns/mnt"))) {
            if mount_spaces.insert(mnt) {
                bind_mounts(host, roots, pid, &mut found);
            }
        }
    }
    for (dir, prefix) in [("netns", ""), ("docker/netns", "docker/")] {
        named(
            host,
            &roots.fs.join("run").join(dir),
            prefix,
            host_ino,
            &mut found,
        );
    }
    let mut namespaces: Vec<NetnsEntry> = found.into_values().collect();
    namespaces.sort_by_key(|e| (!e.host, e.inode));
    Discovery { namespaces, notes }
}

/// Namespaces with a name: files in `dir` that are mounted nsfs entries.
fn named(
    host: &dyn Host,
    dir: &Path,
    prefix: &str,
    host_ino: Option<u64>,
    found: &mut BTreeMap<u64, NetnsEntry>,
) {
    let Ok(mut names) = host.list_dir(&text(dir)) else {
        return;
    };
    names.sort();
    for file in names {
        let file = String::from_utf8_lossy(&file).into_owned();
        let path = dir.join(&file);
        let shown = text(&path);
        if !host.is_nsfs(&shown) {
            continue;
        }
        let Ok(m) = host.stat(&shown) else {
            continue;
        };
        let name = format!("{prefix}{file}");
        let entry = found.entry(m.ino).or_insert_with(|| NetnsEntry {
            inode: m.ino,
            name: None,
            host: Some(m.ino) == host_ino,
            path: path.clone(),
            pids: Vec::new(),
        });
        // The first name (sorted) wins; a name is a steadier path to enter by than a pid.
        if entry.name.is_none() {
            entry.name = Some(name);
            entry.path = path;
        }
    }
}

/// Network namespaces bind-mounted in `pid`'s mount namespace (nsfs mounts whose root is
/// `net:[INODE]`), reached through `ROOT/PID/root` so other mount namespaces work too.
fn bind_mounts(host: &dyn Host, roots: &Roots, pid: u32, found: &mut BTreeMap<u64, NetnsEntry>) {
    let Ok(bytes) = host.read_file(&text(&roots.proc.join(format!("{pid}/mountinfo")))) else {
        return;
    };
    for (inode, mount_point) in parse_nsfs_mounts(&String::from_utf8_lossy(&bytes)) {
        found.entry(inode).or_insert_with(|| NetnsEntry {
            inode,
            name: None,
            host: false,
            path: roots
                .proc
                .join(format!("{pid}/root"))
                .join(mount_point.trim_start_matches('/')),
            pids: Vec::new(),
        });
    }
}

/// `(inode, mount point)` of every network-namespace mount in a mountinfo text (pure). A line
/// is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS`; for nsfs,
/// ROOT is `net:[INODE]`. Mount points escape space, tab, newline and backslash in octal.
pub fn parse_nsfs_mounts(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((head, tail)) = line.split_once(" - ") else {
            continue;
        };
        if tail.split(' ').next() != Some("nsfs") {
            continue;
        }
        let f: Vec<&str> = head.split(' ').collect();
        let (Some(root), Some(mp)) = (f.get(3), f.get(4)) else {
            continue;
        };
        let Some(ino) = root
            .strip_prefix("net:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        out.push((ino, unescape_octal(mp)));
    }
    out
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_mounts_from_mountinfo() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
612 25 0:4 net:[4026532449] /run/netns/blue rw - nsfs nsfs rw
613 25 0:4 net:[4026532449] /run/netns/blue rw shared:1 - nsfs nsfs rw
700 25 0:4 mnt:[4026532500] /run/mnt-keep rw - nsfs nsfs rw
701 25 0:4 net:[4026532777] /var/run/docker/netns/with\\040space rw - nsfs nsfs rw
702 25 0:4 net:[garbage] /x rw - nsfs nsfs rw
broken line
";
        assert_eq!(
            parse_nsfs_mounts(text),
            vec![
                (4026532449, "/run/netns/blue".to_string()),
                (4026532449, "/run/netns/blue".to_string()),
                (4026532777, "/var/run/docker/netns/with space".to_string()),
            ]
        );
    }

    /// The host's namespace is found, marked, and listed first; our own is among them.
    #[test]
    fn finds_the_live_namespaces() {
        use std::os::unix::fs::MetadataExt;
        let d = discover(&crate::host::LiveHost, &Roots::default());
        let own = std::fs::metadata(format!("{}/self/ns/net", crate::host::PROC))
            .unwrap()
            .ino();
        let me = d
            .namespaces
            .iter()
            .find(|e| e.inode == own)
            .expect("our namespace");
        assert!(me.pids.contains(&std::process::id()));
        let inodes: BTreeSet<u64> = d.namespaces.iter().map(|e| e.inode).collect();
        assert_eq!(inodes.len(), d.namespaces.len(), "each once");
        if let Ok(host) = std::fs::metadata(format!("{}/1/ns/net", crate::host::PROC))
            .or_else(|_| std::fs::metadata(format!("{}/2/ns/net", crate::host::PROC)))
        {
            assert!(d.namespaces[0].host);
            assert_eq!(d.namespaces[0].inode, host.ino());
            assert_eq!(d.namespaces[0].label(), "host");
        }
    }
}
