//! The JSON contract: every subcommand's `--json` (and each `--jsonl` line) validates against
//! its file in `schemas/`, the schema files are valid JSON Schema, and no subcommand with
//! `--json` lacks one. Live parts run the commands against a small population in a private
//! namespace; the rest reads fixtures (pcap files, fake /proc trees) and needs no root.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;

use clap::CommandFactory;
use serde_json::Value;

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, run, Netns};

/// Where the schemas say they live (`$id`); resolved to `schemas/` in the repository.
const BASE: &str = "https://sockscope.invalid/schemas/";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn load(file: &str) -> Value {
    let path = dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `$ref`s between schema files are answered from the repository, never the network.
struct Files;

impl jsonschema::Retrieve for Files {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .strip_prefix(BASE)
            .ok_or_else(|| format!("not a sockscope schema: {}", uri.as_str()))?;
        Ok(load(name))
    }
}

/// A validator for `schemas/<name>.schema.json`, or for one of its `$defs` (the `--jsonl`
/// records), with formats (ipv4/ipv6 addresses) asserted.
fn validator(name: &str, def: Option<&str>) -> jsonschema::Validator {
    let schema = match def {
        None => load(&format!("{name}.schema.json")),
        Some(d) => serde_json::json!({"$ref": format!("{BASE}{name}.schema.json#/$defs/{d}")}),
    };
    jsonschema::options()
        .with_retriever(Files)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name} {def:?}: {e}"))
}

fn check_value(v: &jsonschema::Validator, what: &str, doc: &Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

/// Runs sockscope (exit 0 or `code`), validates stdout as one document against the schema.
fn check_doc(name: &str, args: &[&str]) -> Value {
    check_doc_code(name, args, 0)
}

fn check_doc_code(name: &str, args: &[&str], want: i32) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, want, "sockscope {args:?}: {err}");
    let doc: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}\n{out}"));
    check_value(&validator(name, None), &format!("{args:?}"), &doc);
    doc
}

/// Runs sockscope with `--jsonl` in `args`; every line validates against `def` (or the whole
/// schema when the report is one line). Returns the lines.
fn check_lines(name: &str, def: Option<&str>, args: &[&str], want: i32) -> Vec<Value> {
    let (code, out, err) = run(args);
    assert_eq!(code, want, "sockscope {args:?}: {err}");
    let v = validator(name, def);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}\n{l}")))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        check_value(&v, &format!("{args:?} line {}", i + 1), line);
    }
    lines
}

fn schema_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_schema_file_is_valid_json_schema_with_its_own_id() {
    let names = schema_files();
    assert!(names.len() > 10, "{names:?}");
    for name in &names {
        let schema = load(name);
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{name} is not a valid JSON Schema: {e}");
        }
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(schema["$id"], format!("{BASE}{name}"), "{name}");
        // Compiles, with every `$ref` resolved.
        validator(name.trim_end_matches(".schema.json"), None);
    }
}

#[test]
fn every_subcommand_with_json_has_a_schema_file() {
    let cli = sockscope::cli::Cli::command();
    let with_json: BTreeSet<String> = cli
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_id() == "json"))
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(with_json.contains("sockets"), "{with_json:?}");
    let files: BTreeSet<String> = schema_files()
        .iter()
        .map(|n| n.trim_end_matches(".schema.json").to_string())
        .collect();
    let missing: Vec<&String> = with_json.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "no schemas/NAME.schema.json for {missing:?}"
    );
}

/// The schemas are not vacuous: the rules of the contract reject what the issue found.
#[test]
fn schemas_reject_the_old_shapes() {
    let capture = validator("capture", Some("flow"));
    let mut flow = serde_json::json!({
        "client": {"addr": "127.0.0.1", "port": 40000}, "server": {"addr": "127.0.0.1", "port": 80},
        "outcome": "established", "syn_attempts": 1, "syn_times_us": [0], "start_us": 0,
        "last_us": 10, "handshake_rtt_us": 5, "connect_us": 7, "ack_rtt_us": null,
        "synack_not_captured": false, "challenge_acks": 0, "reset_by": null, "closed_by": null,
        "evicted": false
    });
    assert!(capture.is_valid(&flow));
    // An address as a "host:port" string.
    flow["client"] = "127.0.0.1:40000".into();
    assert!(!capture.is_valid(&flow));
    flow["client"] = serde_json::json!({"addr": "127.0.0.1:1", "port": 1});
    assert!(!capture.is_valid(&flow));
    flow["client"] = serde_json::json!({"addr": "127.0.0.1", "port": 40000});
    // A duration in milliseconds, a float duration.
    flow["handshake_rtt_ms"] = 5.into();
    assert!(!capture.is_valid(&flow));
    flow.as_object_mut().unwrap().remove("handshake_rtt_ms");
    flow["handshake_rtt_us"] = 5.5.into();
    assert!(!capture.is_valid(&flow));
    // States in another spelling.
    let states = validator("common", Some("state_counts"));
    let mut counts = counts_json().as_object().unwrap().clone();
    assert!(states.is_valid(&Value::Object(counts.clone())));
    counts.insert("time_wait".into(), 1.into());
    assert!(!states.is_valid(&Value::Object(counts.clone())));
    counts.remove("time_wait");
    counts["established"] = 1.5.into();
    assert!(!states.is_valid(&Value::Object(counts)));
    // A watch's time in float seconds (as `fds --watch` wrote it before).
    let line = validator("fds", Some("line"));
    let mut summary = serde_json::json!({
        "schema_version": 1, "type": "summary", "samples": 2, "elapsed_us": 200_000,
        "interrupted": false, "growing": []
    });
    assert!(line.is_valid(&summary));
    summary.as_object_mut().unwrap().remove("elapsed_us");
    summary["elapsed_s"] = 0.2.into();
    assert!(!line.is_valid(&summary));
    // A --by process row naming no process, or a no-owner row naming one.
    let place = validator("states", Some("place"));
    let mut row = serde_json::json!({
        "netns": [{"inode": 4026532000u64, "host": false}], "owner": "process",
        "process": {"pid": 7, "name": "app"}, "total": 0, "states": counts_json(),
        "top_peers": [], "top_time_wait": [], "ephemeral": null
    });
    assert!(place.is_valid(&row));
    row["owner"] = "none".into();
    assert!(!place.is_valid(&row));
    row.as_object_mut().unwrap().remove("process");
    assert!(place.is_valid(&row));
    row["owner"] = "process".into();
    assert!(!place.is_valid(&row));
    // A sample's change as a count (it can go down).
    let sample = validator("states", Some("sample"));
    let mut delta = counts_json();
    delta["time-wait"] = (-3).into();
    let mut line = serde_json::json!({
        "schema_version": 1, "type": "sample", "t_us": 1, "interval_us": 1, "total": 0,
        "states": counts_json(), "delta": delta, "rate": counts_json(), "places": []
    });
    assert!(sample.is_valid(&line));
    line["states"]["time-wait"] = (-3).into();
    assert!(!sample.is_valid(&line));
    // A process without its name.
    let process = validator("common", Some("process"));
    assert!(process.is_valid(&serde_json::json!({"pid": 1, "name": "init"})));
    assert!(!process.is_valid(&serde_json::json!({"pid": 1})));
    assert!(!process.is_valid(&serde_json::json!({"pid": 1, "comm": "init"})));
}

/// Every TCP state at zero, as `states` writes them.
fn counts_json() -> Value {
    [
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
    ]
    .iter()
    .map(|s| (s.to_string(), Value::from(0)))
    .collect::<serde_json::Map<_, _>>()
    .into()
}

/// The first `n` lines of a `--watch`, which SIGTERM then ends (exit 0).
fn watch_lines(args: &[&str], n: usize) -> Vec<Value> {
    use std::io::BufRead;
    let mut child = support::sockscope()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "{args:?} ended early"
        );
        lines.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{args:?}: {e}\n{line}")));
    }
    // SAFETY: a signal to the child this test started, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0), "{args:?}");
    lines
}

// Without root: the commands that read files, symptoms or arithmetic.

#[test]
fn explain_and_pool_match_their_schemas() {
    for id in [
        "refused",
        "timed-out",
        "reset",
        "emfile",
        "enfile",
        "time-wait",
        "accept-queue",
        "recv-q",
        "unreachable",
        "close-wait",
        "udp-drops",
        "addr-in-use",
    ] {
        let doc = check_doc("explain", &["explain", id, "--json"]);
        assert_eq!(doc["id"], id);
        check_lines("explain", None, &["explain", id, "--jsonl"], 0);
    }
    check_doc(
        "pool",
        &["pool", "--qps", "2000", "--latency", "50ms", "--json"],
    );
    let doc = check_doc(
        "pool",
        &[
            "pool",
            "--qps",
            "2000",
            "--latency",
            "50ms",
            "--rtt",
            "2ms",
            "--json",
        ],
    );
    assert!(doc["setup"].is_object(), "{doc}");
    check_lines(
        "pool",
        None,
        &["pool", "--qps", "2000", "--latency", "50ms", "--jsonl"],
        0,
    );
}

/// Every readable fixture, both as one document and as `--jsonl` lines (flows, then the
/// summary); damaged files still print a report, marked partial (exit 2).
#[test]
fn capture_of_every_fixture_matches_its_schema() {
    let pcaps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcap");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&pcaps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut flows = 0;
    for f in &files {
        let path = f.to_str().unwrap();
        let name = f.file_name().unwrap().to_string_lossy();
        let (code, out, _) = run(&["capture", "-r", path, "--json"]);
        if code == 2 && out.is_empty() {
            // Not a capture file at all: a one-line error, no report.
            continue;
        }
        let doc = check_doc_code("capture", &["capture", "-r", path, "--json"], code);
        // A damaged file still gives its report, marked partial, and exit 2.
        assert!(code == 0 || code == 2, "{name}: exit {code}");
        assert_eq!(doc["stats"]["partial"], code == 2, "{name}: {doc}");
        check_doc_code(
            "capture",
            &["capture", "-r", path, "--json", "--pretty"],
            code,
        );
        let lines = check_lines(
            "capture",
            Some("line"),
            &["capture", "-r", path, "--jsonl"],
            code,
        );
        let last = lines.last().expect("a summary line");
        assert_eq!(last["type"], "summary", "{name}");
        assert_eq!(
            lines.len() - 1,
            doc["flows"].as_array().unwrap().len(),
            "{name}: one line per flow"
        );
        flows += lines.len() - 1;
    }
    assert!(flows > 10, "the fixtures hold flows: {flows}");
}

#[test]
fn fds_of_a_fake_proc_tree_match_their_schema() {
    let root = format!("{}/fixtures/proc/hostile", env!("CARGO_MANIFEST_DIR"));
    check_doc("fds", &["fds", "--proc-root", &root, "--json"]);
    let doc = check_doc(
        "fds",
        &["fds", "--proc-root", &root, "--all", "--kinds", "--json"],
    );
    assert!(doc["processes"][0]["kinds"].is_object(), "{doc}");
    check_lines("fds", None, &["fds", "--proc-root", &root, "--jsonl"], 0);
    let doc = check_doc(
        "fds",
        &["fds", "--proc-root", &root, "--by", "container", "--json"],
    );
    assert!(doc["containers"].is_array(), "{doc}");
}

#[test]
fn host_wide_reports_match_their_schemas() {
    // Readable by anyone: /proc/net/sockstat, /proc/net/snmp, netstat.
    check_doc("summary", &["summary", "--json"]);
    check_lines("summary", None, &["summary", "--jsonl"], 0);
    check_doc("counters", &["counters", "--absolute", "--json"]);
    check_doc("counters", &["counters", "--absolute", "--all", "--json"]);
}

// With root: the live commands against a known population.

/// Listeners on IPv4, IPv6 and UDP, established pairs, TIME_WAIT and a UNIX pair.
struct Population {
    ns: Netns,
    _keep: Vec<Box<dyn Send>>,
}

fn population() -> Population {
    let ns = Netns::new();
    let keep = ns.within(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l4 = listen("127.0.0.1:8001", 16);
        let l6 = listen("[::1]:8002", 4);
        let udp = UdpSocket::bind("127.0.0.1:5353").unwrap();
        for _ in 0..3 {
            let c = TcpStream::connect("127.0.0.1:8001").unwrap();
            let (s, _) = l4.accept().unwrap();
            keep.push(Box::new(c));
            keep.push(Box::new(s));
        }
        make_time_wait(&l4, 2);
        // Queued, never accepted.
        keep.push(Box::new(TcpStream::connect("[::1]:8002").unwrap()));
        keep.push(Box::new(std::os::unix::net::UnixStream::pair().unwrap()));
        keep.push(Box::new(l4));
        keep.push(Box::new(l6));
        keep.push(Box::new(udp));
        keep
    });
    wait_for_state(&ns, "time-wait", 2);
    Population { ns, _keep: keep }
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_listings_match_their_schemas() {
    if !support::require_root("live_listings_match_their_schemas") {
        return;
    }
    let p = population();
    let ns = p.ns.name.as_str();
    // First, while the TIME_WAIT sockets last (60 s; this test runs the binary many times).
    let doc = check_doc("states", &["states", "--netns", ns, "--json"]);
    assert_eq!(doc["states"]["time-wait"], 2, "{doc}");
    let doc = check_doc("sockets", &["sockets", "--netns", ns, "--json"]);
    assert!(doc["sockets"].as_array().unwrap().len() >= 10, "{doc}");
    for flags in [
        &["-p", "-i", "-m", "-e"][..],
        &["-a"],
        &["-x", "-p"],
        &["-u"],
    ] {
        let mut args = vec!["sockets", "--netns", ns, "--json"];
        args.extend_from_slice(flags);
        check_doc("sockets", &args);
        args[3] = "--jsonl";
        check_lines("sockets", Some("record"), &args, 0);
    }
    let doc = check_doc("listeners", &["listeners", "--netns", ns, "--json"]);
    assert_eq!(doc["listeners"].as_array().unwrap().len(), 3, "{doc}");
    check_lines(
        "listeners",
        Some("record"),
        &["listeners", "--netns", ns, "--jsonl"],
        0,
    );
    check_lines("states", None, &["states", "--netns", ns, "--jsonl"], 0);
    // The node report, and the listings under --all-netns (netns, containers, owners).
    for by in ["netns", "container", "process"] {
        check_doc("states", &["states", "--all-netns", "--by", by, "--json"]);
    }
    let doc = check_doc(
        "states",
        &["states", "--by", "process", "--netns", ns, "--json"],
    );
    assert!(
        doc["places"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["owner"] == "none"),
        "{doc}"
    );
    // --watch: two samples (the first without a change), then SIGTERM.
    for args in [
        &["states", "--netns", ns, "--jsonl", "--watch", "50ms"][..],
        &[
            "states", "--by", "process", "--netns", ns, "--json", "--watch", "50ms",
        ],
    ] {
        let lines = watch_lines(args, 2);
        let v = validator("states", Some("sample"));
        for (i, line) in lines.iter().enumerate() {
            check_value(&v, &format!("{args:?} line {}", i + 1), line);
            check_value(&validator("states", None), &format!("{args:?}"), line);
        }
        assert!(lines[0]["delta"].is_null() && lines[1]["delta"].is_object());
    }
    check_doc("sockets", &["sockets", "--all-netns", "-p", "--json"]);
    check_doc("listeners", &["listeners", "--all-netns", "--json"]);
    check_doc("summary", &["summary", "--netns", ns, "--states", "--json"]);
    check_doc(
        "counters",
        &["counters", "--netns", ns, "--interval", "100ms", "--json"],
    );
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_diagnoses_and_fds_match_their_schemas() {
    if !support::require_root("live_diagnoses_and_fds_match_their_schemas") {
        return;
    }
    let p = population();
    let ns = p.ns.name.as_str();
    // The queued connection on [::1]:8002 is no finding at 1/4; a probe of a closed port is.
    let (code, _, _) = run(&["doctor", "--netns", ns, "--interval", "0", "--json"]);
    check_doc_code(
        "doctor",
        &["doctor", "--netns", ns, "--interval", "0", "--json"],
        code,
    );
    let doc = check_doc_code(
        "doctor",
        &["doctor", "--netns", ns, "127.0.0.1:9", "--json"],
        1,
    );
    assert_eq!(doc["probe"]["outcome"], "refused", "{doc}");
    let doc = check_doc_code(
        "doctor",
        &[
            "doctor",
            "--netns",
            ns,
            "127.0.0.1:9",
            "--capture",
            "--json",
        ],
        1,
    );
    assert_eq!(doc["capture"]["outcome"], "refused", "{doc}");
    let doc = check_doc_code(
        "doctor",
        &["doctor", "--netns", ns, "127.0.0.1:8001", "--json"],
        code,
    );
    assert_eq!(doc["probe"]["outcome"], "connected", "{doc}");
    check_lines(
        "doctor",
        None,
        &["doctor", "--netns", ns, "127.0.0.1:9", "--jsonl"],
        1,
    );

    let me = std::process::id().to_string();
    check_doc("fds", &["fds", "--pid", &me, "--kinds", "--json"]);
    check_doc("fds", &["fds", "--all-netns", "--json"]);
    check_doc(
        "fds",
        &["fds", "--all-netns", "--by", "container", "--json"],
    );
    let watch = [
        "fds",
        "--watch",
        "--interval",
        "100ms",
        "--count",
        "2",
        "--pid",
        &me,
        "--kinds",
    ];
    let mut args = watch.to_vec();
    args.push("--json");
    let doc = check_doc("fds", &args);
    assert_eq!(doc["samples"].as_array().unwrap().len(), 2, "{doc}");
    args.pop();
    args.push("--jsonl");
    let lines = check_lines("fds", Some("line"), &args, 0);
    let kinds: Vec<&Value> = lines.iter().map(|l| &l["type"]).collect();
    assert_eq!(kinds, ["sample", "sample", "summary"], "{lines:?}");
}

/// A live capture of a refused connect, as a document and as lines.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn live_capture_matches_its_schema() {
    if !support::require_root("live_capture_matches_its_schema") {
        return;
    }
    let ns = Netns::new();
    for (flag, def) in [("--json", None), ("--jsonl", Some("line"))] {
        let mut child = support::sockscope()
            .args(["capture", "--netns", &ns.name, "-i", "lo", "-c", "2", flag])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The banner on stderr says the capture is open.
        let mut err = child.stderr.take().unwrap();
        let mut first = [0u8; 1];
        err.read_exact(&mut first).unwrap();
        ns.within(|| {
            let e = TcpStream::connect("127.0.0.1:9").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        });
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "capture {flag} failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let v = validator("capture", def);
        let docs: Vec<Value> = match def {
            None => vec![serde_json::from_str(&text).unwrap()],
            Some(_) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        for d in &docs {
            check_value(&v, &format!("capture {flag}"), d);
        }
        let flows = match def {
            None => docs[0]["flows"].clone(),
            Some(_) => Value::Array(docs[..docs.len() - 1].to_vec()),
        };
        assert_eq!(flows[0]["outcome"], "refused", "{text}");
    }
}
