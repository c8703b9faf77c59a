//! `sockscope doctor`: whole-host (or namespace) checks, or one service's probe.

use std::io::Write;
use std::net::SocketAddr;

use super::{unreadable_note, Missing, Outcome, RunError};
use crate::capture::{Capture, CaptureSpec};
use crate::cli::DoctorArgs;
use crate::doctor::checks::{
    check_accept_queues, check_probe, short_ms, CounterDelta, ListenCheck,
};
use crate::doctor::collect::{collect_host, current_netns_inode, listeners_on, read_now, HostPlan};
use crate::doctor::diagnose::diagnose_host;
use crate::doctor::error::DoctorError;
use crate::doctor::firewall::read_ruleset;
use crate::doctor::model::ProbeOutcome;
use crate::doctor::model::Report;
use crate::doctor::probe::probe;
use crate::doctor::target::Target;
use crate::doctor::trace::trace_for;
use crate::exit::ExitCode;
use crate::netns;
use crate::procs::model::FdUsage;
use crate::procs::unreadable::Denied;
use crate::render::doctor::{write_report_json, write_report_table};

/// Time between the probe's end and stopping its capture.
const CAPTURE_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

pub fn run(args: &DoctorArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    netns::enter_opt(args.common.netns.as_ref())?;
    let mut outcome = Outcome::ok();
    let report = match (&args.target, args.port) {
        (Some(t), _) => probe_target(t, false, args)?,
        (None, Some(port)) => probe_target(
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
                    Some(_) => Some(current_netns_inode()?),
                    None => None,
                },
                system_wide: args.common.netns.is_none(),
            };
            let ev = collect_host(&plan).map_err(RunError::from)?;
            outcome
                .notes
                .extend(unreadable_fds_note(&ev.processes.processes));
            diagnose_host(&ev)
        }
    };
    if args.common.json {
        write_report_json(out, &report)?;
    } else {
        write_report_table(out, &report)?;
    }
    if report.has_problems() {
        outcome.code = ExitCode::Problems;
    }
    Ok(outcome)
}

/// The local listener check, then the bounded connect, with the accept-queue counters read
/// around it (a probe to a full queue moves ListenOverflows).
fn probe_target(t: &Target, local: bool, args: &DoctorArgs) -> Result<Report, RunError> {
    let addr: SocketAddr = t.resolve().map_err(DoctorError::Resolve)?;
    let is_local = local || addr.ip().is_loopback();
    let mut report = Report::default();
    let mut listeners = Vec::new();
    let check = if is_local {
        listeners = listeners_on(addr.port())?;
        report.checked.push(format!(
            "listening sockets on port {} (kernel socket table): {}",
            addr.port(),
            listeners.len()
        ));
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
            Capture::start(&CaptureSpec {
                device: device.to_string(),
                port: Some(addr.port()),
                host: Some(addr.ip()),
                netns: args.common.netns.clone(),
                immediate: true,
                ..Default::default()
            })?,
        ))
    } else {
        None
    };
    let (before, t0) = read_now()?;
    let result = probe(addr, args.timeout).map_err(DoctorError::ProbeSocket)?;
    let (after, _) = read_now()?;
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
    report.checked.push(format!(
        "connect to {addr} (timeout {} ms): {}{}",
        args.timeout.as_millis(),
        result.outcome.name(),
        result
            .connect_ms
            .map(|m| format!(" in {} ms", short_ms(m)))
            .unwrap_or_default()
    ));
    if let Some((device, t)) = &trace {
        report
            .checked
            .push(format!("capture of the probe on {device}: {}", t.summary));
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
        report.checked.push(if fw.read.is_empty() {
            "firewall rules: not readable (nft, iptables-save missing or refused)".to_string()
        } else {
            format!(
                "firewall rules ({}): {} rejecting or dropping",
                fw.read.join(", "),
                fw.rules.len()
            )
        });
    }
    let mut probe_finding = check_probe(&result, &check, firewall.as_ref());
    if let (Some(f), Some(t)) = (probe_finding.as_mut(), trace.as_ref()) {
        f.evidence = format!("{}; capture: {}", f.evidence, t.summary);
    }
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
