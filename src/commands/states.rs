//! `sockscope states`.

use super::RunError;
use crate::cli::StatesArgs;
use crate::netns;
use crate::report::Done;
use crate::sockets::filter::Selection;
use crate::sockets::states::StateCounter;
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};
use crate::sockets::{for_each_socket, Extras};

pub fn run(args: &StatesArgs) -> Result<Done, RunError> {
    netns::enter_opt(args.common.netns.as_ref())?;
    // Read after entering the namespace: these sysctls are per namespace.
    let range = read_port_range();
    let settings = read_time_wait_settings();
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    for_each_socket(&sel, Extras::default(), &mut |s| counter.add(&s))?;
    Ok(Done::new(counter.finish(args.top, settings)))
}
