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
