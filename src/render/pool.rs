//! The `pool` report: the sizing as a table (its words are in `render::doctor`).

use std::io::{self, Write};

use crate::doctor::pool::PoolPlan;
use crate::report::{Output, Report};

impl Report for PoolPlan {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        super::doctor::write_pool_table(out, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::pool::{plan, PoolInput};
    use std::time::Duration;

    #[test]
    fn pool_tables() {
        let input = PoolInput {
            qps: 2000.0,
            latency: Duration::from_millis(50),
            upstreams: 3,
            fd_limit: 1024,
            fd_limit_source: "--fd-limit",
            upstream_idle_timeout: Duration::from_secs(60),
            rtt: None,
        };
        let render = |i: &PoolInput| {
            let mut out = Vec::new();
            plan(i).unwrap().table(&mut out, &Output::table()).unwrap();
            String::from_utf8(out).unwrap()
        };
        insta::assert_snapshot!("pool_fits", render(&input));
        let tight = PoolInput {
            upstreams: 20,
            rtt: Some(Duration::from_millis(30)),
            ..input
        };
        insta::assert_snapshot!("pool_does_not_fit_with_rtt", render(&tight));
    }
}
