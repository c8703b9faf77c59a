//! `sockscope pool`: pool size by Little's law against the fd limit.

use super::RunError;
use crate::cli::PoolArgs;
use crate::doctor::pool::{plan, PoolInput};
use crate::exit::ExitCode;
use crate::report::Done;

pub fn run(args: &PoolArgs) -> Result<Done, RunError> {
    let (fd_limit, fd_limit_source) = match args.fd_limit {
        Some(n) => (n as u64, "--fd-limit"),
        None => (soft_nofile(), "soft RLIMIT_NOFILE of this shell"),
    };
    let p = plan(&PoolInput {
        qps: args.qps,
        latency: args.latency,
        upstreams: args.upstreams as u64,
        fd_limit,
        fd_limit_source,
        upstream_idle_timeout: args.upstream_idle_timeout,
        rtt: args.rtt,
    })
    .map_err(|e| RunError::Input(e.to_string()))?;
    let code = if p.fits {
        ExitCode::Ok
    } else {
        ExitCode::Problems
    };
    Ok(Done::new(p).code(code))
}

fn soft_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0
        || r.rlim_cur == libc::RLIM_INFINITY
    {
        return u64::MAX;
    }
    r.rlim_cur
}
