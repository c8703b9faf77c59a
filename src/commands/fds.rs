//! `sockscope fds`: counts for every process, the fds themselves only for the rows shown.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{require_pids, unreadable_note, Missing, RunError};
use crate::cli::{FdsArgs, FdsGroup};
use crate::host::Host;
use crate::netns;
use crate::procs::container::{Attributor, Container};
use crate::procs::discover::{discover, Roots};
use crate::procs::fdwalk::WalkError;
use crate::procs::growth::{growing, rank_trends, Tracker, Trend};
use crate::procs::kinds::{read_kinds, KindCounts};
use crate::procs::model::FdUsage;
use crate::procs::namespaces::spaces_of;
use crate::procs::procfile::comm;
use crate::procs::rank::{by_container, rank};
use crate::procs::report::FdsByContainer;
use crate::procs::report::{FdsReport, WatchSample, WatchSummary};
use crate::procs::unreadable::Denied;
use crate::procs::usage::{
    fd_dir_size, read_system, reserved_slots, scan, stat_size_is_count, ProcSelect,
};
use crate::render::fds as view;
use crate::report::Done;
use crate::scope::{NetnsRef, Where};
use crate::sockets::inodes::{index_current_netns, index_netns, ProtoIndex};

const DEFAULT_TOP: usize = 20;

/// `out` takes the samples of a `--watch` as they come; everything else is in the `Done`.
pub fn run(host: &dyn Host, args: &FdsArgs, out: &mut dyn Write) -> Result<Done, RunError> {
    let root = args.proc_root.as_str();
    require_pids(host, root, &args.pids)?;
    let select = ProcSelect {
        pids: args.pids.clone(),
        name: args.name.clone(),
        netns_inode: match &args.common.netns {
            Some(spec) => Some(netns::inode(host, spec)?),
            None => None,
        },
    };
    let top = if args.all {
        None
    } else {
        Some(args.top.unwrap_or(DEFAULT_TOP))
    };
    if args.watch {
        return watch(host, args, root, &select, top, out);
    }

    let mut notes = Vec::new();
    let system = read_system(host, root)
        .map_err(|e| notes.push(format!("cannot read the system file table: {e}")))
        .ok();
    let scan = scan(host, root, &select, false).map_err(RunError::Proc)?;
    let matched = scan.processes.len();
    let mut unreadable = scan.unreadable;
    if args.by == Some(FdsGroup::Container) {
        let mut procs = scan.processes;
        fill_names(host, root, &mut procs);
        let (containers, attribution_notes) =
            containers_of(host, root, &fs_root(args), procs.iter().map(|u| u.pid));
        notes.extend(attribution_notes);
        let procs = procs
            .into_iter()
            .map(|u| {
                let c = containers.get(&u.pid).cloned().flatten();
                (u, c)
            })
            .collect();
        let mut groups = by_container(procs);
        if let Some(n) = top {
            groups.truncate(n);
        }
        let report = FdsByContainer {
            system,
            matched,
            unreadable,
            containers: groups,
        };
        return Ok(Done::new(report).notes(notes));
    }
    let mut rows = rank(scan.processes, top);
    fill_names(host, root, &mut rows);

    // The expensive part, for the rows shown only: socket counts (unless --all asked for
    // every process, where counts and limits are the point) or the full kinds.
    let sockets_read = args.kinds || !args.all;
    let mut reserved = HashMap::new();
    let mut walk_denied = Vec::new();
    if args.kinds {
        let (index, index_notes) = socket_index(host, root, &rows);
        notes.extend(index_notes);
        walk_denied = read_rows(host, root, &mut rows, Some(&index), &mut reserved);
    } else if sockets_read {
        walk_denied = read_rows(host, root, &mut rows, None, &mut reserved);
    }
    unreadable += walk_denied.len();
    // Only the rows shown: a process whose namespace could not be read (the host's PID 1
    // under --netns) is not known to be one of them.
    notes.extend(unreadable_note(
        &denied_rows(&rows, &walk_denied),
        Missing::Fds,
    ));
    let report = FdsReport {
        system,
        processes: rows,
        matched,
        unreadable,
        reserved,
        sockets_read,
        kinds_read: args.kinds,
        places: HashMap::new(),
    };
    let mut report = report;
    if args.node.all_netns {
        report.places = places_of(host, root, &fs_root(args), &report.processes, &mut notes);
    }
    Ok(Done::new(report).notes(notes))
}

fn fs_root(args: &FdsArgs) -> std::path::PathBuf {
    args.node
        .fs_root
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("/"))
}

/// The container of each process, from its `/proc/PID/cgroup` (None: not in one). Returns
/// the notes of metadata that could not be read.
fn containers_of(
    host: &dyn Host,
    root: &str,
    fs: &std::path::Path,
    pids: impl IntoIterator<Item = u32>,
) -> (HashMap<u32, Option<Container>>, Vec<String>) {
    let mut a = Attributor::new(host, fs);
    let found = pids
        .into_iter()
        .map(|pid| {
            let c = host
                .read_file(&format!("{root}/{pid}/cgroup"))
                .ok()
                .and_then(|text| a.of_cgroup(&String::from_utf8_lossy(&text)));
            (pid, c)
        })
        .collect();
    (found, std::mem::take(&mut a.notes))
}

/// `--all-netns`: the namespace (named as `ip netns` and Docker name it) and container of
/// each row shown. A process whose namespace cannot be read has no place.
fn places_of(
    host: &dyn Host,
    root: &str,
    fs: &std::path::Path,
    rows: &[FdUsage],
    notes: &mut Vec<String>,
) -> HashMap<u32, Where> {
    use std::os::unix::fs::MetadataExt;
    let found = discover(
        host,
        &Roots {
            proc: root.into(),
            fs: fs.to_path_buf(),
        },
    );
    let known: HashMap<u64, NetnsRef> = found
        .namespaces
        .iter()
        .map(|e| {
            let r = NetnsRef {
                inode: e.inode,
                name: e.name.clone(),
                host: e.host,
            };
            (e.inode, r)
        })
        .collect();
    let (mut containers, attribution_notes) =
        containers_of(host, root, fs, rows.iter().map(|u| u.pid));
    notes.extend(attribution_notes);
    rows.iter()
        .filter_map(|u| {
            let inode = std::fs::metadata(format!("{root}/{}/ns/net", u.pid))
                .ok()?
                .ino();
            let netns = known.get(&inode).cloned().unwrap_or(NetnsRef {
                inode,
                name: None,
                host: false,
            });
            let container = containers.remove(&u.pid).flatten();
            Some((u.pid, Where { netns, container }))
        })
        .collect()
}

/// Names of the rows shown (the scan skipped them to stay at one stat per process).
fn fill_names(host: &dyn Host, root: &str, rows: &mut [FdUsage]) {
    for u in rows.iter_mut().filter(|u| u.name.is_empty()) {
        // A process that exits now keeps its row: its counts were real a moment ago.
        u.name = comm(host, root, u.pid).unwrap_or_default();
    }
}

/// Walks each row's fds; returns the pids that turned out unreadable. A row read in full gets
/// `fds` = the fds listed (so its kinds add up to it) and, in `reserved`, the slots the
/// kernel's count holds beyond them.
fn read_rows(
    host: &dyn Host,
    root: &str,
    rows: &mut [FdUsage],
    index: Option<&ProtoIndex>,
    reserved: &mut HashMap<u32, u64>,
) -> Vec<u32> {
    let rule = stat_size_is_count(host, root);
    // The walks are independent and nearly all kernel time: spread over the CPUs (a stat per
    // file fd for kinds made `fds --all --kinds` the slowest part of a snapshot).
    let walked = {
        let rows = &*rows;
        crate::procs::spread::map_indexed(rows.len(), |i| {
            let u = &rows[i];
            match u.fds {
                // None: already counted as unreadable by the scan. 0: nothing to read (a
                // kernel thread): no walk, which a non-root user would be refused anyway.
                None | Some(0) => None,
                Some(_) => {
                    let before = fd_dir_size(host, root, u.pid, rule);
                    let read = read_kinds(host, root, u.pid, index);
                    let after = fd_dir_size(host, root, u.pid, rule);
                    Some((before, read, after))
                }
            }
        })
    };
    let mut unreadable = Vec::new();
    for (u, walk) in rows.iter_mut().zip(walked) {
        match walk {
            None if u.fds == Some(0) => {
                u.sockets = Some(0);
                reserved.insert(u.pid, 0);
                if index.is_some() {
                    u.kinds = Some(KindCounts::default().to_map());
                }
            }
            None => {}
            Some((before, Ok(k), after)) => {
                let listed = k.total();
                reserved.insert(u.pid, reserved_slots(before, after, listed));
                u.fds = Some(listed);
                u.sockets = Some(k.sockets());
                if index.is_some() {
                    u.kinds = Some(k.to_map());
                }
            }
            Some((_, Err(WalkError::Denied), _)) => unreadable.push(u.pid),
            Some((_, Err(WalkError::Gone), _)) => {}
        }
    }
    unreadable
}

/// sock_diag dumps of every network namespace the rows live in, merged (socket inodes are
/// unique across namespaces). A namespace that cannot be entered is a note, not an error: its
/// sockets are then named by their protocol xattr.
fn socket_index(host: &dyn Host, root: &str, rows: &[FdUsage]) -> (ProtoIndex, Vec<String>) {
    let spaces = spaces_of(
        host,
        root,
        rows.iter()
            .filter(|u| u.fds.is_some_and(|n| n > 0))
            .map(|u| u.pid),
    );
    let mut index = ProtoIndex::new();
    let mut notes = Vec::new();
    if spaces.own || spaces.others.is_empty() {
        if let Err(e) = index_current_netns(host, &mut index) {
            notes.push(format!("socket kinds: {e}"));
        }
    }
    for path in spaces.others.values() {
        match index_netns(host, path) {
            Ok(i) => index.extend(i),
            Err(e) => notes.push(format!(
                "socket kinds in the namespace of {}: {e}; those sockets were named by their \
                 protocol xattr instead",
                path.display()
            )),
        }
    }
    (index, notes)
}

/// `--watch --kinds`: reads the kinds of the processes shown and records them with their
/// trends, so the watch can say which kind grows. Returns notes (namespaces not entered,
/// processes not readable).
fn watch_kinds(
    host: &dyn Host,
    root: &str,
    scanned: &[FdUsage],
    tracker: &mut Tracker,
    shown: &mut [Trend],
) -> Vec<String> {
    let pids: std::collections::HashSet<u32> = shown.iter().map(|t| t.pid).collect();
    let mut rows: Vec<FdUsage> = scanned
        .iter()
        .filter(|u| pids.contains(&u.pid))
        .cloned()
        .collect();
    let (index, mut notes) = socket_index(host, root, &rows);
    // The watch ranked by the kernel's count (what the limit sees); a row read in full
    // shows its open fds (what the kinds sum to) and its reserved slots apart, as `fds` does.
    let mut reserved = HashMap::new();
    let walk_denied = read_rows(host, root, &mut rows, Some(&index), &mut reserved);
    notes.extend(unreadable_note(
        &denied_rows(&rows, &walk_denied),
        Missing::Fds,
    ));
    for row in rows {
        if let (Some(kinds), Some(trend)) = (row.kinds, shown.iter_mut().find(|t| t.pid == row.pid))
        {
            trend.fds = row.fds;
            trend.reserved = reserved.get(&row.pid).copied();
            tracker.add_kinds(trend, kinds);
        }
    }
    notes
}

/// The processes among `rows` whose fds could not be read (by the scan, or by the walk of
/// `walk_denied`): named in the one note, since they are what the table shows.
fn denied_rows(rows: &[FdUsage], walk_denied: &[u32]) -> Vec<Denied> {
    rows.iter()
        .filter(|u| u.fds.is_none() || walk_denied.contains(&u.pid))
        .map(|u| Denied {
            pid: u.pid,
            name: u.name.clone(),
            netns: None,
        })
        .collect()
}

fn watch(
    host: &dyn Host,
    args: &FdsArgs,
    root: &str,
    select: &ProcSelect,
    top: Option<usize>,
    out: &mut dyn Write,
) -> Result<Done, RunError> {
    // Ctrl-C, SIGTERM and SIGHUP (a closed terminal) end the watch with its summary: a
    // complete report, so exit 0 (README "Exit codes"). A second signal exits at once (130).
    let stop = crate::commands::stop_on_signals()?;
    let _ = view::write_watch_banner(&mut io::stderr(), args.interval.as_secs_f64());
    let start = Instant::now();
    let mut tracker = Tracker::default();
    let mut last;
    let mut samples = 0;
    let mut notes: Vec<String> = Vec::new();
    let mut printer = view::WatchPrinter::new(&args.common.output());
    loop {
        let t = start.elapsed().as_secs_f64();
        let scan = scan(host, root, select, true).map_err(RunError::Proc)?;
        let mut trends = tracker.add(t, &scan.processes);
        rank_trends(&mut trends);
        if args.kinds {
            let shown = top.unwrap_or(usize::MAX).min(trends.len());
            let notes_now = watch_kinds(
                host,
                root,
                &scan.processes,
                &mut tracker,
                &mut trends[..shown],
            );
            for n in notes_now {
                if !notes.contains(&n) {
                    notes.push(n);
                }
            }
        }
        samples += 1;
        let matched = trends.len();
        let sample = WatchSample {
            sample: samples,
            elapsed_us: (t * 1e6) as u64,
            system: read_system(host, root).ok(),
            matched,
            processes: trends
                .iter()
                .take(top.unwrap_or(usize::MAX))
                .cloned()
                .collect(),
        };
        printer.sample(out, sample)?;
        last = trends;
        if args.count.is_some_and(|n| samples >= n) {
            break;
        }
        if !args.pids.is_empty() && matched == 0 {
            notes.push("every watched process has exited".to_string());
            break;
        }
        // Sleep to the next tick on the watch's own clock (no drift), waking often enough
        // to answer Ctrl-C at once.
        let next = start + args.interval * samples as u32;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let interrupted = stop.load(Ordering::Relaxed);
    let mut grew = growing(&last);
    if let Some(n) = top {
        grew.truncate(n);
    }
    let summary = WatchSummary {
        samples,
        elapsed_us: start.elapsed().as_micros() as u64,
        interrupted,
        growing: grew,
    };
    Ok(Done::new(printer.finish(summary)).notes(notes))
}
