//! `explain` and `pool` on the one way out: `--json` and `--jsonl` as everywhere else, with
//! `schema_version`, and the same exit codes.

use serde_json::Value;

use crate::support::run;

#[test]
fn explain_and_pool_take_json_and_jsonl() {
    for args in [
        &["explain", "ECONNREFUSED"][..],
        &[
            "pool",
            "--qps",
            "2000",
            "--latency",
            "50ms",
            "--fd-limit",
            "65536",
        ],
    ] {
        let json = [args, &["--json"]].concat();
        let (code, out, err) = run(&json);
        assert_eq!(code, 0, "{args:?}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["schema_version"], 1, "{out}");
        let jsonl = [args, &["--jsonl"]].concat();
        let (code, line, err) = run(&jsonl);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), doc);
        let (code, _, err) = run(&[args, &["--json", "--jsonl"]].concat());
        assert_eq!(code, 2, "{err}");
    }
    let (code, out, _) = run(&["explain", "111", "--jsonl"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("{\"schema_version\":1,\"id\":\"refused\""),
        "{out}"
    );
    // A pool that does not fit still prints its report, and exits 1.
    let (code, out, _) = run(&[
        "pool",
        "--qps",
        "2000",
        "--latency",
        "50ms",
        "--upstreams",
        "3",
        "--fd-limit",
        "300",
        "--jsonl",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("\"fits\":false"), "{out}");
}
