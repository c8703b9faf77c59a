//! The replaying host: answers every question from a recorded snapshot (`--from FILE`). A
//! question never recorded is answered as a live host answers for something absent (ENOENT):
//! the collectors already treat that as a process gone or a file missing.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::archive::{read_archive, ArchiveError, Manifest};
use super::record::{replayed, serve_dump};
use super::tape::{dump_key, entered, reading, scoped, set_entered, Cursors, Kind, Tape};
use super::{errno_error, BatchFn, DiagAsk, Host, LinkFn, Meta};
use crate::netns::{NetnsError, NetnsSpec};
use crate::sockets::diag::{family_name, DiagError, BOTH_FAMILIES};

pub struct SnapshotHost {
    pub manifest: Manifest,
    tape: Tape,
    cursors: Cursors,
}

impl SnapshotHost {
    /// Opens and checks a snapshot archive.
    pub fn open(path: &Path) -> Result<SnapshotHost, ArchiveError> {
        let (manifest, tape) = read_archive(path)?;
        Ok(Self::from_tape(manifest, tape))
    }

    pub fn from_tape(manifest: Manifest, tape: Tape) -> SnapshotHost {
        SnapshotHost {
            manifest,
            tape,
            cursors: Cursors::default(),
        }
    }
}

impl SnapshotHost {
    /// The key a question was recorded under, from the namespace this thread "entered".
    fn key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        scoped(self.tape.main_netns, key)
    }
}

fn absent() -> io::Error {
    errno_error(libc::ENOENT)
}

impl Host for SnapshotHost {
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        replayed(&self.cursors, Kind::File, &self.key(path), &self.tape.files)
            .ok_or_else(absent)?
            .map(|b| b.0)
            .map_err(errno_error)
    }

    fn read_small(&self, path: &str, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.read_file(path)?;
        let n = got.len().min(buf.len());
        buf[..n].copy_from_slice(&got[..n]);
        Ok(n)
    }

    fn stat(&self, path: &str) -> io::Result<Meta> {
        replayed(&self.cursors, Kind::Stat, &self.key(path), &self.tape.stats)
            .ok_or_else(absent)?
            .map_err(errno_error)
    }

    fn exists(&self, path: &str) -> io::Result<()> {
        replayed(
            &self.cursors,
            Kind::Exists,
            &self.key(path),
            &self.tape.exists,
        )
        .ok_or_else(absent)?
        .map_err(errno_error)
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<Vec<u8>>> {
        replayed(&self.cursors, Kind::Dir, &self.key(path), &self.tape.dirs)
            .ok_or_else(absent)?
            .map(|v| v.into_iter().map(|b| b.0).collect())
            .map_err(errno_error)
    }

    fn fd_links(&self, root: &str, pid: u32, each: &mut LinkFn) -> Result<(), i32> {
        let key = format!("{root}/{pid}");
        let key = self.key(&key);
        let i = self.cursors.next(Kind::Links, &key);
        let list = self.tape.fd_links.get(key.as_ref()).ok_or(libc::ENOENT)?;
        let links = list.get(i).or(list.last()).ok_or(libc::ENOENT)?;
        for (fd, t) in links.as_ref().map_err(|e| *e)?.iter() {
            each(*fd, t.as_ref().map(|b| b.0.as_slice()).map_err(|e| *e));
        }
        Ok(())
    }

    fn count_fd_entries(&self, root: &str, pid: u32) -> Result<u64, i32> {
        let key = format!("{root}/{pid}");
        replayed(
            &self.cursors,
            Kind::Count,
            &self.key(&key),
            &self.tape.fd_counts,
        )
        .unwrap_or(Err(libc::ENOENT))
    }

    fn nofile(&self, pid: u32) -> io::Result<(Option<u64>, Option<u64>)> {
        // Never recorded: ESRCH, the process is gone, as it would be live.
        replayed(
            &self.cursors,
            Kind::Nofile,
            &self.key(&pid.to_string()),
            &self.tape.nofile,
        )
        .unwrap_or(Err(libc::ESRCH))
        .map_err(errno_error)
    }

    fn sockprotoname(&self, path: &str) -> Option<Vec<u8>> {
        replayed(
            &self.cursors,
            Kind::Xattr,
            &self.key(path),
            &self.tape.xattrs,
        )
        .flatten()
        .map(|b| b.0)
    }

    fn is_procfs(&self, root: &str) -> bool {
        replayed(
            &self.cursors,
            Kind::Procfs,
            &self.key(root),
            &self.tape.procfs,
        )
        .unwrap_or(false)
    }

    fn is_nsfs(&self, path: &str) -> bool {
        replayed(&self.cursors, Kind::Nsfs, &self.key(path), &self.tape.nsfs).unwrap_or(false)
    }

    fn kernel_release(&self) -> Option<String> {
        reading(
            Some(&self.tape.release),
            self.cursors.next(Kind::Release, ""),
        )
        .flatten()
    }

    fn sock_diag(&self, ask: &DiagAsk, each: &mut BatchFn) -> Result<(), DiagError> {
        let netns = entered().unwrap_or(self.tape.main_netns);
        let mut key = dump_key(netns, ask.proto, ask.family);
        let both = dump_key(netns, ask.proto, BOTH_FAMILIES);
        let recorded = |k: &str| self.tape.dumps.contains_key(k);
        if ask.proto == "tcp" && !recorded(&key) {
            if ask.family == BOTH_FAMILIES {
                // Recorded before TCP was dumped in one walk (per family only): answer as a
                // kernel without the legacy request would, and the caller asks per family.
                return Err(DiagError::Dump {
                    proto: ask.proto,
                    family: ask.family,
                    source: errno_error(libc::EOPNOTSUPP),
                });
            }
            if recorded(&both) {
                // One family of a both-families recording: the caller keeps that family.
                key = both;
            }
        }
        let family = match ask.family {
            0 if ask.proto != "tcp" => String::new(),
            f => format!(" over {}", family_name(f)),
        };
        let dump =
            replayed(&self.cursors, Kind::Dump, &key, &self.tape.dumps).ok_or_else(|| {
                DiagError::Decode(format!(
                    "the snapshot holds no {}{family} dump of network namespace {netns}",
                    ask.proto
                ))
            })?;
        match dump {
            Ok(d) => serve_dump(&d, each),
            Err(errno) => Err(DiagError::Dump {
                proto: ask.proto,
                family: ask.family,
                source: errno_error(errno),
            }),
        }
    }

    fn filters_in_user_space(&self) -> bool {
        true
    }

    fn enter_netns(&self, spec: &NetnsSpec) -> Result<(), NetnsError> {
        let shown = spec.path().display().to_string();
        match replayed(&self.cursors, Kind::Netns, &shown, &self.tape.netns) {
            Some(Ok(ino)) => {
                set_entered(ino);
                Ok(())
            }
            // Gone when it was recorded: gone now, as the live host would say.
            Some(Err(errno)) => Err(NetnsError::Io {
                spec: spec.to_string(),
                path: shown,
                source: errno_error(errno),
            }),
            None => Err(NetnsError::Io {
                spec: spec.to_string(),
                path: shown,
                source: io::Error::other(
                    "this namespace was not entered when the snapshot was recorded",
                ),
            }),
        }
    }

    fn self_pid(&self) -> u32 {
        self.tape.self_pid
    }

    fn now(&self) -> Duration {
        let key = self.key("");
        let list = if key.is_empty() {
            Some(&self.tape.clock)
        } else {
            self.tape.clocks.get(key.as_ref())
        };
        let us = reading(list, self.cursors.next(Kind::Clock, &key));
        Duration::from_micros(us.unwrap_or(0))
    }

    /// A replay does not wait: the recorded clock says how long it was.
    fn sleep(&self, _d: Duration) {}
}
