//! `-r file.pcap`: the same analysis over a capture file, whoever wrote it.
//!
//! No BPF here: every frame is decoded, so damaged packets are counted (a BPF program would
//! silently reject them), and --port/--host are applied to the decoded segments. Segments a
//! live capture's filter would have dropped (data) change no flow: the tracker ignores them.

use std::net::IpAddr;
use std::path::Path;

use super::model::CaptureReport;
use super::pipeline::{ts_us, Pipeline};
use super::source::{open_file, CaptureError};

/// Reads the whole file. A file cut short (a capture killed mid-write, a partial copy) is
/// analysed up to the damage; the second value then says where and why.
pub fn read_file(
    path: &Path,
    port: Option<u16>,
    host: Option<IpAddr>,
    max_flows: usize,
) -> Result<(CaptureReport, Option<String>), CaptureError> {
    let mut cap = open_file(path)?;
    let mut pipe = Pipeline::new(cap.get_datalink().0, max_flows);
    pipe.restrict(port, host);
    let mut warning = None;
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let t = ts_us(&p.header.ts);
                pipe.frame(t, p.data);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                warning = Some(format!(
                    "{}: stopped after {} packets: {e}",
                    path.display(),
                    pipe.frames()
                ));
                break;
            }
        }
    }
    Ok((pipe.finish(None), warning))
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
        let (r, warning) = read_file(&fixture("lo-en10mb.pcap"), None, None, 1000).unwrap();
        assert_eq!(warning, None);
        let count = |o: Outcome| r.flows.iter().filter(|f| f.outcome == o).count();
        assert_eq!(count(Outcome::Established), 5);
        assert_eq!(count(Outcome::Closed), 3);
        assert_eq!(count(Outcome::Refused), 4);
        assert_eq!(count(Outcome::Unanswered), 2);
        assert_eq!(count(Outcome::Reset), 1);
        assert_eq!(count(Outcome::Open), 0);
        assert_eq!(r.stats.undecoded, 0);
        // --port keeps only that port's flows.
        let (r, _) = read_file(&fixture("lo-en10mb.pcap"), Some(9002), None, 1000).unwrap();
        assert_eq!(r.flows.len(), 4);
        let (r, _) = read_file(
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
        let (r, _) = read_file(&fixture("lo-en10mb.pcap"), None, None, 2).unwrap();
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
        let (_, w) = read_file(&fixture("broken-truncated-file.pcap"), None, None, 10).unwrap();
        assert!(w.unwrap().contains("truncated"));
    }
}
