//! Man pages generated from the clap definitions, one per subcommand, so `--help` and `man`
//! never disagree. `man/` is committed and a test fails when it is stale.

use std::io;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// Renders every page as (file name, roff text).
pub fn render_all() -> io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    // `sockscope help` has no page of its own: listed, it would point at a sockscope-help(1)
    // that does not exist.
    clap_mangen::Man::new(cmd.clone().disable_help_subcommand(true)).render(&mut top)?;
    pages.push(("sockscope.1".to_string(), top));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let name: &'static str =
            Box::leak(format!("sockscope-{}", sub.get_name()).into_boxed_str());
        let sub = sub
            .clone()
            .name(name)
            .bin_name(format!("sockscope {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buf)?;
        pages.push((format!("{name}.1"), buf));
    }
    Ok(pages)
}

pub fn write_all(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in render_all()? {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}
