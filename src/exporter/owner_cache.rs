//! Socket owners kept between scrapes: the fd-link walk that finds them costs more than a whole
//! scrape's budget on a busy host, so each process is walked when it is new or when its fd
//! table looks changed, and remembered otherwise.
//!
//! The rule, and its limit: a process is re-walked when its pid is new, when its open-fd count
//! (the `st_size` of `/proc/PID/fd`, one stat per process, already read for the fd metrics)
//! changed, or when its name (`comm`) changed (the usual sign of a reused pid). A process that
//! closes one socket and opens another between two scrapes keeps its count, so its new socket
//! would stay unnamed: to bound that, a wanted inode that no cached process holds (a new
//! listener, say) triggers a full re-walk, at most once per [`FULL_WALK_EVERY`], and every
//! entry is re-walked once it is older than that. Owners are labels, not evidence: a stale or
//! missing owner never changes a count.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::host::Host;
use crate::procs::fdwalk::{for_each_fd_link_checked, socket_inode, WalkError};
use crate::procs::model::FdUsage;
use crate::sockets::model::ProcessRef;

/// The longest a cached fd table is trusted, and the least time between two full re-walks.
pub const FULL_WALK_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Entry {
    fds: u64,
    name: String,
    walked: Instant,
    /// Socket inodes this process held when walked, sorted.
    inodes: Vec<u32>,
    /// Its fd links could not be read (another user's process without CAP_SYS_PTRACE and
    /// CAP_DAC_READ_SEARCH): remembered like a walk, so it is not retried every scrape.
    denied: bool,
}

/// Per pid: what its fd table held the last time it was walked.
#[derive(Debug, Default)]
pub struct OwnerCache {
    entries: HashMap<u32, Entry>,
    last_full: Option<Instant>,
    /// Walks done by the last refresh (for the cold/warm benchmark and the metric).
    pub last_walks: usize,
}

impl OwnerCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Brings the cache up to date with this scrape's process scan: drops pids that are gone,
    /// walks new and changed ones. Processes whose fds cannot be read are left out.
    pub fn refresh(&mut self, host: &dyn Host, procs: &[FdUsage], root: &str) {
        let now = Instant::now();
        let alive: HashSet<u32> = procs.iter().map(|p| p.pid).collect();
        self.entries.retain(|pid, _| alive.contains(pid));
        self.last_walks = 0;
        for p in procs {
            let Some(fds) = p.fds else {
                self.entries.remove(&p.pid);
                continue;
            };
            let fresh = self.entries.get(&p.pid).is_some_and(|e| {
                e.fds == fds && e.name == p.name && now.duration_since(e.walked) < FULL_WALK_EVERY
            });
            if !fresh {
                self.walk(host, root, p.pid, fds, &p.name, now);
            }
        }
    }

    fn walk(&mut self, host: &dyn Host, root: &str, pid: u32, fds: u64, name: &str, now: Instant) {
        let mut inodes = Vec::new();
        self.last_walks += 1;
        let r = for_each_fd_link_checked(host, root, pid, &mut |_, target| {
            if let Some(i) = socket_inode(target) {
                inodes.push(i);
            }
        });
        let denied = match r {
            Ok(()) => false,
            Err(WalkError::Denied) => true,
            Err(WalkError::Gone) => {
                self.entries.remove(&pid);
                return;
            }
        };
        inodes.sort_unstable();
        inodes.dedup();
        self.entries.insert(
            pid,
            Entry {
                fds,
                name: name.to_string(),
                walked: now,
                inodes,
                denied,
            },
        );
    }

    /// The owners of `wanted` inodes. When one of them is held by no cached process and the
    /// last full walk is old enough, every process is walked again first (see the module doc).
    pub fn owners(
        &mut self,
        host: &dyn Host,
        wanted: &HashSet<u32>,
        procs: &[FdUsage],
        root: &str,
    ) -> HashMap<u32, Vec<ProcessRef>> {
        let mut found = self.lookup(wanted);
        let missing = wanted.iter().any(|i| !found.contains_key(i));
        let due = self
            .last_full
            .is_none_or(|t| t.elapsed() >= FULL_WALK_EVERY);
        if missing && due {
            let now = Instant::now();
            self.last_full = Some(now);
            for p in procs {
                if let Some(fds) = p.fds {
                    self.walk(host, root, p.pid, fds, &p.name, now);
                }
            }
            found = self.lookup(wanted);
        }
        found
    }

    fn lookup(&self, wanted: &HashSet<u32>) -> HashMap<u32, Vec<ProcessRef>> {
        let mut found: HashMap<u32, Vec<ProcessRef>> = HashMap::new();
        if wanted.is_empty() {
            return found;
        }
        // A few wanted inodes (listeners) against big fd tables (a proxy's thousands of
        // sockets): look each up in the sorted list rather than hash every inode held.
        let mut few: Vec<u32> = wanted.iter().copied().collect();
        few.sort_unstable();
        let bits = |n: usize| (usize::BITS - n.leading_zeros()) as usize;
        for (&pid, e) in &self.entries {
            let mut hit = |i: u32| {
                found.entry(i).or_default().push(ProcessRef {
                    pid,
                    name: e.name.clone(),
                })
            };
            if few.len() * bits(e.inodes.len()) < e.inodes.len() {
                for &i in few.iter().filter(|i| e.inodes.binary_search(i).is_ok()) {
                    hit(i);
                }
            } else {
                for &i in e.inodes.iter().filter(|i| wanted.contains(i)) {
                    hit(i);
                }
            }
        }
        for v in found.values_mut() {
            v.sort_unstable_by_key(|p| p.pid);
        }
        found
    }

    /// Processes whose fd links could not be read, so their sockets have no owner.
    pub fn denied(&self) -> usize {
        self.entries.values().filter(|e| e.denied).count()
    }

    /// Processes in the cache.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    fn me(fds: u64) -> FdUsage {
        FdUsage {
            pid: std::process::id(),
            name: "me".into(),
            fds: Some(fds),
            soft_limit: None,
            hard_limit: None,
            sockets: None,
            kinds: None,
        }
    }

    fn inode_of(l: &TcpListener) -> u32 {
        use std::os::fd::AsRawFd;
        std::fs::metadata(format!("{}/self/fd/{}", crate::host::PROC, l.as_raw_fd()))
            .unwrap()
            .ino() as u32
    }

    #[test]
    fn unchanged_processes_are_not_walked_again_and_changed_ones_are() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let want: HashSet<u32> = [inode_of(&l)].into();
        let mut c = OwnerCache::new();
        c.refresh(&crate::host::LiveHost, &[me(10)], crate::host::PROC);
        assert_eq!(c.last_walks, 1);
        assert_eq!(
            c.owners(&crate::host::LiveHost, &want, &[me(10)], crate::host::PROC)[&inode_of(&l)][0]
                .name,
            "me"
        );
        c.refresh(&crate::host::LiveHost, &[me(10)], crate::host::PROC);
        assert_eq!(
            c.last_walks, 0,
            "same count and name: served from the cache"
        );
        c.refresh(&crate::host::LiveHost, &[me(11)], crate::host::PROC);
        assert_eq!(c.last_walks, 1, "the count changed: walked again");
        c.refresh(&crate::host::LiveHost, &[], crate::host::PROC);
        assert!(c.is_empty(), "a process that is gone leaves the cache");
    }

    #[test]
    fn an_inode_no_cached_process_holds_forces_one_full_walk() {
        let mut c = OwnerCache::new();
        c.refresh(&crate::host::LiveHost, &[me(10)], crate::host::PROC);
        // Opened after the walk, with the count the cache still believes.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let want: HashSet<u32> = [inode_of(&l)].into();
        c.refresh(&crate::host::LiveHost, &[me(10)], crate::host::PROC);
        assert_eq!(c.last_walks, 0);
        let found = c.owners(&crate::host::LiveHost, &want, &[me(10)], crate::host::PROC);
        assert_eq!(found[&inode_of(&l)][0].pid, std::process::id());
    }

    #[test]
    fn lookup_finds_the_same_owners_by_search_and_by_scan() {
        let mut c = OwnerCache::new();
        let entry = |name: &str, inodes: Vec<u32>| Entry {
            fds: inodes.len() as u64,
            name: name.into(),
            walked: Instant::now(),
            inodes,
            denied: false,
        };
        // A big table (searched for a few inodes) and a small one (scanned).
        c.entries
            .insert(7, entry("proxy", (1000..3000).map(|i| i * 2).collect()));
        c.entries.insert(9, entry("app", vec![2000, 4001]));
        let few: HashSet<u32> = [2000, 2001, 5998, 4001].into();
        let got = c.lookup(&few);
        let pids = |i: u32| {
            got.get(&i)
                .map(|v| v.iter().map(|p| p.pid).collect::<Vec<_>>())
        };
        assert_eq!(pids(2000), Some(vec![7, 9]));
        assert_eq!(pids(5998), Some(vec![7]));
        assert_eq!(pids(4001), Some(vec![9]));
        assert_eq!(pids(2001), None);
        // Many wanted: every table scanned, the same answer for the same inodes.
        let many: HashSet<u32> = few.iter().copied().chain(10_000..20_000).collect();
        let all = c.lookup(&many);
        assert_eq!(all, got);
    }
}
