//! libpcap is loaded only when a capture needs it: the binary does not link it, a capture on
//! a host without it fails with the package to install (exit 3), and everything else works.
//! The missing library is real: `SOCKSCOPE_LIBPCAP` names a library that does not exist, so
//! sockscope's own `dlopen` fails exactly as it does where libpcap0.8 is not installed.

use std::process::Command;

use super::{fixture, TempPath};
use crate::support::sockscope;

const MISSING: &str = "libpcap-sockscope-test-missing.so.0";

fn run_without_libpcap(args: &[&str]) -> (i32, String, String) {
    let out = sockscope()
        .env("SOCKSCOPE_LIBPCAP", MISSING)
        .args(args)
        .output()
        .expect("run sockscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every run used to map libpcap and its eight libraries before `main` (2 ms of startup).
#[test]
fn the_binary_does_not_link_libpcap() {
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_sockscope"))
        .output()
        .expect("run ldd");
    let needed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && needed.contains("libc.so"),
        "{needed}"
    );
    assert!(!needed.contains("libpcap"), "{needed}");
}

#[test]
fn without_libpcap_a_capture_names_the_package_and_exits_3() {
    let lo = fixture("lo-en10mb.pcap");
    for args in [
        vec!["capture", "-r", lo.as_str()],
        vec!["capture", "-i", "lo", "-c", "1"],
        // Fails before its probe: no connect is made.
        vec!["doctor", "127.0.0.1:1", "--capture"],
    ] {
        let (code, out, err) = run_without_libpcap(&args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                3,
                "",
                format!(
                    "sockscope: capture needs libpcap (not found: {MISSING}): apt install libpcap0.8\n"
                )
                .as_str()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn without_libpcap_everything_else_still_works() {
    // pcapng goes through sockscope's own reader.
    let (code, out, err) =
        run_without_libpcap(&["capture", "-r", &fixture("multi-snaplen.pcapng"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(!v["flows"].as_array().unwrap().is_empty(), "{out}");
    for args in [
        vec!["--version"],
        vec!["summary", "--json"],
        vec!["capture", "--print-filter"],
    ] {
        let (code, _, err) = run_without_libpcap(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}

/// The override must not let an unprivileged user load a library into a binary given
/// capabilities with `setcap` (the README's way to capture without root): in
/// secure-execution mode it is ignored and the real libpcap is loaded.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn the_override_is_ignored_by_a_binary_given_capabilities() {
    if !crate::support::require_root("the_override_is_ignored_by_a_binary_given_capabilities") {
        return;
    }
    // Copies nobody can reach (the build directory may be under /root).
    let dir = std::env::temp_dir();
    let bin = TempPath(dir.join(format!("sockscope-setcap-{}", std::process::id())));
    let pcap = TempPath(dir.join(format!("sockscope-setcap-{}.pcap", std::process::id())));
    std::fs::copy(env!("CARGO_BIN_EXE_sockscope"), &bin.0).unwrap();
    std::fs::copy(fixture("lo-en10mb.pcap"), &pcap.0).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&pcap.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    let st = Command::new("setcap")
        .args(["cap_net_raw+ep", bin.s()])
        .status()
        .expect("run setcap");
    assert!(st.success());
    let run_as_nobody = |env: Option<&str>| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            bin.s(),
            "capture",
            "-r",
            pcap.s(),
        ]);
        if let Some(v) = env {
            c.env("SOCKSCOPE_LIBPCAP", v);
        }
        let out = c.output().expect("run setpriv");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run_as_nobody(Some(MISSING));
    assert_eq!(code, Some(0), "{err}");
    // The same copy without its capability honours the override (the test proves something).
    let st = Command::new("setcap")
        .args(["-r", bin.s()])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, err) = run_as_nobody(Some(MISSING));
    assert_eq!(code, Some(3), "{err}");
}
