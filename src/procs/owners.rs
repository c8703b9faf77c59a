//! Socket owners: which processes hold which socket inodes, from one walk of `/proc/*/fd`
//! per run (the expensive part of `ss -p`, so it runs only when owners are asked for).

use std::collections::HashMap;

use super::fdwalk::{for_each_fd_link, list_pids, read_comm, socket_inode, WalkError};
use crate::sockets::model::ProcessRef;

/// Inode → processes holding it, plus how many processes could not be read.
#[derive(Debug, Default)]
pub struct Owners {
    pub by_inode: HashMap<u32, Vec<ProcessRef>>,
    /// Processes whose fds were unreadable (permission): their sockets show no owner.
    pub unreadable: usize,
}

impl Owners {
    pub fn get(&self, inode: u32) -> Vec<ProcessRef> {
        self.by_inode.get(&inode).cloned().unwrap_or_default()
    }
}

/// Scans every process. `wanted` limits the map to inodes that will be shown, so a host with
/// millions of sockets does not build a map of all of them.
pub fn read_owners(
    root: &str,
    wanted: Option<&std::collections::HashSet<u32>>,
) -> std::io::Result<Owners> {
    let mut owners = Owners::default();
    let mut names: HashMap<u32, String> = HashMap::new();
    for pid in list_pids(root)? {
        let mut hits: Vec<u32> = Vec::new();
        let r = for_each_fd_link(root, pid, &mut |_, target| {
            if let Some(inode) = socket_inode(target) {
                if wanted.is_none_or(|w| w.contains(&inode)) {
                    hits.push(inode);
                }
            }
        });
        match r {
            Ok(()) => {}
            Err(WalkError::Denied) => owners.unreadable += 1,
            Err(WalkError::Gone) => continue,
        }
        if hits.is_empty() {
            continue;
        }
        let name = names
            .entry(pid)
            .or_insert_with(|| read_comm(root, pid).unwrap_or_default())
            .clone();
        hits.sort_unstable();
        hits.dedup();
        for inode in hits {
            owners.by_inode.entry(inode).or_default().push(ProcessRef {
                pid,
                name: name.clone(),
            });
        }
    }
    Ok(owners)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn finds_our_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&l));
        let inode = std::fs::metadata(&fd_path).unwrap().ino() as u32;
        let owners = read_owners("/proc", None).unwrap();
        let procs = owners.get(inode);
        assert!(
            procs.iter().any(|p| p.pid == std::process::id()),
            "{procs:?}"
        );
        let wanted = [inode].into_iter().collect();
        let only = read_owners("/proc", Some(&wanted)).unwrap();
        assert_eq!(only.by_inode.len(), 1);
    }
}
