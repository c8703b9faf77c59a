//! `sockscope summary`: the kernel's socket totals (`ss -s` and the limits behind them).

use super::RunError;
use crate::cli::SummaryArgs;
use crate::host::Host;
use crate::netns;
use crate::procs::usage::read_system;
use crate::report::Done;
use crate::sockets::filter::Selection;
use crate::sockets::model::Proto;
use crate::sockets::sysctl::read_sysctl_i64;
use crate::sockets::{for_each_socket, Extras};
use crate::summary::sockstat::{read_curr_estab, read_host_limits, read_sockstat};
use crate::summary::{summarize, Inputs, StateTally};

pub fn run(host: &dyn Host, args: &SummaryArgs) -> Result<Done, RunError> {
    // The host's own limits and file table first: a private namespace does not show them.
    let limits = read_host_limits(host);
    let files = read_system(host, crate::host::PROC).ok();
    netns::enter_opt(host, args.common.netns.as_ref())?;
    let proc_err = |e| RunError::Unreadable(format!("cannot read /proc/net/sockstat or snmp: {e}"));
    let sockstat = read_sockstat(host).map_err(proc_err)?;
    let curr_estab = read_curr_estab(host).map_err(proc_err)?;
    let states = if args.states {
        let sel = Selection {
            protos: vec![Proto::Tcp, Proto::Udp],
            families: vec![4, 6],
            ..Selection::default()
        };
        let mut tally = StateTally::default();
        for_each_socket(host, &sel, Extras::default(), &mut |s| tally.add(&s))?;
        Some(tally)
    } else {
        None
    };
    Ok(Done::new(summarize(Inputs {
        sockstat,
        curr_estab,
        limits,
        max_tw_buckets: read_sysctl_i64(host, "net/ipv4/tcp_max_tw_buckets")
            .and_then(|v| v.try_into().ok()),
        files,
        states,
    })))
}
