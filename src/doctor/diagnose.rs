//! Runs every check over the collected evidence and says what was checked, so "no problems
//! found" is a statement with a scope. Pure: evidence in, report (typed values) out.

use super::checks::{
    check_accept_queues, check_close_wait, check_file_nr, check_process_fds, check_recv_q,
    check_resets, check_time_wait, check_udp_drops, micros, RECV_Q_STUCK,
};
use super::collect::HostEvidence;
use super::model::{Checked, Report, Severity};
use crate::procs::model::SystemFds;
use crate::scope::Where;
use crate::sockets::listeners::Listener;
use crate::sockets::model::TcpState;
use crate::sockets::states::StateSummary;

pub fn diagnose_host(ev: &HostEvidence) -> Report {
    let mut r = Report::default();
    let interval_us = micros(ev.counters.seconds);
    r.findings
        .extend(check_accept_queues(&ev.listeners, Some(&ev.counters)));
    r.checked.push(Checked::AcceptQueues {
        listeners: ev.listeners.len() as u64,
        interval_us,
    });
    r.findings.extend(check_time_wait(&ev.states));
    r.findings
        .extend(check_close_wait(&ev.states, &ev.close_wait_holders));
    r.checked.push(Checked::Sockets {
        total: ev.states.total,
        time_wait: ev.states.states.get(TcpState::TimeWait),
        close_wait: ev.states.states.get(TcpState::CloseWait),
        range: ev.states.ephemeral.as_ref().map(|e| (e.low, e.high)),
    });
    r.findings
        .extend(check_recv_q(&ev.stuck_readers, ev.counters.seconds));
    r.checked.push(Checked::RecvQ {
        interval_us,
        threshold_bytes: RECV_Q_STUCK,
    });
    r.findings.extend(check_resets(&ev.counters));
    r.checked.push(Checked::Resets { interval_us });
    r.findings
        .extend(check_udp_drops(&ev.counters, &ev.udp_dropping));
    r.checked.push(Checked::UdpDrops { interval_us });
    r.findings
        .extend(check_process_fds(&ev.processes.processes));
    let readable = ev
        .processes
        .processes
        .iter()
        .filter(|p| p.fds.is_some())
        .count();
    r.checked.push(Checked::ProcessFds {
        readable: readable as u64,
        unreadable: ev.processes.unreadable as u64,
    });
    match &ev.system {
        Some(sys) => {
            r.findings.extend(check_file_nr(sys));
            r.checked.push(Checked::FileTable(Some((
                sys.allocated.saturating_sub(sys.free),
                sys.max,
            ))));
        }
        None => r.checked.push(Checked::FileTable(None)),
    }
    r.sort();
    r
}

/// `--all-netns`: each namespace's report, its findings named with the place they live, the
/// checked list summed over the namespaces, and the system file table once (it is the host's,
/// not any namespace's).
pub fn diagnose_node(per_ns: Vec<(Where, Report)>, system: &SystemFds) -> Report {
    let mut r = Report::default();
    r.checked.push(Checked::Namespaces {
        count: per_ns.len() as u64,
    });
    let mut checked: Vec<Checked> = Vec::new();
    for (place, report) in per_ns {
        for mut f in report.findings {
            f.place = Some(place.clone());
            r.findings.push(f);
        }
        for c in report.checked {
            match checked.iter_mut().find(|k| same_kind(k, &c)) {
                Some(k) => add(k, &c),
                None => checked.push(c),
            }
        }
    }
    checked.retain(|c| !matches!(c, Checked::FileTable(_)));
    r.checked.extend(checked);
    r.findings.extend(check_file_nr(system));
    r.checked.push(Checked::FileTable(Some((
        system.allocated.saturating_sub(system.free),
        system.max,
    ))));
    r.sort();
    r
}

fn same_kind(a: &Checked, b: &Checked) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Sums the counts of two lines of the same kind (the interval is the same for all).
fn add(into: &mut Checked, c: &Checked) {
    match (into, c) {
        (Checked::AcceptQueues { listeners, .. }, Checked::AcceptQueues { listeners: n, .. }) => {
            *listeners += n
        }
        (
            Checked::Sockets {
                total,
                time_wait,
                close_wait,
                range,
            },
            Checked::Sockets {
                total: t,
                time_wait: tw,
                close_wait: cw,
                range: r,
            },
        ) => {
            *total += t;
            *time_wait += tw;
            *close_wait += cw;
            // Ranges are per namespace: name one only when they agree.
            if range != r {
                *range = None;
            }
        }
        (
            Checked::ProcessFds {
                readable,
                unreadable,
            },
            Checked::ProcessFds {
                readable: r,
                unreadable: u,
            },
        ) => {
            *readable += r;
            *unreadable += u;
        }
        _ => {}
    }
}

/// The cheap look at another namespace (plain `doctor`): how many warning-or-worse findings
/// its accept queues and TIME_WAIT give, from one dump and no interval (`states` is `None`
/// when the namespace's totals already rule a TIME_WAIT warning out).
pub fn glance(listeners: &[Listener], states: Option<&StateSummary>) -> usize {
    check_accept_queues(listeners, None)
        .into_iter()
        .chain(states.map(check_time_wait).unwrap_or_default())
        .filter(|f| f.severity >= Severity::Warning)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::CounterDelta;
    use crate::doctor::counters::Counters;
    use crate::doctor::model::Severity;
    use crate::procs::model::{FdUsage, SystemFds};
    use crate::procs::usage::ProcScan;
    use crate::render::doctor::checked_text;
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
        let ids: Vec<_> = r
            .findings
            .iter()
            .map(|f| (f.severity, f.symptom.id()))
            .collect();
        assert_eq!(
            ids,
            [
                (Severity::Critical, "emfile"),
                (Severity::Critical, "enfile"),
                (Severity::Warning, "reset"),
            ]
        );
        assert!(r.has_problems());
        let checked: Vec<String> = r.checked.iter().map(|c| checked_text(c, None)).collect();
        assert_eq!(
            checked,
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
        assert!(checked_text(&r.checked[6], None).contains("skipped"));
    }
}
