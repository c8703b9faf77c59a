//! `sockscope explain NAME`: one row of the doctor's table.

use super::RunError;
use crate::cli::ExplainArgs;
use crate::doctor::errnos::message;
use crate::doctor::error::DoctorError;
use crate::doctor::table::{closest, covered_errnos, lookup};
use crate::report::Done;

pub fn run(args: &ExplainArgs) -> Result<Done, RunError> {
    let Some(row) = lookup(&args.name) else {
        // A number is an errno: the closest names by spelling would mean nothing.
        let closest = match args.name.trim().parse::<i32>() {
            Ok(n) => format!(
                "{}; the errnos it explains are {}",
                if n > 0 {
                    format!("errno {n} is \"{}\"", message(n))
                } else {
                    format!("{n} is no errno")
                },
                covered_errnos()
                    .iter()
                    .map(|(e, n)| format!("{n} ({e})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(_) => {
                "closest: ".to_string()
                    + &closest(&args.name, 3)
                        .iter()
                        .map(|k| format!("'{k}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
            }
        };
        return Err(DoctorError::UnknownName {
            name: crate::render::escape(&args.name),
            closest,
        }
        .into());
    };
    Ok(Done::new(*row))
}
