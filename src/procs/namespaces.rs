//! Which network namespaces a process's sockets can live in. `/proc/PID/ns/net` is the main
//! thread's namespace, but `setns` moves one thread, and a socket belongs to the namespace of
//! the thread that created it: so every thread's `task/TID/ns/net` is looked at.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::host::Host;

/// Distinct network namespaces of `pid`'s threads: inode → a path to enter it by.
pub fn netns_of(host: &dyn Host, root: &str, pid: u32) -> BTreeMap<u64, PathBuf> {
    let mut found = BTreeMap::new();
    let main = format!("{root}/{pid}/ns/net");
    if let Ok(m) = host.stat(&main) {
        found.insert(m.ino, PathBuf::from(main));
    }
    let Ok(tasks) = host.list_dir(&format!("{root}/{pid}/task")) else {
        return found;
    };
    for t in tasks {
        let path = format!("{root}/{pid}/task/{}/ns/net", String::from_utf8_lossy(&t));
        if let Ok(m) = host.stat(&path) {
            found.entry(m.ino).or_insert(PathBuf::from(path));
        }
    }
    found
}

/// The network namespaces a set of processes (and their threads) live in.
#[derive(Debug, Default)]
pub struct Spaces {
    /// The calling thread's namespace is one of them: read it in place, without setns (and
    /// so without privilege).
    pub own: bool,
    /// The others: inode → a path to enter it by.
    pub others: BTreeMap<u64, PathBuf>,
}

/// Where `pids` live, split into the caller's own namespace and the rest.
pub fn spaces_of(host: &dyn Host, root: &str, pids: impl IntoIterator<Item = u32>) -> Spaces {
    let mut all = BTreeMap::new();
    for pid in pids {
        for (ino, path) in netns_of(host, root, pid) {
            all.entry(ino).or_insert(path);
        }
    }
    let own = crate::procs::unreadable::current_netns(host);
    let own = own.is_some_and(|o| all.remove(&o).is_some());
    Spaces { own, others: all }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn our_own_namespace_is_found() {
        let me = std::process::id();
        let ns = netns_of(&crate::host::LiveHost, crate::host::PROC, me);
        let ino = std::fs::metadata(format!("{}/self/ns/net", crate::host::PROC))
            .unwrap()
            .ino();
        assert!(ns.contains_key(&ino), "{ns:?}");
        assert!(netns_of(&crate::host::LiveHost, crate::host::PROC, u32::MAX - 1).is_empty());
        let s = spaces_of(
            &crate::host::LiveHost,
            crate::host::PROC,
            [me, u32::MAX - 1],
        );
        assert!(s.own, "{s:?}");
        assert!(!s.others.contains_key(&ino), "{s:?}");
    }
}
