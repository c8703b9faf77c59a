//! The one-walk TCP dump (`TCPDIAG_GETSOCK`, both families at once) against the two
//! per-family dumps it replaces, on a known population of IPv4, IPv6 and v4-mapped sockets.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};

use sockscope::sockets::bytecode;
use sockscope::sockets::diag::{DiagSocket, DumpRequest, BOTH_FAMILIES};
use sockscope::sockets::filter::UserFilter;
use sockscope::sockets::model::{Proto, Socket, TcpState};
use sockscope::sockets::{all_states_mask, for_each_socket, Extras};

use crate::sockets::{listen, make_time_wait, wait_for_state};
use crate::support::{self, Netns};

/// A socket by family, 4-tuple and state, with which extras came with it.
type Key = (u8, SocketAddr, SocketAddr, TcpState);
type Extra = (bool, bool, Option<bool>);

fn key(s: &Socket) -> Key {
    (
        s.family,
        SocketAddr::new(s.local.addr, s.local.port),
        SocketAddr::new(s.peer.addr, s.peer.port),
        s.state,
    )
}

/// One dump of the calling thread's namespace, with `tcp_info` and memory asked for.
fn dump(family: u8, program: Option<&[u8]>) -> BTreeMap<Key, Extra> {
    let req = DumpRequest {
        proto: Proto::Tcp,
        family,
        states: all_states_mask(),
        tcp_info: true,
        memory: true,
    };
    let mut got = BTreeMap::new();
    let mut add = |s: Socket| {
        let extra = (s.info.is_some(), s.mem.is_some(), s.v6only);
        assert!(got.insert(key(&s), extra).is_none(), "twice: {s:?}");
    };
    let mut diag = DiagSocket::open(&sockscope::host::LiveHost).unwrap();
    match program {
        None => diag.dump(&req, &mut add),
        Some(p) => diag.dump_filtered(&req, p, &mut add),
    }
    .unwrap_or_else(|e| panic!("dump of family {family}: {e}"));
    got
}

fn union(a: BTreeMap<Key, Extra>, b: BTreeMap<Key, Extra>) -> BTreeMap<Key, Extra> {
    let mut all = a;
    for (k, v) in b {
        assert!(
            all.insert(k, v).is_none(),
            "in both per-family dumps: {k:?}"
        );
    }
    all
}

#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn one_walk_dump_is_exactly_both_per_family_dumps() {
    if !support::require_root("one_walk_dump_is_exactly_both_per_family_dumps") {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        let l4 = listen("127.0.0.1:7101", 16);
        let l6 = listen("[::1]:7102", 16); // IPV6_V6ONLY set
        let dual = TcpListener::bind("[::]:7103").unwrap(); // dual-stack
        let mut conns = Vec::new();
        for (to, n) in [
            ("127.0.0.1:7101", 3),
            ("[::1]:7102", 2),
            ("127.0.0.1:7103", 2),
        ] {
            for _ in 0..n {
                let c = TcpStream::connect(to).unwrap();
                let server = if to.ends_with("7101") {
                    &l4
                } else if to.ends_with("7102") {
                    &l6
                } else {
                    &dual
                };
                conns.push((c, server.accept().unwrap().0));
            }
        }
        make_time_wait(&l4, 4);
        make_time_wait(&l6, 3);
        (l4, l6, dual, conns)
    });
    wait_for_state(&ns, "time-wait", 7);
    wait_for_state(&ns, "last-ack", 0);
    wait_for_state(&ns, "fin-wait-2", 0);

    let (both, v4, v6, filtered) = ns.within(|| {
        let both = dump(BOTH_FAMILIES, None);
        let (v4, v6) = (dump(4, None), dump(6, None));
        // Kernel bytecode through the legacy request: the dual-stack listener's port, and an
        // IPv4 network, which matches v4-mapped IPv6 sockets too.
        let mut filtered = Vec::new();
        for user in [
            UserFilter {
                sport: Some(7103),
                ..Default::default()
            },
            UserFilter {
                src: Some("127.0.0.0/8".parse().unwrap()),
                ..Default::default()
            },
        ] {
            let p = bytecode::compile(&user).unwrap();
            filtered.push((
                dump(BOTH_FAMILIES, Some(&p)),
                dump(4, Some(&p)),
                dump(6, Some(&p)),
            ));
        }
        (both, v4, v6, filtered)
    });
    let count = |m: &BTreeMap<Key, Extra>, f: u8, st: TcpState| {
        m.keys().filter(|k| k.0 == f && k.3 == st).count()
    };
    // The population, exactly: per family, per state.
    use TcpState::{Established, Listening, TimeWait};
    for (f, st, want) in [
        (4, Listening, 1),
        (6, Listening, 2),
        (4, Established, 6 + 2), // 3 pairs, and 2 clients of the dual-stack listener
        (6, Established, 4 + 2), // 2 pairs, and the 2 v4-mapped accepted sockets
        (4, TimeWait, 4),
        (6, TimeWait, 3),
    ] {
        assert_eq!(count(&both, f, st), want, "IPv{f} {st:?}: {both:#?}");
    }
    assert_eq!(both.len(), 24, "{both:#?}");
    let mapped = both
        .keys()
        .filter(|k| k.0 == 6 && k.1.to_string().starts_with("[::ffff:127.0.0.1]"))
        .count();
    assert_eq!(mapped, 2, "v4-mapped accepted sockets: {both:#?}");
    assert_eq!(v4.len(), 13);
    assert_eq!(v6.len(), 11);
    // Same sockets, and the same extras came with each: tcp_info and memory (not for
    // TIME_WAIT), V6ONLY for every IPv6 socket but TIME_WAIT ones.
    assert_eq!(both, union(v4, v6));
    let v6only: BTreeMap<u16, Option<bool>> = both
        .iter()
        .filter(|(k, _)| k.3 == Listening && k.0 == 6)
        .map(|(k, e)| (k.1.port(), e.2))
        .collect();
    assert_eq!(v6only, [(7102, Some(true)), (7103, Some(false))].into());
    assert!(both.iter().all(|(k, e)| (e.0 && e.1) == (k.3 != TimeWait)));
    let [(port, p4, p6), (src, s4, s6)] = <[_; 2]>::try_from(filtered).unwrap();
    // sport 7103: the dual-stack listener and its two accepted (v4-mapped) sockets.
    assert_eq!(port.len(), 3, "{port:#?}");
    assert_eq!(port, union(p4, p6));
    // 127.0.0.0/8: every IPv4 socket and the two v4-mapped ones.
    assert_eq!(src.len(), 13 + 2, "{src:#?}");
    assert_eq!(src, union(s4, s6));

    // The collector the commands use asks for both families in one dump and gets the same.
    let mut listed = ns.within(|| {
        let mut v = Vec::new();
        for_each_socket(
            &sockscope::host::LiveHost,
            &sockscope::sockets::filter::Selection::every_tcp(),
            Extras::default(),
            &mut |s| v.push(key(&s)),
        )
        .unwrap();
        v
    });
    listed.sort();
    assert_eq!(listed, both.keys().cloned().collect::<Vec<_>>());
    drop(keep);
}

/// Replays of a snapshot recorded by sockscope before TCP was dumped in one walk (its dumps
/// are per family: `tcp/4`, `tcp/6`) print what that sockscope printed from it. The fixture
/// was recorded by the per-family build (`snapshot --netns` of a namespace holding IPv4, IPv6,
/// v4-mapped and TIME_WAIT sockets) and pruned to the socket tables and sysctls; the expected
/// outputs are that build's replays.
#[test]
fn snapshots_recorded_per_family_still_replay() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-per-family");
    let from = dir.join("snapshot.tar.zst");
    let from = from.to_str().unwrap();
    for (args, file) in [
        (&["states", "--json"][..], "states.json"),
        (&["states"][..], "states.txt"),
        (&["sockets", "-i", "-m", "-e", "--json"][..], "sockets.json"),
        (&["sockets", "-6", "--json"][..], "sockets-6.json"),
        (
            &["sockets", "--json", "sport = :7202"][..],
            "sockets-7202.json",
        ),
    ] {
        let mut line = args.to_vec();
        line.extend(["--from", from]);
        let (code, out, err) = support::run(&line);
        assert_eq!(code, 0, "{args:?}: {err}");
        let want = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(out, want, "{args:?} replayed differently");
    }
    let states: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("states.json")).unwrap()).unwrap();
    assert_eq!(
        (&states["total"], &states["states"]["time-wait"]),
        (&10.into(), &2.into()),
        "{states:#}"
    );
}

/// A snapshot recorded now holds one both-families TCP dump per namespace; asked for one
/// family, a replay keeps that family's sockets only.
#[test]
#[ignore = "needs root: private network namespaces (run `bash scripts/test`)"]
fn one_family_replays_from_a_both_families_snapshot() {
    if !support::require_root("one_family_replays_from_a_both_families_snapshot") {
        return;
    }
    let ns = Netns::new();
    let keep = ns.within(|| {
        let l4 = listen("127.0.0.1:7301", 16);
        let l6 = listen("[::1]:7302", 16);
        let pairs: Vec<_> = [
            ("127.0.0.1:7301", &l4),
            ("[::1]:7302", &l6),
            ("[::1]:7302", &l6),
        ]
        .into_iter()
        .map(|(to, l)| (TcpStream::connect(to).unwrap(), l.accept().unwrap().0))
        .collect();
        (l4, l6, pairs)
    });
    let dir = std::env::temp_dir().join(format!("ssc-onewalk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let snap = dir.join("ns.tar.zst");
    let (code, _, err) = support::run(&["snapshot", "--netns", &ns.name, snap.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (_, tape) = sockscope::host::archive::read_archive(&snap).unwrap();
    let tcp: Vec<&String> = tape.dumps.keys().filter(|k| k.contains("/tcp/")).collect();
    assert!(
        !tcp.is_empty() && tcp.iter().all(|k| k.ends_with("/tcp/0")),
        "one both-families TCP dump: {tcp:?}"
    );
    let from = snap.to_str().unwrap();
    for (flag, want) in [("-4", 3), ("-6", 5), ("-t", 8)] {
        let mut line = vec!["sockets", "-t", "--json", "--from", from];
        if flag != "-t" {
            line.push(flag);
        }
        let v = crate::sockets::run_list(&line);
        let families: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["family"].as_u64().unwrap())
            .collect();
        assert_eq!(families.len(), want, "{flag}: {v:#}");
        match flag {
            "-4" => assert!(families.iter().all(|&f| f == 4), "{v:#}"),
            "-6" => assert!(families.iter().all(|&f| f == 6), "{v:#}"),
            _ => {}
        }
    }
    drop(keep);
    let _ = std::fs::remove_dir_all(&dir);
}
