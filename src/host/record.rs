//! The recording host: asks the live host and keeps every answer on a [`Tape`]
//! (`sockscope snapshot`). Each command recorded starts from the first readings again
//! ([`RecordingHost::rewind`]) and is served what the tape already holds, so the commands of
//! one snapshot see one consistent host, and a replay of any of them sees what it saw.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use super::live::live_dump;
use super::tape::{
    dump_key, reading, scoped, set_entered, Answer, Bytes, Cursors, Dump, Kind, Tape,
};
use super::{errno_error, errno_of, BatchFn, DiagAsk, Host, LinkFn, LiveHost, Meta, PROC};
use crate::netns::{NetnsError, NetnsSpec};
use crate::sockets::diag::{walk_batch, Batch, DiagError};

pub struct RecordingHost {
    live: LiveHost,
    main_netns: u64,
    tape: Mutex<Tape>,
    cursors: Cursors,
    /// An open handle on each namespace entered, by path: it keeps the namespace alive for
    /// the rest of the recording, so a later command that finds its path gone (the process
    /// holding it exited) still enters it, reads it and records what a replay will ask.
    held: Mutex<HashMap<String, std::fs::File>>,
}

impl Default for RecordingHost {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingHost {
    /// Records from the calling thread's network namespace.
    pub fn new() -> RecordingHost {
        let live = LiveHost;
        let main_netns = live
            .stat(&format!("{PROC}/thread-self/ns/net"))
            .map(|m| m.ino)
            .unwrap_or(0);
        RecordingHost {
            live,
            main_netns,
            tape: Mutex::new(Tape {
                main_netns,
                self_pid: std::process::id(),
                ..Default::default()
            }),
            cursors: Cursors::default(),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps a handle on the namespace at `path` (the calling thread has just entered it).
    fn hold(&self, path: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if !held.contains_key(path) {
            // A handle that cannot be opened (fd limit) only loses the fallback.
            if let Ok(f) = std::fs::File::open(path) {
                held.insert(path.to_string(), f);
            }
        }
    }

    /// Enters a namespace through the handle kept when an earlier command entered it.
    fn enter_held(&self, path: &str) -> Option<()> {
        use std::os::fd::AsRawFd;
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let f = held.get(path)?;
        // SAFETY: setns on a descriptor this host owns; it moves only the calling thread.
        (unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } == 0).then_some(())
    }

    /// The next command starts from the first readings.
    pub fn rewind(&self) {
        self.cursors.rewind();
    }

    /// Everything recorded so far.
    pub fn take(&self) -> Tape {
        std::mem::take(&mut *self.tape.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The recorded reading for this asking of `key` (in the calling thread's namespace),
    /// or a live one, recorded.
    fn answer<T: Clone>(
        &self,
        kind: Kind,
        key: &str,
        list: fn(&mut Tape) -> &mut crate::fxhash::FxMap<String, Vec<T>>,
        live: impl FnOnce() -> T,
    ) -> T {
        let key = scoped(self.main_netns, key);
        self.answer_as(kind, &key, list, live)
    }

    fn keep_netns(&self, path: String, ino: Answer<u64>) -> Answer<u64> {
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        tape.netns.entry(path).or_default().push(ino);
        ino
    }

    /// [`Self::answer`] under the key as given.
    fn answer_as<T: Clone>(
        &self,
        kind: Kind,
        key: &str,
        list: fn(&mut Tape) -> &mut crate::fxhash::FxMap<String, Vec<T>>,
        live: impl FnOnce() -> T,
    ) -> T {
        let i = self.cursors.next(kind, key);
        {
            let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = list(&mut tape).get(key).and_then(|l| l.get(i)) {
                return v.clone();
            }
        }
        let v = live();
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        list(&mut tape)
            .entry(key.to_string())
            .or_default()
            .push(v.clone());
        v
    }
}

fn io_answer<T>(r: io::Result<T>) -> Answer<T> {
    r.map_err(|e| errno_of(&e))
}

impl Host for RecordingHost {
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        self.answer(
            Kind::File,
            path,
            |t| &mut t.files,
            || io_answer(self.live.read_file(path).map(Bytes)),
        )
        .map(|b| b.0)
        .map_err(errno_error)
    }

    fn read_small(&self, path: &str, buf: &mut [u8]) -> io::Result<usize> {
        let got = self
            .answer(
                Kind::File,
                path,
                |t| &mut t.files,
                || {
                    let mut mine = vec![0u8; buf.len()];
                    io_answer(self.live.read_small(path, &mut mine).map(|n| {
                        mine.truncate(n);
                        Bytes(mine)
                    }))
                },
            )
            .map_err(errno_error)?;
        let n = got.0.len().min(buf.len());
        buf[..n].copy_from_slice(&got.0[..n]);
        Ok(n)
    }

    fn stat(&self, path: &str) -> io::Result<Meta> {
        self.answer(
            Kind::Stat,
            path,
            |t| &mut t.stats,
            || io_answer(self.live.stat(path)),
        )
        .map_err(errno_error)
    }

    /// Answers already on the tape (asked by an earlier command of this recording) are
    /// replayed; the rest go to the live host in one batch and are kept as the paths' stats.
    fn stat_fds(
        &self,
        root: &str,
        pid: u32,
        fds: &[u32],
        each: &mut dyn FnMut(u32, io::Result<Meta>),
    ) {
        let keys: Vec<(String, usize)> = fds
            .iter()
            .map(|fd| {
                let key = scoped(self.main_netns, &format!("{root}/{pid}/fd/{fd}")).into_owned();
                let i = self.cursors.next(Kind::Stat, &key);
                (key, i)
            })
            .collect();
        let mut answers: Vec<Option<Answer<Meta>>> = {
            let tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .map(|(key, i)| tape.stats.get(key).and_then(|l| l.get(*i)).cloned())
                .collect()
        };
        let missing: Vec<u32> = fds
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_none())
            .map(|(&fd, _)| fd)
            .collect();
        if !missing.is_empty() {
            let mut live = Vec::with_capacity(missing.len());
            self.live
                .stat_fds(root, pid, &missing, &mut |_, r| live.push(io_answer(r)));
            let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
            let mut live = live.into_iter();
            for ((key, _), slot) in keys.iter().zip(answers.iter_mut()) {
                if slot.is_none() {
                    let v = live.next().unwrap_or(Err(libc::EIO));
                    tape.stats.entry(key.clone()).or_default().push(v);
                    *slot = Some(v);
                }
            }
        }
        for (&fd, a) in fds.iter().zip(answers) {
            each(fd, a.unwrap_or(Err(libc::EIO)).map_err(errno_error));
        }
    }

    fn exists(&self, path: &str) -> io::Result<()> {
        self.answer(
            Kind::Exists,
            path,
            |t| &mut t.exists,
            || io_answer(self.live.exists(path)),
        )
        .map_err(errno_error)
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<Vec<u8>>> {
        self.answer(
            Kind::Dir,
            path,
            |t| &mut t.dirs,
            || io_answer(self.live.list_dir(path)).map(|v| v.into_iter().map(Bytes).collect()),
        )
        .map(|v| v.into_iter().map(|b| b.0).collect())
        .map_err(errno_error)
    }

    fn fd_links(&self, root: &str, pid: u32, each: &mut LinkFn) -> Result<(), i32> {
        let key = format!("{root}/{pid}");
        let links = self.answer(
            Kind::Links,
            &key,
            |t| &mut t.fd_links,
            || {
                let mut v = Vec::new();
                self.live
                    .fd_links(root, pid, &mut |fd, t| {
                        v.push((fd, t.map(|t| Bytes(t.to_vec()))));
                    })
                    .map(|()| std::sync::Arc::new(v))
            },
        )?;
        for (fd, t) in links.iter() {
            each(*fd, t.as_ref().map(|b| b.0.as_slice()).map_err(|e| *e));
        }
        Ok(())
    }

    fn count_fd_entries(&self, root: &str, pid: u32) -> Result<u64, i32> {
        self.answer(
            Kind::Count,
            &format!("{root}/{pid}"),
            |t| &mut t.fd_counts,
            || self.live.count_fd_entries(root, pid),
        )
    }

    fn nofile(&self, pid: u32) -> io::Result<(Option<u64>, Option<u64>)> {
        self.answer(
            Kind::Nofile,
            &pid.to_string(),
            |t| &mut t.nofile,
            || io_answer(self.live.nofile(pid)),
        )
        .map_err(errno_error)
    }

    fn sockprotoname(&self, path: &str) -> Option<Vec<u8>> {
        self.answer(
            Kind::Xattr,
            path,
            |t| &mut t.xattrs,
            || self.live.sockprotoname(path).map(Bytes),
        )
        .map(|b| b.0)
    }

    fn is_procfs(&self, root: &str) -> bool {
        self.answer(
            Kind::Procfs,
            root,
            |t| &mut t.procfs,
            || self.live.is_procfs(root),
        )
    }

    fn is_nsfs(&self, path: &str) -> bool {
        self.answer(
            Kind::Nsfs,
            path,
            |t| &mut t.nsfs,
            || self.live.is_nsfs(path),
        )
    }

    fn kernel_release(&self) -> Option<String> {
        let i = self.cursors.next(Kind::Release, "");
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = tape.release.get(i) {
            return r.clone();
        }
        let r = self.live.kernel_release();
        tape.release.push(r.clone());
        r
    }

    fn sock_diag(&self, ask: &DiagAsk, each: &mut BatchFn) -> Result<(), DiagError> {
        let netns = self
            .live
            .stat(&format!("{PROC}/thread-self/ns/net"))
            .map(|m| m.ino)
            .unwrap_or(0);
        let key = dump_key(netns, ask.proto, ask.family);
        // Keyed by the namespace already.
        let dump = self.answer_as(
            Kind::Dump,
            &key,
            |t| &mut t.dumps,
            || record_dump(ask).map_err(|e| diag_errno(&e)),
        );
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
        // Keyed by path alone: a worker enters one namespace after another.
        let shown = spec.path().display().to_string();
        let i = self.cursors.next(Kind::Netns, &shown);
        let recorded = {
            let tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
            tape.netns.get(&shown).and_then(|l| l.get(i)).cloned()
        };
        // Recorded gone: gone for this command too, as for the replay. Entering it live (a
        // namespace still being set up when an earlier command tried it) made a command's
        // recorded report see a namespace its replay skips.
        if let Some(Err(errno)) = recorded {
            return Err(NetnsError::Io {
                spec: spec.to_string(),
                path: shown,
                source: errno_error(errno),
            });
        }
        let entered = match recorded {
            // The very namespace recorded, through the handle kept then: by now its path may
            // be gone, or name another namespace (a pod's sandbox made again under the same
            // name), whose sockets the replay would not find under the recorded inode.
            Some(Ok(_)) => self
                .enter_held(&shown)
                .map_or_else(|| self.live.enter_netns(spec), Ok),
            _ => match self.live.enter_netns(spec) {
                Ok(()) => {
                    self.hold(&shown);
                    Ok(())
                }
                Err(e) => self.enter_held(&shown).map_or(Err(e), |()| Ok(())),
            },
        };
        let ino = match (&entered, recorded) {
            (_, Some(ino)) => ino,
            // A namespace gone before it was entered is recorded gone, so a replay skips it
            // with the same note.
            (Err(e), None) => self.keep_netns(shown, Err(netns_errno(e))),
            (Ok(()), None) => {
                let ino = io_answer(self.live.stat(&shown).map(|m| m.ino));
                self.keep_netns(shown, ino)
            }
        };
        entered?;
        if let Ok(ino) = ino {
            set_entered(ino);
        }
        Ok(())
    }

    fn self_pid(&self) -> u32 {
        self.live.self_pid()
    }

    fn now(&self) -> Duration {
        let key = scoped(self.main_netns, "");
        let i = self.cursors.next(Kind::Clock, &key);
        let mut tape = self.tape.lock().unwrap_or_else(|e| e.into_inner());
        let list = if key.is_empty() {
            &mut tape.clock
        } else {
            tape.clocks.entry(key.into_owned()).or_default()
        };
        if let Some(&us) = list.get(i) {
            return Duration::from_micros(us);
        }
        let now = self.live.now();
        list.push(now.as_micros() as u64);
        now
    }

    fn sleep(&self, d: Duration) {
        self.live.sleep(d)
    }
}

/// The errno a failed entering is recorded as: ENOENT for a namespace or process gone.
fn netns_errno(e: &NetnsError) -> i32 {
    match e {
        NetnsError::NotFound { .. } | NetnsError::NoProcess { .. } => libc::ENOENT,
        NetnsError::Permission { .. } | NetnsError::DeniedToRoot { .. } => libc::EPERM,
        NetnsError::NotNetns { .. } => libc::EINVAL,
        NetnsError::Io { source, .. } => errno_of(source),
    }
}

fn diag_errno(e: &DiagError) -> i32 {
    match e {
        DiagError::Open(e) | DiagError::Dump { source: e, .. } => errno_of(e),
        _ => libc::EIO,
    }
}

/// The unfiltered dump, every datagram kept with its length in front.
fn record_dump(ask: &DiagAsk) -> Result<Dump, DiagError> {
    let mut bytes = Vec::new();
    live_dump(ask.full, ask.proto, ask.family, &mut |buf| {
        bytes.extend_from_slice(&(buf.len() as u32).to_le_bytes());
        bytes.extend_from_slice(buf);
        Ok(walk_batch(buf, ask.seq, &mut |_| Ok(()))? != Batch::More)
    })?;
    Ok(Dump {
        seq: ask.seq,
        entry: String::new(),
        bytes: bytes.into(),
    })
}

/// Hands a recorded dump's datagrams to `each` until it has the whole answer.
pub fn serve_dump(dump: &Dump, each: &mut BatchFn) -> Result<(), DiagError> {
    let mut rest = dump.bytes.as_slice();
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(datagram) = rest.get(4..4 + n) else {
            break;
        };
        if each(datagram, dump.seq)? {
            return Ok(());
        }
        rest = &rest[4 + n..];
    }
    Err(DiagError::Decode(
        "a recorded sock_diag dump ends before its last message (truncated snapshot?)".into(),
    ))
}

/// The reading of a recorded list, for the replaying host.
pub fn replayed<T: Clone>(
    cursors: &Cursors,
    kind: Kind,
    key: &str,
    list: &crate::fxhash::FxMap<String, Vec<T>>,
) -> Option<T> {
    reading(list.get(key), cursors.next(kind, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace the tape holds as gone stays gone for the recording's later commands,
    /// whatever the live host says by then: their reports must be what a replay prints.
    #[test]
    #[ignore = "needs root: entering a network namespace (run `bash scripts/test`)"]
    fn a_namespace_recorded_gone_is_not_entered_by_a_later_command() {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "needs root: entering a network namespace (run `bash scripts/test`)"
        );
        let dir = std::env::temp_dir().join(format!("sockscope-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ns");
        let spec = NetnsSpec::Path(path.clone());
        // Entered on a thread of its own: the test thread keeps its namespace.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rec = RecordingHost::new();
                assert!(rec.enter_netns(&spec).is_err(), "no namespace there yet");
                // Now the path names a namespace (this process's own).
                std::os::unix::fs::symlink(format!("{PROC}/self/ns/net"), &path).unwrap();
                assert!(
                    LiveHost.enter_netns(&spec).is_ok(),
                    "live, it can be entered"
                );
                rec.rewind();
                let again = rec.enter_netns(&spec);
                assert!(
                    matches!(&again, Err(NetnsError::Io { source, .. })
                        if source.raw_os_error() == Some(libc::ENOENT)),
                    "{again:?}"
                );
            });
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A later command enters the namespace the tape recorded, even when its path has come
    /// to name another one: the replay answers from the recorded one.
    #[test]
    #[ignore = "needs root: network namespaces (run `bash scripts/test`)"]
    fn a_later_command_enters_the_namespace_recorded_not_a_new_one_at_its_path() {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "needs root: network namespaces (run `bash scripts/test`)"
        );
        let ino_here = || {
            LiveHost
                .stat(&format!("{PROC}/thread-self/ns/net"))
                .unwrap()
                .ino
        };
        let dir = std::env::temp_dir().join(format!("sockscope-rec2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ns");
        let spec = NetnsSpec::Path(path.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            // A thread in a namespace of its own, alive until the test is done.
            s.spawn(move || {
                // SAFETY: unshare moves only this thread into a new network namespace.
                assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                let _ = done_rx.recv();
            });
            let other = format!("{PROC}/self/task/{}/ns/net", rx.recv().unwrap());
            s.spawn(move || {
                let rec = RecordingHost::new();
                let first = format!("{PROC}/self/ns/net");
                std::os::unix::fs::symlink(&first, &path).unwrap();
                rec.enter_netns(&spec).unwrap();
                let recorded = ino_here();
                // The path now names the other namespace.
                std::fs::remove_file(&path).unwrap();
                std::os::unix::fs::symlink(&other, &path).unwrap();
                assert_ne!(LiveHost.stat(&other).unwrap().ino, recorded);
                rec.rewind();
                rec.enter_netns(&spec).unwrap();
                assert_eq!(ino_here(), recorded);
                done_tx.send(()).unwrap();
            });
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
