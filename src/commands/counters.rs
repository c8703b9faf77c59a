//! `sockscope counters`: what the kernel's TCP/UDP/IP counters did over an interval (or since
//! the namespace began).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::RunError;
use crate::cli::CountersArgs;
use crate::counters::{delta, read_all, select, CounterReport, Pick};
use crate::host::Host;
use crate::netns;
use crate::report::Done;

pub fn run(host: &dyn Host, args: &CountersArgs) -> Result<Done, RunError> {
    netns::enter_opt(host, args.common.netns.as_ref())?;
    let read = || {
        read_all(host).map_err(|e| {
            RunError::Unreadable(format!("cannot read /proc/net/netstat or snmp: {e}"))
        })
    };
    let pick = Pick {
        zeros: args.all,
        names: args.names.clone(),
    };
    if args.absolute {
        return Ok(Done::new(CounterReport {
            mode: "absolute",
            interval_us: None,
            interrupted: false,
            counters: select(&read()?, &pick),
        }));
    }
    // Ctrl-C, SIGTERM and SIGHUP end the interval early with what moved so far: a complete
    // report, so exit 0. A second signal exits at once (130).
    let stop = crate::commands::stop_on_signals()?;
    let before = read()?;
    let start = Instant::now();
    let _ = crate::render::counters::write_banner(&mut std::io::stderr(), args.interval);
    while !stop.load(Ordering::Relaxed) {
        let left = args.interval.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    let after = read()?;
    let elapsed = start.elapsed();
    Ok(Done::new(CounterReport {
        mode: "delta",
        interval_us: Some(elapsed.as_micros() as u64),
        interrupted: stop.load(Ordering::Relaxed),
        counters: select(&delta(&before, &after), &pick),
    }))
}
