//! The command line itself: usage errors, man pages, completions. No root needed.

use crate::support::run;

#[test]
fn usage_errors_exit_2_with_one_clear_line() {
    for (args, needle) in [
        (
            &["sockets", "--state", "bogus"][..],
            "unknown state 'bogus'",
        ),
        (&["sockets", "--src", "10.0.0.0/33"], "must be 0..=32"),
        (&["sockets", "--dst", "not-an-ip"], "is not an address"),
        (&["sockets", "--port", "70000"], "70000 is not in 0..=65535"),
        (&["listeners", "--netns", "pid:abc"], "is not a process id"),
        (&["states", "--top", "-1"], "is not a count"),
        // The missing arguments are named, not lost to the one-line format.
        (
            &["pool"],
            "required arguments were not provided: --qps <N>, --latency <DURATION>",
        ),
        // Once printed "pool max 184467440737095515" and "922337203685477.62%".
        (
            &["pool", "--qps", "1e308", "--latency", "1h"],
            "no process can hold a pool that size",
        ),
        (
            &[
                "pool",
                "--qps",
                "2000",
                "--latency",
                "50ms",
                "--upstreams",
                "100000000",
            ],
            "more fds than any process can hold",
        ),
        (
            &["sockets", "--prot", "1"],
            "(a similar argument exists: '--port')",
        ),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed to stdout");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("sockscope: "), "{err}");
    }
}

#[test]
fn man_pages_in_repo_are_up_to_date() {
    let dir = std::env::temp_dir().join(format!("sockscope-man-{}", std::process::id()));
    let (code, _, err) = run(&["generate-man", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let fresh = std::fs::read(dir.join(name)).unwrap();
        let old = std::fs::read(committed.join(name)).unwrap_or_default();
        assert!(
            fresh == old,
            "man/{} is stale: run `cargo run -- generate-man man` and commit",
            name.to_string_lossy()
        );
    }
    let mut in_repo: Vec<_> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    in_repo.sort();
    assert_eq!(
        in_repo, names,
        "man/ holds pages for commands that no longer exist"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_for_three_shells() {
    for (shell, needle) in [
        ("bash", "_sockscope()"),
        ("zsh", "#compdef sockscope"),
        ("fish", "complete -c sockscope"),
    ] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(needle), "{shell}");
        assert!(out.contains("listeners"), "{shell}");
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::process::Stdio;
    let mut child = crate::support::sockscope()
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Subcommands a user can call (not the hidden generate-man, not clap's `help`).
fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    sockscope::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The example lines of a help text or rendered man page: the indented lines under
/// `Examples:`, or the rest of an `Example:` line.
fn examples(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let t = l.trim();
        if let Some(one) = t.strip_prefix("Example: ") {
            out.push(one.to_string());
        } else if t == "Examples:" {
            while let Some(e) = lines.next_if(|e| !e.trim().is_empty()) {
                out.push(e.trim().to_string());
            }
        }
    }
    out
}

/// A man page as `man` shows it, wide enough that no paragraph wraps an example.
fn man_text(page: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!(
        "ssc-man-{}-{}.1",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    std::fs::write(&path, page).unwrap();
    let out = std::process::Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(&path)
        .env("MANWIDTH", "250")
        .output()
        .expect("man (package man-db) renders the pages");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Words of `text` on one line, with groff's hyphenation at line ends undone.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("\u{2010} ", "")
}

/// Whether `id` appears in `text` as a whole word (`time-wait`, not inside `time-wait-x`).
fn names_word(text: &str, id: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(id).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(part)
            && !text[i + id.len()..].chars().next().is_some_and(part)
    })
}

#[test]
fn help_and_man_pages_keep_examples_on_their_own_lines_and_list_every_symptom() {
    let pages = sockscope::manpages::render_all().unwrap();
    let symptoms: Vec<&str> = sockscope::doctor::table::TABLE
        .iter()
        .map(|r| r.id)
        .collect();
    for sub in subcommands() {
        let (code, help, err) = run(&[sub.as_str(), "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        let (_, page) = pages
            .iter()
            .find(|(n, _)| *n == format!("sockscope-{sub}.1"))
            .unwrap_or_else(|| panic!("no man page for {sub}"));
        let man = man_text(page);
        for (what, text) in [("--help", &help), ("man page", &man)] {
            let ex = examples(text);
            assert!(!ex.is_empty(), "{sub} {what} has no examples:\n{text}");
            for e in &ex {
                // One command per line: a run-together block names the subcommand again.
                assert_eq!(
                    e.matches(&format!("sockscope {sub}")).count(),
                    1,
                    "{sub} {what}: example line {e:?}"
                );
                assert!(
                    e.starts_with("sockscope ") || e.starts_with("tcpdump "),
                    "{sub} {what}: {e:?}"
                );
            }
            if sub == "doctor" || sub == "explain" {
                let words = flat(text);
                for id in &symptoms {
                    assert!(
                        names_word(&words, id),
                        "{sub} {what} does not list symptom {id}:\n{text}"
                    );
                }
            }
        }
    }
    // The top page lists no page that does not exist.
    let (_, top) = pages.iter().find(|(n, _)| n == "sockscope.1").unwrap();
    let top = man_text(top);
    let names: Vec<&String> = pages.iter().map(|(n, _)| n).collect();
    for word in top.split_whitespace() {
        if let Some(page) = word.strip_suffix("(1)") {
            let file = format!("{}.1", page.replace('\u{2010}', "-").replace("\\-", "-"));
            assert!(
                names.contains(&&file),
                "sockscope(1) refers to {word}: no such page"
            );
        }
    }
}

#[test]
fn reading_a_pcap_file_prints_no_leading_blank_line() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pcap/lo-en10mb.pcap");
    let (code, out, err) = run(&["capture", "-r", file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Client "), "{out:?}");
}

#[test]
fn explain_takes_numbers_names_without_e_and_pasted_messages() {
    let refused = libc::ECONNREFUSED.to_string();
    for (input, id) in [
        (refused.as_str(), "refused"),
        ("Connection reset by peer", "reset"),
        ("CONNREFUSED", "refused"),
        ("Too many open files in system", "enfile"),
        ("Cannot assign requested address", "time-wait"),
        ("Broken pipe", "reset"),
    ] {
        let (code, out, err) = run(&["explain", input]);
        assert_eq!(code, 0, "{input}: {err}");
        assert!(out.starts_with(&format!("{id}: ")), "{input}: {out}");
        let v = crate::support::run_json(&["explain", input, "--json"]);
        assert_eq!(v["id"], id, "{input}");
    }
    let (code, out, err) = run(&["explain", "ECONNREFUSD"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "sockscope: unknown error or symptom 'ECONNREFUSD'; closest: 'ECONNREFUSED'"
        ),
        "{err}"
    );
}

/// Every live test (one that calls `require_root`) is marked `#[ignore = "needs root…"]`, so
/// that without root `cargo test` reports it as ignored, with the reason and a count at the
/// end, instead of passing it; `scripts/test` runs them all with `--include-ignored`.
#[test]
fn every_live_test_is_marked_needs_root() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = vec![root.clone()];
    let mut unmarked = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() != "#[test]" {
                continue;
            }
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            let attrs = &lines[i + 1..j];
            // The body runs to the first line that is a lone closing brace at the fn's indent.
            let indent = lines[i].len() - lines[i].trim_start().len();
            let end = (j..lines.len())
                .find(|&k| lines[k].len() == indent + 1 && lines[k].trim() == "}")
                .unwrap_or(lines.len());
            // Spelled in two halves so this test's own body does not count as a live test.
            let call = concat!("require_", "root(");
            let live = lines[j..end].iter().any(|b| b.contains(call));
            let marked = attrs
                .iter()
                .any(|a| a.trim_start().starts_with("#[ignore = \"needs root"));
            if live && !marked {
                unmarked.push(format!("{}: {}", p.display(), lines[j].trim()));
            }
        }
    }
    assert!(
        unmarked.is_empty(),
        "live tests without #[ignore = \"needs root: …\"]:\n{}",
        unmarked.join("\n")
    );
}
