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
