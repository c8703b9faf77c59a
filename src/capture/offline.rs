//! `-r file.pcap`: the same analysis over a capture file, whoever wrote it.
//!
//! No BPF here: every frame is decoded, so damaged packets are counted (a BPF program would
//! silently reject them), and --port/--host are applied to the decoded segments. Segments a
//! live capture's filter would have dropped (data) change no flow: the tracker ignores them.

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use super::model::CaptureReport;
use super::pcapng::{self, PcapngReader};
use super::pipeline::{ts_us, Pipeline};
use super::source::{open_file, CaptureError};

/// Reads the whole file. A file damaged part way (a capture killed mid-write, a partial copy,
/// a packet libpcap refuses) is analysed up to the damage, and the report is marked partial
/// with the error (`stats.read_error`); errors before anything could be read are `Err`.
pub fn read_file(
    path: &Path,
    port: Option<u16>,
    host: Option<IpAddr>,
    max_flows: usize,
) -> Result<CaptureReport, CaptureError> {
    let open_err = |msg: String| CaptureError::OpenFile {
        path: path.to_path_buf(),
        msg,
    };
    // Sniffed only in regular files: a pipe's first bytes, once read, are gone for libpcap.
    let mut magic = [0u8; 4];
    let is_ng = std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == pcapng::MAGIC;
    if is_ng {
        let file = File::open(path).map_err(|e| open_err(e.to_string()))?;
        let reader =
            PcapngReader::new(BufReader::with_capacity(1 << 20, file)).map_err(open_err)?;
        return Ok(read_pcapng(path, reader, port, host, max_flows));
    }
    // Classic pcap (any byte order, micro- or nanosecond): libpcap.
    let mut cap = open_file(path)?;
    let mut pipe = Pipeline::new(cap.datalink(), max_flows);
    pipe.restrict(port, host);
    loop {
        match cap.next_packet() {
            Ok(Some(p)) => {
                let t = ts_us(&p.header.ts);
                pipe.frame(t, p.data);
            }
            Ok(None) => break,
            Err(e) => {
                pipe.read_error(stopped(path, pipe.frames(), &e.to_string()));
                break;
            }
        }
    }
    Ok(pipe.finish(None))
}

fn stopped(path: &Path, frames: u64, e: &str) -> String {
    format!("{}: stopped after {frames} packets: {e}", path.display())
}

/// pcapng through sockscope's own reader: each packet decoded with its interface's link type.
fn read_pcapng(
    path: &Path,
    mut reader: PcapngReader<impl Read>,
    port: Option<u16>,
    host: Option<IpAddr>,
    max_flows: usize,
) -> CaptureReport {
    let mut pipe = Pipeline::new(0, max_flows);
    pipe.restrict(port, host);
    loop {
        match reader.next_packet() {
            // Frames of a link type sockscope does not decode count as undecoded.
            Ok(Some(p)) => {
                pipe.frame_of(p.linktype, p.ts_us, &p.data);
            }
            Ok(None) => break,
            Err(e) => {
                pipe.read_error(stopped(path, pipe.frames(), &e));
                break;
            }
        }
    }
    pipe.finish(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::model::Outcome;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/pcap")
            .join(name)
    }

    /// The lo capture made by `sockscope capture -w` in the live test: 5 held open, 3 closed,
    /// 4 refused (2 over IPv6), 2 unanswered, 1 reset.
    #[test]
    fn live_fixture_outcomes_are_exact() {
        let r = read_file(&fixture("lo-en10mb.pcap"), None, None, 1000).unwrap();
        assert!(!r.stats.partial);
        let count = |o: Outcome| r.flows.iter().filter(|f| f.outcome == o).count();
        assert_eq!(count(Outcome::Established), 5);
        assert_eq!(count(Outcome::Closed), 3);
        assert_eq!(count(Outcome::Refused), 4);
        assert_eq!(count(Outcome::Unanswered), 2);
        assert_eq!(count(Outcome::Reset), 1);
        assert_eq!(count(Outcome::Open), 0);
        assert_eq!(r.stats.undecoded, 0);
        // --port keeps only that port's flows.
        let r = read_file(&fixture("lo-en10mb.pcap"), Some(9002), None, 1000).unwrap();
        assert_eq!(r.flows.len(), 4);
        let r = read_file(
            &fixture("lo-en10mb.pcap"),
            None,
            Some("::1".parse().unwrap()),
            1000,
        )
        .unwrap();
        assert_eq!(r.flows.len(), 2);
    }

    #[test]
    fn a_tiny_flow_table_evicts_and_counts() {
        let r = read_file(&fixture("lo-en10mb.pcap"), None, None, 2).unwrap();
        assert_eq!(r.summary.iter().map(|d| d.attempts).sum::<u64>(), 15);
        assert_eq!(r.flows.len(), 2);
        assert_eq!(r.stats.flows_omitted, 13);
        assert!(r.stats.evicted > 0);
    }

    #[test]
    fn broken_files_are_errors_or_warnings() {
        assert!(matches!(
            read_file(&fixture("broken-bad-magic.pcap"), None, None, 10),
            Err(CaptureError::OpenFile { .. })
        ));
        assert!(matches!(
            read_file(&fixture("zero-length.pcap"), None, None, 10),
            Err(CaptureError::OpenFile { .. })
        ));
        let r = read_file(&fixture("broken-truncated-file.pcap"), None, None, 10).unwrap();
        assert!(r.stats.partial);
        assert!(r.stats.read_error.unwrap().contains("truncated"));
    }
}
