//! The `explain` report: one row of the doctor's table (its words are in `render::doctor`).

use std::io::{self, Write};

use crate::doctor::table::Row;
use crate::report::{Output, Report};

impl Report for Row {
    fn json(&self) -> &dyn erased_serde::Serialize {
        self
    }
    fn table(&self, out: &mut dyn Write, _: &Output) -> io::Result<()> {
        super::doctor::write_row_text(out, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_tables() {
        for id in ["refused", "accept-queue", "time-wait"] {
            let row = crate::doctor::table::lookup(id).unwrap();
            let mut out = Vec::new();
            row.table(&mut out, &Output::table()).unwrap();
            insta::assert_snapshot!(format!("explain_{id}"), String::from_utf8(out).unwrap());
        }
    }
}
