//! `sockscope explain NAME`: one row of the doctor's table.

use std::io::Write;

use super::{Outcome, RunError};
use crate::cli::ExplainArgs;
use crate::doctor::error::DoctorError;
use crate::doctor::table::{known_names, lookup};
use crate::render::doctor::{write_row_json, write_row_text};

pub fn run(args: &ExplainArgs, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let Some(row) = lookup(&args.name) else {
        return Err(DoctorError::UnknownName {
            name: crate::render::escape(&args.name),
            known: known_names().join(", "),
        }
        .into());
    };
    if args.json {
        write_row_json(out, row)?;
    } else {
        write_row_text(out, row)?;
    }
    Ok(Outcome::ok())
}
