//! What a snapshot holds: every answer the collectors got, in the order they got them, keyed
//! by what was asked (a path, a pid, a dump). Plain data; serialised as JSON inside the
//! archive, the dumps beside it as raw netlink bytes.

use std::borrow::Cow;
use std::cell::Cell;

use crate::fxhash::FxMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Meta;

/// Bytes kept as text where they are UTF-8 (nearly every /proc file), as numbers otherwise
/// (a file name can be any bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BytesRepr", into = "BytesRepr")]
pub struct Bytes(pub Vec<u8>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BytesRepr {
    Text(String),
    Raw(Vec<u8>),
}

impl From<BytesRepr> for Bytes {
    fn from(r: BytesRepr) -> Bytes {
        match r {
            BytesRepr::Text(s) => Bytes(s.into_bytes()),
            BytesRepr::Raw(v) => Bytes(v),
        }
    }
}

impl From<Bytes> for BytesRepr {
    fn from(b: Bytes) -> BytesRepr {
        match String::from_utf8(b.0) {
            Ok(s) => BytesRepr::Text(s),
            Err(e) => BytesRepr::Raw(e.into_bytes()),
        }
    }
}

/// An answer, or the errno it failed with.
pub type Answer<T> = Result<T, i32>;

/// RLIMIT_NOFILE (soft, hard); `None` = unlimited.
pub type Nofile = (Option<u64>, Option<u64>);

/// One fd link: its number and target (or errno).
pub type Link = (u32, Answer<Bytes>);

/// One recorded sock_diag dump: the datagrams as received, and the sequence number their
/// messages carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dump {
    pub seq: u32,
    /// Name of the archive entry holding the bytes (each datagram prefixed by its u32 length).
    pub entry: String,
    #[serde(skip)]
    pub bytes: std::sync::Arc<Vec<u8>>,
}

/// Every recorded answer, per kind of question, per key: a list of readings in order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tape {
    // Hashed: a sorted map's string compares of look-alike paths (100k+ per-process and
    // per-fd keys on a big host) were a tenth of a recording's own time.
    pub files: FxMap<String, Vec<Answer<Bytes>>>,
    pub stats: FxMap<String, Vec<Answer<Meta>>>,
    pub exists: FxMap<String, Vec<Answer<()>>>,
    pub dirs: FxMap<String, Vec<Answer<Vec<Bytes>>>>,
    /// Shared (`Arc`): the recorded walk is served to every later command of the recording
    /// without copying each link target again.
    pub fd_links: FxMap<String, Vec<Answer<std::sync::Arc<Vec<Link>>>>>,
    pub fd_counts: FxMap<String, Vec<Answer<u64>>>,
    pub nofile: FxMap<String, Vec<Answer<Nofile>>>,
    pub xattrs: FxMap<String, Vec<Option<Bytes>>>,
    pub procfs: FxMap<String, Vec<bool>>,
    pub release: Vec<Option<String>>,
    /// Keyed "NETNS_INODE/proto/family".
    pub dumps: FxMap<String, Vec<Answer<Dump>>>,
    /// The inode of each namespace path entered, keyed by path.
    pub netns: FxMap<String, Vec<Answer<u64>>>,
    /// Clock readings, microseconds.
    pub clock: Vec<u64>,
    /// Clock readings of threads inside another namespace (`--all-netns` workers run side by
    /// side, so one list would interleave them differently each run), keyed "net:[INODE]".
    #[serde(default)]
    pub clocks: FxMap<String, Vec<u64>>,
    /// Whether a path is a mounted namespace file (nsfs), for the node view's discovery.
    #[serde(default)]
    pub nsfs: FxMap<String, Vec<bool>>,
    /// The namespace the run started in.
    pub main_netns: u64,
    /// The recording sockscope's own pid (the observer, left out of a namespace's processes).
    pub self_pid: u32,
}

/// Which list of a tape a question reads; with the key, it names one cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Stat,
    Exists,
    Dir,
    Links,
    Count,
    Nofile,
    Xattr,
    Procfs,
    Nsfs,
    Release,
    Dump,
    Netns,
    /// Last: [`KINDS`] counts up to it.
    Clock,
}

/// Where each question's next reading is: the n-th time a key is asked, the n-th reading.
/// Keyed by the path alone (a count per kind), so a key asked before is found without
/// allocating, and a rewind keeps the keys: the next command of a recording asks mostly the
/// same ones (every process's fd links, for one).
#[derive(Debug, Default)]
pub struct Cursors(Mutex<crate::fxhash::FxMap<String, [usize; KINDS]>>);

const KINDS: usize = Kind::Clock as usize + 1;

impl Cursors {
    /// The index of this asking of `key`, counting up.
    pub fn next(&self, kind: Kind, key: &str) -> usize {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let counts = match map.get_mut(key) {
            Some(c) => c,
            None => map.entry(key.to_string()).or_insert([0; KINDS]),
        };
        let n = &mut counts[kind as usize];
        *n += 1;
        *n - 1
    }

    /// Starts every key from its first reading again (the next command of a recording).
    pub fn rewind(&self) {
        for counts in self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            *counts = [0; KINDS];
        }
    }
}

/// The reading at `index`, or the last one once they run out; `None` when never recorded.
pub fn reading<T: Clone>(list: Option<&Vec<T>>, index: usize) -> Option<T> {
    let list = list?;
    list.get(index).or(list.last()).cloned()
}

/// The archive entry name of a dump's key, made safe as a file name.
pub fn dump_key(netns: u64, proto: &str, family: u8) -> String {
    format!("{netns}/{proto}/{family}")
}

thread_local! {
    /// The namespace the calling thread entered through a recording or replaying host, by
    /// inode; `None` until it enters one.
    static ENTERED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The namespace the calling thread entered, if it entered one.
pub fn entered() -> Option<u64> {
    ENTERED.with(|n| n.get())
}

/// Notes the namespace the calling thread is now in.
pub fn set_entered(ino: u64) {
    ENTERED.with(|n| n.set(Some(ino)));
}

/// The key a question is recorded under: as asked in the run's own namespace, prefixed with
/// `net:[INODE]` in any other (`/proc/thread-self/net/*` and `/proc/sys/net/*` answer for the
/// reader's namespace, and the node view reads them in every one).
pub fn scoped(main_netns: u64, key: &str) -> Cow<'_, str> {
    match entered() {
        Some(ino) if ino != main_netns => Cow::Owned(format!("net:[{ino}]{key}")),
        _ => Cow::Borrowed(key),
    }
}
