//! `sockscope snapshot FILE`, and `--from FILE` on the collecting subcommands.
//!
//! Recording runs the collecting commands themselves (sockets -p -i -m, listeners, states,
//! fds --all --kinds, doctor) over a [`RecordingHost`], so the snapshot holds exactly what
//! their collectors read, and a replay through the same code gets the same answers: doctor
//! --from gives the findings the doctor run inside the recording gave, byte for byte.

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;

use super::RunError;
use crate::cli::{Cli, Command, SnapshotArgs};
use crate::host::archive::{write_archive, Manifest, FORMAT, VERSION};
use crate::host::{Host, RecordingHost, SnapshotHost, PROC};
use crate::netns;
use crate::report::{self, Done};

/// The commands a snapshot records, by the name of their report file, as command lines
/// (doctor's --interval is added), and whether they are the node view's (`--all-netns` only).
const RECORDED: [(&str, &[&str], bool); 7] = [
    ("sockets", &["sockets", "-p", "-i", "-m", "--json"], false),
    ("listeners", &["listeners", "--json"], false),
    ("states", &["states", "--json"], false),
    ("fds", &["fds", "--all", "--kinds", "--json"], false),
    ("doctor", &["doctor", "--json"], false),
    (
        "states-all-netns",
        &["states", "--all-netns", "--json"],
        true,
    ),
    (
        "doctor-all-netns",
        &["doctor", "--all-netns", "--json"],
        true,
    ),
];

/// The commands that read the node view (plain doctor glances at the other namespaces too).
fn reads_node(words: &[&str]) -> bool {
    matches!(words.first(), Some(&"states") | Some(&"doctor"))
}

/// The run's host from `--from`, once the command is one that can be replayed (`None`: live). A
/// snapshot recorded with `--netns` replays as that namespace: the command gets its --netns
/// back (entering it only selects the recorded namespace). One recorded with `--all-netns`
/// replays the node view, under the `--fs-root` it was recorded with.
pub fn use_snapshot(command: &mut Command) -> Result<Option<SnapshotHost>, RunError> {
    let (common, node, cannot) = match command {
        Command::Sockets(a) => (&mut a.common, None, None),
        Command::Listeners(a) => (&mut a.common, None, None),
        Command::States(a) => (
            &mut a.common,
            Some(&mut a.node),
            a.watch.is_some().then_some("--watch"),
        ),
        Command::Fds(a) => (&mut a.common, None, a.watch.then_some("--watch")),
        Command::Doctor(a) => (
            &mut a.common,
            Some(&mut a.node),
            (a.target.is_some() || a.port.is_some()).then_some("a probe (HOST:PORT, --port)"),
        ),
        Command::Capture(a) => (
            &mut a.common,
            None,
            Some("capture (it reads pcap files: -r)"),
        ),
        _ => return Ok(None),
    };
    let Some(from) = common.from.clone() else {
        return Ok(None);
    };
    if let Some(what) = cannot {
        return Err(RunError::Input(format!(
            "--from replays a recorded host: {what} cannot be replayed"
        )));
    }
    let replay = SnapshotHost::open(&from).map_err(|e| RunError::Input(e.to_string()))?;
    if let Some(node) = node {
        if node.all_netns && !replay.manifest.all_netns {
            return Err(RunError::Input(
                "--all-netns: this snapshot holds one network namespace; record the whole node \
                 with `sockscope snapshot --all-netns FILE`"
                    .into(),
            ));
        }
        if node.fs_root.is_none() {
            node.fs_root = replay.manifest.fs_root.as_ref().map(Into::into);
        }
    }
    if let Some(spec) = &replay.manifest.netns {
        common.netns = Some(
            spec.parse()
                .map_err(|e| RunError::Input(format!("snapshot names a bad namespace: {e}")))?,
        );
    }
    Ok(Some(replay))
}

pub fn run(args: &SnapshotArgs) -> Result<Done, RunError> {
    // Entered live before recording starts, so the recording's own namespace is this one;
    // each command enters it again (recorded) through its --netns.
    netns::setns_opt(args.netns.as_ref())?;
    // 'static because doctor's probe capture runs on its own thread (see `dispatch`).
    let rec: &'static RecordingHost = Box::leak(Box::new(RecordingHost::new()));
    let recorded_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(dir) = &args.reports {
        std::fs::create_dir_all(dir)?;
    }
    let netns_arg = args.netns.as_ref().map(|n| n.to_string());
    let fs_root = args.node.fs_root.as_ref().map(|p| p.display().to_string());
    let interval = format!("{}ms", args.interval.as_millis());
    let mut notes = Vec::new();
    let mut commands = Vec::new();
    for (name, words, node_only) in RECORDED {
        if node_only && !args.node.all_netns {
            continue;
        }
        let mut line: Vec<&str> = vec!["sockscope"];
        line.extend_from_slice(words);
        if words[0] == "doctor" {
            line.extend(["--interval", &interval]);
        }
        if let Some(spec) = &netns_arg {
            line.extend(["--netns", spec]);
        }
        if let (Some(root), true) = (&fs_root, reads_node(words)) {
            line.extend(["--fs-root", root]);
        }
        commands.push(line[1..].join(" "));
        rec.rewind();
        let mut out: Box<dyn Write> = match &args.reports {
            Some(dir) => Box::new(io::BufWriter::new(std::fs::File::create(
                dir.join(format!("{name}.json")),
            )?)),
            None => Box::new(io::sink()),
        };
        if let Err(e) = run_one(rec, &line, &mut out, args.reports.is_none()) {
            notes.push(format!("snapshot: {name} not recorded in full: {e}"));
        }
        out.flush()?;
    }
    let hostname = rec
        .read_file(&format!("{PROC}/sys/kernel/hostname"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        sockscope_version: env!("CARGO_PKG_VERSION").into(),
        hostname,
        kernel: rec.kernel_release().unwrap_or_default(),
        recorded_at,
        netns: args.netns.as_ref().map(|n| n.to_string()),
        commands,
        interval_us: args.interval.as_micros() as u64,
        all_netns: args.node.all_netns,
        fs_root,
    };
    let mut tape = rec.take();
    let written = write_archive(&args.file, &manifest, &mut tape);
    // The process ends right after a snapshot: freeing the tape's hundreds of thousands of
    // small allocations one by one was 2% of the run.
    std::mem::forget(tape);
    let size = written.map_err(|e| RunError::Output(io::Error::other(e.to_string())))?;
    notes.push(format!(
        "snapshot written to {} ({size} bytes); replay it with `sockscope doctor --from {}`",
        shown(&args.file),
        shown(&args.file)
    ));
    Ok(Done::streamed().notes(notes))
}

fn shown(p: &Path) -> String {
    crate::render::escape(&p.display().to_string())
}

/// Runs one recorded command line as `main` would, its report to `out` (or nowhere with
/// `discard`: it runs for what it reads).
fn run_one(
    rec: &'static RecordingHost,
    line: &[&str],
    out: &mut dyn Write,
    discard: bool,
) -> Result<(), RunError> {
    let cli = Cli::try_parse_from(line).map_err(|e| RunError::Input(e.to_string()))?;
    let output = report::Output {
        discard,
        ..super::output_of(&cli)
    };
    let done = match &cli.command {
        Command::Sockets(_)
        | Command::Listeners(_)
        | Command::States(_)
        | Command::Fds(_)
        | Command::Doctor(_) => super::dispatch_as(&cli, rec, out, &output)?,
        _ => return Ok(()),
    };
    if let Some(r) = &done.report {
        report::print(r.as_ref(), &output, out)?;
    }
    drop(done);
    Ok(())
}
