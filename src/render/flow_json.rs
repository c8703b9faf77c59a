//! Compact JSON of capture flows, written by hand. A busy capture ends with ~100k flows
//! (~40 MB of JSON); through serde's derive (flattened local ends, every key escaped at run
//! time) writing them was 60% of the CPU a live capture spends after the load, more than the
//! whole of tcpdump's run. Here keys are constant bytes and numbers go through `itoa`. The
//! output is byte for byte serde's (`FlowJson`): the tests check it on generated flows.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use crate::capture::local::{FlowLocal, LocalEnd};
use crate::capture::model::{CaptureReport, Flow, Outcome, Side};
use crate::report::SCHEMA_VERSION;

/// Flushed to the writer when the buffer passes this size.
const CHUNK: usize = 256 * 1024;

/// The compact one-document JSON of a capture (`schema_version` first, as every document):
/// the flows by hand, the small rest through serde.
pub fn write_report(out: &mut dyn Write, r: &CaptureReport) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    buf.extend_from_slice(b"{\"schema_version\":");
    num(&mut buf, u64::from(SCHEMA_VERSION));
    buf.extend_from_slice(b",\"flows\":[");
    let mut w = FlowWriter::default();
    for (i, f) in r.flows.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        w.write(&mut buf, b"", f, r.local.get(i));
        if buf.len() >= CHUNK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"],\"summary\":");
    serde_json::to_writer(&mut buf, &r.summary).map_err(io::Error::from)?;
    buf.extend_from_slice(b",\"verdicts\":");
    serde_json::to_writer(&mut buf, &r.verdicts).map_err(io::Error::from)?;
    buf.extend_from_slice(b",\"stats\":");
    serde_json::to_writer(&mut buf, &r.stats).map_err(io::Error::from)?;
    buf.extend_from_slice(b"}\n");
    out.write_all(&buf)?;
    out.flush()
}

/// One `--jsonl` line per flow: `{"schema_version":1,"type":"flow",…}`.
pub fn write_lines<'a>(
    out: &mut dyn Write,
    flows: impl Iterator<Item = (&'a Flow, Option<&'a FlowLocal>)>,
) -> io::Result<()> {
    let mut head = b"\"schema_version\":".to_vec();
    num(&mut head, u64::from(SCHEMA_VERSION));
    head.extend_from_slice(b",\"type\":\"flow\",");
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    let mut w = FlowWriter::default();
    for (f, local) in flows {
        w.write(&mut buf, &head, f, local);
        buf.push(b'\n');
        if buf.len() >= CHUNK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Writes flows as JSON objects, remembering the text of the last client and server
/// addresses: a capture's flows mostly share them, and an IPv4 address is four numbers to
/// format (two addresses were a third of the numbers of a flow).
#[derive(Default)]
pub struct FlowWriter {
    ips: [Option<(IpAddr, Vec<u8>)>; 2],
}

impl FlowWriter {
    /// One flow; `head` is written right after the `{` (fields that come first, each
    /// followed by a comma).
    pub fn write(&mut self, buf: &mut Vec<u8>, head: &[u8], f: &Flow, local: Option<&FlowLocal>) {
        buf.push(b'{');
        buf.extend_from_slice(head);
        buf.extend_from_slice(b"\"client\":");
        self.endpoint(buf, 0, f.client);
        buf.extend_from_slice(b",\"server\":");
        self.endpoint(buf, 1, f.server);
        buf.extend_from_slice(b",\"outcome\":\"");
        buf.extend_from_slice(outcome(f.outcome).as_bytes());
        buf.extend_from_slice(b"\",\"syn_attempts\":");
        num(buf, u64::from(f.syn_attempts));
        buf.extend_from_slice(b",\"syn_times_us\":[");
        // The first SYN's time is the start time: its text is written once and copied.
        let mut first = None;
        for (i, t) in f.syn_times_us.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let at = buf.len();
            num(buf, t);
            if i == 0 {
                first = Some((t, at..buf.len()));
            }
        }
        buf.extend_from_slice(b"],\"start_us\":");
        match first {
            Some((t, text)) if t == f.start_us => buf.extend_from_within(text),
            _ => num(buf, f.start_us),
        }
        buf.extend_from_slice(b",\"last_us\":");
        num(buf, f.last_us);
        buf.extend_from_slice(b",\"handshake_rtt_us\":");
        opt_num(buf, f.handshake_rtt_us);
        buf.extend_from_slice(b",\"connect_us\":");
        opt_num(buf, f.connect_us);
        buf.extend_from_slice(b",\"ack_rtt_us\":");
        opt_num(buf, f.ack_rtt_us);
        buf.extend_from_slice(b",\"synack_not_captured\":");
        boolean(buf, f.synack_not_captured);
        buf.extend_from_slice(b",\"challenge_acks\":");
        num(buf, u64::from(f.challenge_acks));
        buf.extend_from_slice(b",\"reset_by\":");
        side(buf, f.reset_by);
        buf.extend_from_slice(b",\"closed_by\":");
        side(buf, f.closed_by);
        buf.extend_from_slice(b",\"evicted\":");
        boolean(buf, f.evicted);
        if let Some(l) = local {
            buf.extend_from_slice(b",\"local\":\"");
            buf.extend_from_slice(match l.local {
                LocalEnd::Client => b"client".as_slice(),
                LocalEnd::Server => b"server",
                LocalEnd::Both => b"both",
            });
            buf.push(b'"');
            // Names and containers are text from the host: serde escapes them. Few flows have
            // processes (most ends are gone or in TIME_WAIT by the end).
            if !l.client_processes.is_empty() {
                buf.extend_from_slice(b",\"client_processes\":");
                let _ = serde_json::to_writer(&mut *buf, &l.client_processes);
            }
            if !l.server_processes.is_empty() {
                buf.extend_from_slice(b",\"server_processes\":");
                let _ = serde_json::to_writer(&mut *buf, &l.server_processes);
            }
        }
        buf.push(b'}');
    }

    /// `{"addr":…,"port":…}`; `slot` 0 remembers client addresses, 1 server ones.
    fn endpoint(&mut self, buf: &mut Vec<u8>, slot: usize, a: SocketAddr) {
        buf.extend_from_slice(b"{\"addr\":\"");
        let ip = a.ip();
        match &mut self.ips[slot] {
            Some((last, text)) if *last == ip => buf.extend_from_slice(text),
            cached => {
                let at = buf.len();
                write_ip(buf, ip);
                *cached = Some((ip, buf[at..].to_vec()));
            }
        }
        buf.extend_from_slice(b"\",\"port\":");
        num(buf, u64::from(a.port()));
        buf.push(b'}');
    }
}

fn outcome(o: Outcome) -> &'static str {
    o.name()
}

fn write_ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                num(buf, u64::from(o));
            }
        }
        // Display gives serde's text (RFC 5952); IPv6 is the rarer case.
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
}

fn num(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_num(buf: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => num(buf, n),
        None => buf.extend_from_slice(b"null"),
    }
}

fn boolean(buf: &mut Vec<u8>, b: bool) {
    buf.extend_from_slice(if b { b"true" } else { b"false" });
}

fn side(buf: &mut Vec<u8>, s: Option<Side>) {
    match s {
        Some(s) => {
            buf.push(b'"');
            buf.extend_from_slice(s.name().as_bytes());
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::local::LocalProcess;
    use crate::capture::model::{FlowJson, SynTimes};
    use crate::procs::cgroup::Runtime;
    use crate::procs::container::Container;

    /// A small deterministic generator (xorshift): flows over every field's range.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, of: &[T]) -> T {
            of[(self.next() % of.len() as u64) as usize]
        }
        fn opt(&mut self) -> Option<u64> {
            (self.next() % 3 != 0).then(|| self.pick(&[0, 1, 9, 10, 99_999, u64::MAX]))
        }
        fn addr(&mut self) -> SocketAddr {
            let ip: IpAddr = match self.next() % 4 {
                0 => [0u8, 0, 0, 0].into(),
                1 => [self.next() as u8, 255, 10, self.next() as u8].into(),
                2 => "::1".parse().unwrap(),
                _ => "2001:db8::ffff:10.0.0.1".parse().unwrap(),
            };
            SocketAddr::new(ip, self.pick(&[0, 1, 80, 65535]))
        }
        fn side(&mut self) -> Option<Side> {
            self.pick(&[None, Some(Side::Client), Some(Side::Server)])
        }
        fn procs(&mut self) -> Vec<LocalProcess> {
            (0..self.next() % 3)
                .map(|i| LocalProcess {
                    pid: self.next() as u32,
                    name: if i == 0 {
                        "py\"th\\on\u{1b}[31m"
                    } else {
                        "nginx"
                    }
                    .into(),
                    container: (self.next() % 2 == 0).then(|| Container {
                        runtime: Runtime::Podman,
                        id: "abc".into(),
                        name: Some("web".into()),
                        pod: None,
                        pod_namespace: None,
                    }),
                })
                .collect()
        }
    }

    #[test]
    fn flows_are_byte_for_byte_what_serde_writes() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        // One writer for all: its remembered addresses must never leak into another flow.
        let mut w = FlowWriter::default();
        for _ in 0..2000 {
            let mut times = SynTimes::new(g.next() >> 8);
            for _ in 0..g.next() % 10 {
                let t = times.first() + g.next() % 5_000_000_000;
                times.push(t);
            }
            let f = Flow {
                client: g.addr(),
                server: g.addr(),
                outcome: g.pick(&Outcome::ALL),
                syn_attempts: g.next() as u32,
                syn_times_us: times,
                // The first SYN is the start in real flows; both cases are written.
                start_us: if g.next() % 2 == 0 {
                    times.first()
                } else {
                    g.next()
                },
                last_us: g.next(),
                handshake_rtt_us: g.opt(),
                connect_us: g.opt(),
                ack_rtt_us: g.opt(),
                synack_not_captured: g.next() % 2 == 0,
                challenge_acks: g.next() as u32,
                reset_by: g.side(),
                closed_by: g.side(),
                evicted: g.next() % 2 == 0,
            };
            let local = (g.next() % 2 == 0).then(|| FlowLocal {
                local: g.pick(&[LocalEnd::Client, LocalEnd::Server, LocalEnd::Both]),
                client_processes: g.procs(),
                server_processes: g.procs(),
            });
            let want = serde_json::to_string(&FlowJson {
                flow: &f,
                local: local.as_ref(),
            })
            .unwrap();
            let mut got = Vec::new();
            w.write(&mut got, b"", &f, local.as_ref());
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
    }
}
