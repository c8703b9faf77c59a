//! Runs every check over the collected evidence and says what was checked, so "no problems
//! found" is a statement with a scope. Pure: evidence in, report out.

use super::checks::{
    check_accept_queues, check_close_wait, check_file_nr, check_process_fds, check_recv_q,
    check_resets, check_time_wait, check_udp_drops, RECV_Q_STUCK,
};
use super::collect::HostEvidence;
use super::model::Report;
use crate::sockets::model::TcpState;

/// "1 TCP listener", "2 TCP listeners".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn diagnose_host(ev: &HostEvidence) -> Report {
    let mut r = Report::default();
    let secs = format!("{:.1} s", ev.counters.seconds);
    r.findings
        .extend(check_accept_queues(&ev.listeners, Some(&ev.counters)));
    r.checked.push(format!(
        "accept queues of {}; ListenOverflows/ListenDrops over {secs}",
        count(ev.listeners.len() as u64, "TCP listener", "TCP listeners")
    ));
    r.findings.extend(check_time_wait(&ev.states));
    r.findings
        .extend(check_close_wait(&ev.states, &ev.close_wait_holders));
    let range = ev
        .states
        .ephemeral
        .as_ref()
        .map(|e| format!("ephemeral range {}-{}", e.low, e.high))
        .unwrap_or_else(|| "ephemeral range unknown".into());
    r.checked.push(format!(
        "{}, {} in TIME_WAIT, {} in CLOSE_WAIT; per-peer use of the {range}",
        count(ev.states.total, "TCP socket", "TCP sockets"),
        ev.states.states.get(TcpState::TimeWait),
        ev.states.states.get(TcpState::CloseWait)
    ));
    r.findings
        .extend(check_recv_q(&ev.stuck_readers, ev.counters.seconds));
    r.checked.push(format!(
        "Recv-Q of established TCP sockets at both ends of {secs} (stuck reader: {} bytes or \
         more, not shrinking)",
        RECV_Q_STUCK
    ));
    r.findings.extend(check_resets(&ev.counters));
    r.checked.push(format!(
        "reset/abort counters (TCPAbortOn*, EstabResets, OutRsts) over {secs}"
    ));
    r.findings
        .extend(check_udp_drops(&ev.counters, &ev.udp_dropping));
    r.checked.push(format!(
        "UDP receive-buffer drops (UdpRcvbufErrors, Udp6RcvbufErrors) over {secs}"
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
        "fd use against the soft limit of {}{}",
        count(readable as u64, "process", "processes"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::CounterDelta;
    use crate::doctor::counters::Counters;
    use crate::doctor::model::Severity;
    use crate::procs::model::{FdUsage, SystemFds};
    use crate::procs::usage::ProcScan;
    use crate::sockets::states::{StateCounter, TimeWaitSettings};

    fn evidence(fds: u64, allocated: u64, system: bool) -> HostEvidence {
        HostEvidence {
            listeners: Vec::new(),
            states: StateCounter::new(Some((20000, 20999))).finish(5, TimeWaitSettings::default()),
            counters: CounterDelta {
                delta: Counters(
                    [("TcpExt.TCPAbortOnData".to_string(), 2)]
                        .into_iter()
                        .collect(),
                ),
                seconds: 2.0,
            },
            processes: ProcScan {
                processes: vec![FdUsage {
                    pid: 7,
                    name: "svc".into(),
                    fds: Some(fds),
                    soft_limit: Some(1024),
                    hard_limit: Some(4096),
                    sockets: None,
                    kinds: None,
                }],
                unreadable: 1,
            },
            system: system.then_some(SystemFds {
                allocated,
                free: 0,
                max: 1000,
                nr_open: None,
            }),
            close_wait_holders: Vec::new(),
            udp_dropping: Vec::new(),
            stuck_readers: Vec::new(),
        }
    }

    #[test]
    fn every_check_runs_worst_first_and_says_what_it_covered() {
        let r = diagnose_host(&evidence(1024, 1000, true));
        let ids: Vec<_> = r.findings.iter().map(|f| (f.severity, f.symptom)).collect();
        assert_eq!(
            ids,
            [
                (Severity::Critical, "emfile"),
                (Severity::Critical, "enfile"),
                (Severity::Warning, "reset"),
            ]
        );
        assert!(r.has_problems());
        assert_eq!(
            r.checked,
            [
                "accept queues of 0 TCP listeners; ListenOverflows/ListenDrops over 2.0 s",
                "0 TCP sockets, 0 in TIME_WAIT, 0 in CLOSE_WAIT; per-peer use of the ephemeral range 20000-20999",
                "Recv-Q of established TCP sockets at both ends of 2.0 s (stuck reader: 65536 bytes or more, not shrinking)",
                "reset/abort counters (TCPAbortOn*, EstabResets, OutRsts) over 2.0 s",
                "UDP receive-buffer drops (UdpRcvbufErrors, Udp6RcvbufErrors) over 2.0 s",
                "fd use against the soft limit of 1 process (1 unreadable)",
                "system file table: 1000 of fs.file-max 1000",
            ]
        );
        // One namespace: the host-wide file table is left out, and says so.
        let r = diagnose_host(&evidence(10, 1000, false));
        assert_eq!(r.findings.len(), 1);
        assert!(r.checked[6].contains("skipped"));
    }
}
