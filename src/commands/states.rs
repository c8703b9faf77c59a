//! `sockscope states`.

use std::io::Write;

use super::{Outcome, RunError};
use crate::cli::StatesArgs;
use crate::netns;
use crate::render::{states::write_states_table, write_json};
use crate::sockets::filter::Selection;
use crate::sockets::for_each_socket;
use crate::sockets::model::Proto;
use crate::sockets::states::{StateCounter, TimeWaitSettings};
use crate::sockets::sysctl::{read_port_range, read_sysctl_i64};

pub fn run(args: &StatesArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    netns::enter_opt(args.common.netns.as_ref())?;
    // Read after entering the namespace: these sysctls are per namespace.
    let range = read_port_range();
    let settings = TimeWaitSettings {
        tcp_tw_reuse: read_sysctl_i64("net/ipv4/tcp_tw_reuse"),
        tcp_max_tw_buckets: read_sysctl_i64("net/ipv4/tcp_max_tw_buckets"),
    };
    let sel = Selection {
        protos: vec![Proto::Tcp],
        families: vec![4, 6],
        states: 0,
        user: Default::default(),
    };
    let mut counter = StateCounter::new(range);
    for_each_socket(&sel, false, &mut |s| counter.add(&s))?;
    let summary = counter.finish(args.top, settings);
    if args.common.json {
        write_json(out, &summary)?;
    } else {
        write_states_table(out, &summary)?;
    }
    Ok(Outcome::ok())
}
