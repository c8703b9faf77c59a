//! `sockscope states`.

use super::RunError;
use crate::cli::StatesArgs;
use crate::netns;
use crate::report::Done;
use crate::scope::{for_each_netns, live_roots};
use crate::sockets::filter::Selection;
use crate::sockets::node::group;
use crate::sockets::states::StateCounter;
use crate::sockets::states::StateSummary;
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};
use crate::sockets::{for_each_socket, Extras};

pub fn run(args: &StatesArgs) -> Result<Done, RunError> {
    if args.node.all_netns {
        let roots = live_roots(args.node.fs_root.as_ref());
        let run = for_each_netns(&roots, || count(args.top))?;
        return Ok(Done::new(group(run.found, args.by, args.top)).notes(run.notes));
    }
    netns::enter_opt(args.common.netns.as_ref())?;
    Ok(Done::new(count(args.top)?))
}

/// The summary of the calling thread's namespace.
fn count(top: usize) -> Result<StateSummary, RunError> {
    // Read after entering the namespace: these sysctls are per namespace.
    let range = read_port_range();
    let settings = read_time_wait_settings();
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    for_each_socket(&sel, Extras::default(), &mut |s| counter.add(&s))?;
    Ok(counter.finish(top, settings))
}
