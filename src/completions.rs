//! Shell completion scripts: clap_complete's scripts, taught the values sockscope knows.
//! State names (--state) and `explain`'s symptom ids and errno names are fixed lists, offered
//! through the arguments' possible values; network namespace names (--netns) change while a
//! shell runs, so the scripts ask `sockscope __complete netns` for them at completion time.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// What `sockscope __complete` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dynamic {
    /// The names `ip netns list` shows (the files in /run/netns).
    Netns,
}

/// The command the scripts run for --netns candidates; quiet when it fails.
const NETNS_CALL: &str = "sockscope __complete netns 2>/dev/null";

/// `--state` names as people type them (ss's names and groups).
pub fn state_names() -> Vec<&'static str> {
    vec![
        "established",
        "syn-sent",
        "syn-recv",
        "fin-wait-1",
        "fin-wait-2",
        "time-wait",
        "close",
        "close-wait",
        "last-ack",
        "listening",
        "closing",
        "unconn",
        "connected",
        "synchronized",
        "bucket",
        "big",
        "all",
    ]
}

/// `explain`'s names: every symptom id, then every errno name it covers.
pub fn explain_names() -> Vec<&'static str> {
    let table = crate::doctor::table::TABLE;
    let mut v: Vec<&'static str> = table.iter().map(|r| r.id).collect();
    for r in table {
        for e in r.errnos {
            if !v.contains(e) {
                v.push(e);
            }
        }
    }
    v
}

/// The namespace names under `dir` (/run/netns), sorted.
pub fn netns_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn write_dynamic(what: Dynamic, out: &mut dyn Write) -> io::Result<()> {
    match what {
        Dynamic::Netns => {
            for n in netns_names(Path::new("/run/netns")) {
                writeln!(out, "{n}")?;
            }
        }
    }
    Ok(())
}

/// The completion script for `shell`.
pub fn write(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let (gen, patch): (_, fn(&str) -> String) = match shell {
        Shell::Bash => (clap_complete::Shell::Bash, patch_bash),
        Shell::Zsh => (clap_complete::Shell::Zsh, patch_zsh),
        Shell::Fish => (clap_complete::Shell::Fish, patch_fish),
    };
    let mut buf = Vec::new();
    clap_complete::generate(gen, &mut Cli::command(), "sockscope", &mut buf);
    out.write_all(patch(&String::from_utf8_lossy(&buf)).as_bytes())
}

/// bash: the `--netns)` cases complete files; they offer the namespace names too.
pub fn patch_bash(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 4096);
    let mut in_netns = false;
    for line in script.lines() {
        let t = line.trim();
        if t == "--netns)" {
            in_netns = true;
        } else if in_netns && t.starts_with("COMPREPLY=") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!(
                "{indent}COMPREPLY=($(compgen -W \"$({NETNS_CALL})\" -- \"${{cur}}\") \
                 $(compgen -f -- \"${{cur}}\"))\n"
            ));
            in_netns = false;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// zsh: the `--netns=` specs end in `:_default` (files); they call the command first.
pub fn patch_zsh(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 4096);
    for line in script.lines() {
        if line.contains("'--netns=") && line.contains(":_default'") {
            out.push_str(&line.replace(
                ":_default'",
                &format!(":{{compadd -- \\$({NETNS_CALL}); _files}}'"),
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// fish: `-l netns` lines take the command's output as candidates.
pub fn patch_fish(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 4096);
    for line in script.lines() {
        out.push_str(line);
        if line.starts_with("complete ") && line.contains(" -l netns ") {
            out.push_str(&format!(" -a \"({NETNS_CALL})\""));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        write(shell, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bash_offers_states_symptoms_and_namespaces() {
        let s = script(Shell::Bash);
        // --state completes the state names.
        assert!(
            s.contains("established syn-sent syn-recv fin-wait-1"),
            "no state list"
        );
        // explain completes symptom ids and errno names.
        assert!(
            s.contains("refused timed-out reset emfile"),
            "no symptom list"
        );
        assert!(s.contains("ECONNREFUSED"));
        // Every --netns case asks sockscope for names, none is left at files only.
        let calls = s.matches(NETNS_CALL).count();
        let cases = s.matches("--netns)").count();
        assert!(cases >= 7, "{cases}");
        assert_eq!(calls, cases);
    }

    #[test]
    fn zsh_and_fish_ask_for_namespaces_too() {
        let z = script(Shell::Zsh);
        assert_eq!(
            z.matches(NETNS_CALL).count(),
            z.matches("'--netns=").count(),
            "{z}"
        );
        let f = script(Shell::Fish);
        assert_eq!(
            f.matches(NETNS_CALL).count(),
            f.matches(" -l netns ").count()
        );
        assert!(f.contains("established"));
    }

    #[test]
    fn explain_names_cover_every_symptom() {
        let names = explain_names();
        for r in crate::doctor::table::TABLE {
            assert!(names.contains(&r.id));
        }
        for n in &names {
            assert!(crate::doctor::table::lookup(n).is_some(), "{n}");
        }
        for n in state_names() {
            assert!(n.parse::<crate::sockets::filter::StateSel>().is_ok(), "{n}");
        }
    }

    #[test]
    fn netns_names_are_the_files() {
        let dir = std::env::temp_dir().join(format!("ssc-netns-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web"), "").unwrap();
        std::fs::write(dir.join("db"), "").unwrap();
        assert_eq!(netns_names(&dir), ["db", "web"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(netns_names(&dir).is_empty());
    }
}
