//! Socket owners: which processes hold which socket inodes, from one walk of `/proc/*/fd`
//! per run (the expensive part of `ss -p`, so it runs only when owners are asked for).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::fdwalk::{for_each_fd_link_checked, list_pids, read_comm, socket_inode, WalkError};
use super::unreadable::{describe, Denied};
use crate::host::Host;
use crate::sockets::model::ProcessRef;

/// Inode → processes holding it, plus how many processes could not be read.
#[derive(Debug, Default)]
pub struct Owners {
    pub by_inode: HashMap<u32, Vec<ProcessRef>>,
    /// Processes whose fds were unreadable (permission): their sockets show no owner.
    pub unreadable: usize,
    /// The same processes, named, with their namespace where it can be read.
    pub denied: Vec<Denied>,
}

impl Owners {
    pub fn get(&self, inode: u32) -> Vec<ProcessRef> {
        self.by_inode.get(&inode).cloned().unwrap_or_default()
    }
}

/// Scans every process. `wanted` limits the map to inodes that will be shown, so a host with
/// millions of sockets does not build a map of all of them.
///
/// The walk is one `readlinkat` per fd, nearly all of it kernel time, so it is spread over the
/// CPUs: threads take processes one at a time from a shared counter, because one process may
/// hold most of the host's fds.
pub fn read_owners(
    host: &dyn Host,
    root: &str,
    wanted: Option<&HashSet<u32>>,
) -> std::io::Result<Owners> {
    Ok(read_owners_of(host, root, &list_pids(host, root)?, wanted))
}

/// [`read_owners`] for these processes only (`sockets --pid/--name`): a few fd walks instead
/// of the whole host's.
pub fn read_owners_of(
    host: &dyn Host,
    root: &str,
    pids: &[u32],
    wanted: Option<&HashSet<u32>>,
) -> Owners {
    let next = AtomicUsize::new(0);
    let threads = crate::procs::spread::workers(pids.len());
    let parts: Vec<Owners> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| scan_part(host, root, pids, &next, wanted)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut owners = Owners::default();
    for part in parts {
        owners.unreadable += part.unreadable;
        owners.denied.extend(part.denied);
        for (inode, procs) in part.by_inode {
            owners.by_inode.entry(inode).or_default().extend(procs);
        }
    }
    // Threads finish in any order; list each socket's owners by pid.
    for procs in owners.by_inode.values_mut() {
        procs.sort_unstable_by_key(|p| p.pid);
    }
    owners
}

fn scan_part(
    host: &dyn Host,
    root: &str,
    pids: &[u32],
    next: &AtomicUsize,
    wanted: Option<&HashSet<u32>>,
) -> Owners {
    let mut owners = Owners::default();
    let mut hits: Vec<u32> = Vec::new();
    loop {
        let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return owners;
        };
        hits.clear();
        let r = for_each_fd_link_checked(host, root, pid, &mut |_, target| {
            if let Some(inode) = socket_inode(target) {
                if wanted.is_none_or(|w| w.contains(&inode)) {
                    hits.push(inode);
                }
            }
        });
        match r {
            Ok(()) => {}
            Err(WalkError::Denied) => {
                owners.unreadable += 1;
                owners.denied.push(describe(host, root, pid));
            }
            Err(WalkError::Gone) => continue,
        }
        if hits.is_empty() {
            continue;
        }
        let name = read_comm(host, root, pid).unwrap_or_default();
        hits.sort_unstable();
        hits.dedup();
        for &inode in &hits {
            owners.by_inode.entry(inode).or_default().push(ProcessRef {
                pid,
                name: name.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn finds_our_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd_path = format!(
            "{}/self/fd/{}",
            crate::host::PROC,
            std::os::fd::AsRawFd::as_raw_fd(&l)
        );
        let inode = std::fs::metadata(&fd_path).unwrap().ino() as u32;
        let owners = read_owners(&crate::host::LiveHost, crate::host::PROC, None).unwrap();
        let procs = owners.get(inode);
        assert!(
            procs.iter().any(|p| p.pid == std::process::id()),
            "{procs:?}"
        );
        let wanted = [inode].into_iter().collect();
        let only = read_owners(&crate::host::LiveHost, crate::host::PROC, Some(&wanted)).unwrap();
        assert_eq!(only.by_inode.len(), 1);
    }
}
