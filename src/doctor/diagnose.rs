//! Runs every check over the collected evidence and says what was checked, so "no problems
//! found" is a statement with a scope. Pure: evidence in, report out.

use super::checks::{
    check_accept_queues, check_file_nr, check_process_fds, check_resets, check_time_wait,
};
use super::collect::HostEvidence;
use super::model::Report;
use crate::sockets::model::TcpState;

pub fn diagnose_host(ev: &HostEvidence) -> Report {
    let mut r = Report::default();
    let secs = format!("{:.1} s", ev.counters.seconds);
    r.findings
        .extend(check_accept_queues(&ev.listeners, Some(&ev.counters)));
    r.checked.push(format!(
        "accept queues of {} TCP listeners; ListenOverflows/ListenDrops over {secs}",
        ev.listeners.len()
    ));
    r.findings.extend(check_time_wait(&ev.states));
    let range = ev
        .states
        .ephemeral
        .as_ref()
        .map(|e| format!("ephemeral range {}-{}", e.low, e.high))
        .unwrap_or_else(|| "ephemeral range unknown".into());
    r.checked.push(format!(
        "{} TCP sockets, {} in TIME_WAIT; per-peer use of the {range}",
        ev.states.total,
        ev.states.states.get(TcpState::TimeWait)
    ));
    r.findings.extend(check_resets(&ev.counters));
    r.checked.push(format!(
        "reset/abort counters (TCPAbortOn*, EstabResets, OutRsts) over {secs}"
    ));
    r.findings
        .extend(check_process_fds(&ev.processes.processes));
    let readable = ev
        .processes
        .processes
        .iter()
        .filter(|p| p.fds.is_some())
        .count();
    r.checked.push(format!(
        "fd use against the soft limit of {readable} processes{}",
        if ev.processes.unreadable > 0 {
            format!(" ({} unreadable)", ev.processes.unreadable)
        } else {
            String::new()
        }
    ));
    match &ev.system {
        Some(sys) => {
            r.findings.extend(check_file_nr(sys));
            r.checked.push(format!(
                "system file table: {} of fs.file-max {}",
                sys.allocated.saturating_sub(sys.free),
                sys.max
            ));
        }
        None => r
            .checked
            .push("system file table: skipped (host-wide, not part of one namespace)".into()),
    }
    r.sort();
    r
}
