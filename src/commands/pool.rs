//! `sockscope pool`: pool size by Little's law against the fd limit.

use std::io::Write;

use super::{Outcome, RunError};
use crate::cli::PoolArgs;
use crate::doctor::pool::{plan, PoolInput};
use crate::exit::ExitCode;
use crate::render::doctor::{write_json, write_pool_table};

pub fn run(args: &PoolArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
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
    if args.json {
        write_json(out, &p)?;
    } else {
        write_pool_table(out, &p)?;
    }
    let mut o = Outcome::ok();
    if !p.fits {
        o.code = ExitCode::Problems;
    }
    Ok(o)
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
