//! `sockscope doctor`: whole-host (or namespace, or every namespace) checks, or one service's
//! probe. Returns the report; `main` prints it.

use std::net::SocketAddr;

use super::{unreadable_note, Missing, RunError};
use crate::capture::{Capture, CaptureSpec};
use crate::cli::DoctorArgs;
use crate::doctor::checks::{check_accept_queues, check_probe, CounterDelta, ListenCheck};
use crate::doctor::collect::{
    collect_host, current_netns_inode, glance_dump, listeners_on, read_now, HostPlan,
};
use crate::doctor::diagnose::{diagnose_host, diagnose_node, glance};
use crate::doctor::error::DoctorError;
use crate::doctor::firewall::read_ruleset;
use crate::doctor::model::{Checked, Elsewhere, ElsewhereAt, ProbeOutcome, Report};
use crate::doctor::probe::probe;
use crate::doctor::target::Target;
use crate::doctor::trace::trace_for;
use crate::exit::ExitCode;
use crate::host::Host;
use crate::netns;
use crate::procs::model::FdUsage;
use crate::procs::unreadable::Denied;
use crate::procs::usage::read_system;
use crate::render::doctor::elsewhere_note;
use crate::report::Done;
use crate::scope::{for_each_netns, live_roots};

/// Time between the probe's end and stopping its capture.
const CAPTURE_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

pub fn run(host: &'static dyn Host, args: &DoctorArgs) -> Result<Done, RunError> {
    if args.node.all_netns {
        return every_netns(host, args);
    }
    netns::enter_opt(host, args.common.netns.as_ref())?;
    let mut notes = Vec::new();
    let report = match (&args.target, args.port) {
        (Some(t), _) => probe_target(host, t, false, args)?,
        (None, Some(port)) => probe_target(
            host,
            &Target {
                host: "127.0.0.1".into(),
                port,
            },
            true,
            args,
        )?,
        (None, None) => {
            let plan = HostPlan {
                interval: args.interval,
                netns_inode: match args.common.netns {
                    Some(_) => Some(current_netns_inode(host)?),
                    None => None,
                },
                system_wide: args.common.netns.is_none(),
            };
            let ev = collect_host(host, &plan).map_err(RunError::from)?;
            notes.extend(unreadable_fds_note(&ev.processes.processes));
            let mut report = diagnose_host(&ev);
            if args.common.netns.is_none() {
                let (checked, elsewhere) = glance_elsewhere(host, args)?;
                report.checked.push(checked);
                if elsewhere.findings > 0 {
                    notes.push(elsewhere_note(&elsewhere));
                    report.elsewhere = Some(elsewhere);
                }
            }
            report
        }
    };
    let code = if report.has_problems() {
        ExitCode::Problems
    } else {
        ExitCode::Ok
    };
    Ok(Done::new(report).code(code).notes(notes))
}

/// `doctor --all-netns`: every check in every namespace (counters, sockets and the fd use of
/// the processes that live there), each finding named with its namespace and container; the
/// system file table once, for the host.
fn every_netns(host: &dyn Host, args: &DoctorArgs) -> Result<Done, RunError> {
    let roots = live_roots(args.node.fs_root.as_ref());
    let run = for_each_netns(host, &roots, || {
        let plan = HostPlan {
            interval: args.interval,
            netns_inode: Some(current_netns_inode(host)?),
            system_wide: false,
        };
        Ok(collect_host(host, &plan)?)
    })?;
    let system = read_system(host, crate::host::PROC).map_err(|e| DoctorError::Proc {
        what: format!("{}/sys/fs/file-nr", crate::host::PROC),
        source: e,
    })?;
    let mut notes = run.notes;
    let processes: Vec<FdUsage> = run
        .found
        .iter()
        .flat_map(|f| f.value.processes.processes.iter().cloned())
        .collect();
    notes.extend(unreadable_fds_note(&processes));
    let per_ns = run
        .found
        .iter()
        .map(|f| (f.place.clone(), diagnose_host(&f.value)))
        .collect();
    let report = diagnose_node(per_ns, &system);
    let code = if report.has_problems() {
        ExitCode::Problems
    } else {
        ExitCode::Ok
    };
    Ok(Done::new(report).code(code).notes(notes))
}

/// Plain `doctor` on the host: the cheap part of the checks in the node's other namespaces
/// (accept queues and TIME_WAIT from one socket dump each: no interval, no counters, no fd
/// scan), so problems elsewhere are not silent. Counted, not listed.
fn glance_elsewhere(host: &dyn Host, args: &DoctorArgs) -> Result<(Checked, Elsewhere), RunError> {
    let here = current_netns_inode(host)?;
    let roots = live_roots(args.node.fs_root.as_ref());
    let run = for_each_netns(host, &roots, || {
        if current_netns_inode(host)? == here {
            return Ok(None);
        }
        let seen = glance_dump(host)?;
        Ok(Some(glance(&seen.listeners, seen.states.as_ref())))
    })?;
    let seen: Vec<usize> = run.found.iter().filter_map(|f| f.value).collect();
    let mut places: Vec<ElsewhereAt> = run
        .found
        .iter()
        .filter_map(|f| match f.value {
            Some(n) if n > 0 => Some(ElsewhereAt {
                place: f.place.clone(),
                findings: n as u64,
            }),
            _ => None,
        })
        .collect();
    places.sort_by(|a, b| {
        b.findings
            .cmp(&a.findings)
            .then(a.place.netns.inode.cmp(&b.place.netns.inode))
    });
    let elsewhere = Elsewhere {
        findings: seen.iter().sum::<usize>() as u64,
        namespaces: places.len() as u64,
        places,
    };
    Ok((
        Checked::OtherNamespaces {
            count: seen.len() as u64,
        },
        elsewhere,
    ))
}

/// The local listener check, then the bounded connect, with the accept-queue counters read
/// around it (a probe to a full queue moves ListenOverflows).
fn probe_target(
    host: &'static dyn Host,
    t: &Target,
    local: bool,
    args: &DoctorArgs,
) -> Result<Report, RunError> {
    let addr: SocketAddr = t.resolve().map_err(DoctorError::Resolve)?;
    let is_local = local || addr.ip().is_loopback();
    let mut report = Report::default();
    let mut listeners = Vec::new();
    let check = if is_local {
        listeners = listeners_on(host, addr.port())?;
        report.checked.push(Checked::ListenersOnPort {
            port: addr.port(),
            count: listeners.len() as u64,
        });
        if listeners.is_empty() {
            ListenCheck::Nothing { port: addr.port() }
        } else {
            ListenCheck::Listening {
                port: addr.port(),
                listeners: listeners.clone(),
            }
        }
    } else {
        ListenCheck::NotChecked
    };
    // The capture starts before the probe's SYN and ends after its last packet.
    let capture = if args.capture {
        let device = if addr.ip().is_loopback() { "lo" } else { "any" };
        Some((
            device,
            Capture::start(
                host,
                &CaptureSpec {
                    device: device.to_string(),
                    port: Some(addr.port()),
                    host: Some(addr.ip()),
                    netns: args.common.netns.clone(),
                    immediate: true,
                    ..Default::default()
                },
            )?,
        ))
    } else {
        None
    };
    let (before, t0) = read_now(host)?;
    let result = probe(addr, args.timeout).map_err(DoctorError::ProbeSocket)?;
    let (after, _) = read_now(host)?;
    let trace = match capture {
        Some((device, c)) => {
            // Let the capture thread read the last packets (the RST, a late SYN-ACK) in its
            // normal loop before it is stopped.
            std::thread::sleep(CAPTURE_SETTLE);
            Some((device, trace_for(&c.stop()?, result.local, addr)))
        }
        None => None,
    };
    let delta = CounterDelta {
        delta: before.delta(&after),
        seconds: t0.elapsed().as_secs_f64(),
    };
    report.checked.push(Checked::Connect {
        target: addr,
        timeout_ms: args.timeout.as_millis() as u64,
        outcome: result.outcome,
        connect_us: result.connect_us,
    });
    if let Some((device, _)) = &trace {
        report.checked.push(Checked::Capture {
            device: device.to_string(),
        });
    }
    let trace = trace.map(|(_, t)| t);
    // A refusal by a port that has a listener for the address, or a silence behind a listener
    // whose queue has room, is the packet filter's doing: read its rules to name the one.
    let firewall = match (result.outcome, &check) {
        (ProbeOutcome::Refused, c) if c.takes(addr.ip()) => Some(read_ruleset(addr.is_ipv6())),
        (ProbeOutcome::TimedOut, c @ ListenCheck::Listening { .. }) if !c.full() => {
            Some(read_ruleset(addr.is_ipv6()))
        }
        _ => None,
    };
    if let Some(fw) = &firewall {
        report.checked.push(Checked::Firewall {
            read: fw.read.clone(),
            rules: fw.rules.len() as u64,
        });
    }
    let probe_finding = check_probe(&result, &check, firewall.as_ref());
    report.findings.extend(probe_finding);
    report.capture = trace;
    if is_local {
        report
            .findings
            .extend(check_accept_queues(&listeners, Some(&delta)));
    }
    report.probe = Some(result);
    report.sort();
    Ok(report)
}

/// The note for processes (in the namespace checked) whose fd count could not be read; those
/// whose namespace could not be read are not known to be in it and are not named.
fn unreadable_fds_note(processes: &[FdUsage]) -> Option<String> {
    let denied: Vec<Denied> = processes
        .iter()
        .filter(|p| p.fds.is_none())
        .map(|p| Denied {
            pid: p.pid,
            name: p.name.clone(),
            netns: None,
        })
        .collect();
    unreadable_note(&denied, Missing::FdUse)
}
