//! The snapshot file: a zstd-compressed tar holding `manifest.json` (first: what this is),
//! `tape.json` (every answer but the dumps) and `dumps/N.bin` (raw sock_diag datagrams).
//! A truncated, damaged or foreign file is refused with one line saying which.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tape::Tape;

/// What every snapshot says about itself.
pub const FORMAT: &str = "sockscope-snapshot";
/// Raised whenever a reader of the old layout would misread the new one.
pub const VERSION: u32 = 1;
/// No entry of a snapshot is larger (a hostile file cannot make the reader allocate more).
const MAX_ENTRY: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub sockscope_version: String,
    pub hostname: String,
    pub kernel: String,
    /// Seconds since the epoch when recording began.
    pub recorded_at: u64,
    /// `--netns` the snapshot was recorded in, as given; none for the host's own.
    pub netns: Option<String>,
    /// The commands whose reads were recorded, as command lines.
    pub commands: Vec<String>,
    /// doctor's interval between its two counter readings, microseconds.
    pub interval_us: u64,
    /// Recorded with `--all-netns`: the whole node (every namespace, the containers).
    #[serde(default)]
    pub all_netns: bool,
    /// The tree that stood in for `/` (the hidden `--fs-root` of tests): the recorded paths
    /// under /run and the runtimes' metadata start with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_root: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read snapshot {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a sockscope snapshot ({why}); make one with `sockscope snapshot FILE`")]
    Foreign { path: PathBuf, why: String },
    #[error(
        "{path} is a snapshot of format version {found}, this sockscope reads version {VERSION}; \
         replay it with the sockscope that recorded it ({by})"
    )]
    Version {
        path: PathBuf,
        found: u32,
        by: String,
    },
    #[error("snapshot {path} is truncated or damaged ({why}); record it again")]
    Damaged { path: PathBuf, why: String },
    #[error("cannot write snapshot {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Writes the snapshot atomically: to `FILE.partial`, renamed once complete.
pub fn write_archive(
    path: &Path,
    manifest: &Manifest,
    tape: &mut Tape,
) -> Result<u64, ArchiveError> {
    let err = |source: io::Error| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    for (i, dump) in tape
        .dumps
        .values_mut()
        .flatten()
        .filter_map(|d| d.as_mut().ok())
        .enumerate()
    {
        dump.entry = format!("dumps/{i}.bin");
    }
    let write = || -> io::Result<()> {
        let file = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
        // Level 1: a third less CPU than the default 3 for a tenth more bytes (100k sockets:
        // 3.0 MB instead of 2.7, well under the 10 MiB a support upload allows).
        let mut enc = zstd::Encoder::new(file, 1)?;
        // Workers compress while this thread serialises the tape: the archive's wall time is
        // then about the larger of the two instead of their sum.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        enc.multithread(workers as u32)?;
        let mut tar = tar::Builder::new(enc);
        let mut add = |name: &str, bytes: &[u8]| -> io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, bytes)
        };
        add("manifest.json", &serde_json::to_vec_pretty(manifest)?)?;
        add("tape.json", &serde_json::to_vec(&*tape)?)?;
        // The dumps' bytes, in the order their entries were named above.
        for dump in tape
            .dumps
            .values()
            .flatten()
            .filter_map(|d| d.as_ref().ok())
        {
            add(&dump.entry, &dump.bytes)?;
        }
        let enc = tar.into_inner()?;
        let mut file = enc.finish()?;
        file.flush()?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&partial);
        return Err(err(e));
    }
    std::fs::rename(&partial, path).map_err(err)?;
    Ok(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Reads and checks a snapshot.
pub fn read_archive(path: &Path) -> Result<(Manifest, Tape), ArchiveError> {
    let p = || path.to_path_buf();
    let file = File::open(path).map_err(|source| ArchiveError::Open { path: p(), source })?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic)
        .map_err(|source| ArchiveError::Open { path: p(), source })?;
    if got < 4 || magic != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(ArchiveError::Foreign {
            path: p(),
            why: "not zstd-compressed".into(),
        });
    }
    let chained = io::Cursor::new(magic).chain(reader);
    let dec = zstd::Decoder::new(chained).map_err(|e| ArchiveError::Damaged {
        path: p(),
        why: e.to_string(),
    })?;
    let mut archive = tar::Archive::new(dec);
    let damaged = |why: String| ArchiveError::Damaged { path: p(), why };
    let entries = archive.entries().map_err(|e| damaged(e.to_string()))?;
    let mut manifest: Option<Manifest> = None;
    let mut tape: Option<Tape> = None;
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if entry.size() > MAX_ENTRY {
            return Err(damaged(format!("entry {name:?} of {} bytes", entry.size())));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(e.to_string()))?;
        match (name.as_str(), &manifest) {
            ("manifest.json", None) => manifest = Some(check_manifest(path, &bytes)?),
            (_, None) => {
                return Err(ArchiveError::Foreign {
                    path: p(),
                    why: "no manifest.json first".into(),
                })
            }
            ("tape.json", Some(_)) => {
                tape = Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| damaged(format!("tape.json: {e}")))?,
                )
            }
            (_, Some(_)) => {
                blobs.insert(name, bytes);
            }
        }
    }
    let Some(manifest) = manifest else {
        return Err(ArchiveError::Foreign {
            path: p(),
            why: "an empty archive".into(),
        });
    };
    let mut tape = tape.ok_or_else(|| damaged("no tape.json".into()))?;
    for dump in tape
        .dumps
        .values_mut()
        .flatten()
        .filter_map(|d| d.as_mut().ok())
    {
        let bytes = blobs
            .remove(&dump.entry)
            .ok_or_else(|| damaged(format!("{} is missing", dump.entry)))?;
        dump.bytes = bytes.into();
    }
    Ok((manifest, tape))
}

fn check_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest, ArchiveError> {
    let foreign = |why: String| ArchiveError::Foreign {
        path: path.to_path_buf(),
        why,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| foreign(format!("manifest.json: {e}")))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(foreign("its manifest names another format".into()));
    }
    let found = v.get("version").and_then(|n| n.as_u64()).unwrap_or(0);
    if found != u64::from(VERSION) {
        return Err(ArchiveError::Version {
            path: path.to_path_buf(),
            found: found.min(u64::from(u32::MAX)) as u32,
            by: v
                .get("sockscope_version")
                .and_then(|s| s.as_str())
                .map(|s| format!("sockscope {}", crate::render::escape(s)))
                .unwrap_or_else(|| "unknown".into()),
        });
    }
    serde_json::from_value(v).map_err(|e| foreign(format!("manifest.json: {e}")))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
