//! `sockscope states`.

use std::io::Write;

use super::{Outcome, RunError};
use crate::cli::StatesArgs;
use crate::netns;
use crate::render::{states::write_states_table, write_json};
use crate::sockets::filter::Selection;
use crate::sockets::states::StateCounter;
use crate::sockets::sysctl::{read_port_range, read_time_wait_settings};
use crate::sockets::{for_each_socket, Extras};

pub fn run(args: &StatesArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    netns::enter_opt(args.common.netns.as_ref())?;
    // Read after entering the namespace: these sysctls are per namespace.
    let range = read_port_range();
    let settings = read_time_wait_settings();
    let sel = Selection::every_tcp();
    let mut counter = StateCounter::new(range);
    for_each_socket(&sel, Extras::default(), &mut |s| counter.add(&s))?;
    let summary = counter.finish(args.top, settings);
    if args.common.json {
        write_json(out, &summary)?;
    } else {
        write_states_table(out, &summary)?;
    }
    Ok(Outcome::ok())
}
