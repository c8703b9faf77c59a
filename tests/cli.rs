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
