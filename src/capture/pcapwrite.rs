//! Writing a classic pcap file (microsecond timestamps, host byte order, as libpcap writes),
//! through a large buffer: one write system call per MiB instead of stdio's per 4 KiB.
//! tcpdump, Wireshark and libpcap read it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::decode::link;

/// File link type (LINKTYPE_*) for a libpcap DLT_* value: the same except DLT_RAW.
pub fn linktype_for_file(dlt: i32) -> u32 {
    if link::RAW.contains(&dlt) {
        101
    } else {
        dlt as u32
    }
}

pub struct PcapWriter {
    out: BufWriter<File>,
}

impl PcapWriter {
    pub fn create(path: &Path, dlt: i32, snaplen: u32) -> io::Result<PcapWriter> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_ne_bytes())?;
        out.write_all(&2u16.to_ne_bytes())?;
        out.write_all(&4u16.to_ne_bytes())?;
        out.write_all(&0i32.to_ne_bytes())?; // thiszone
        out.write_all(&0u32.to_ne_bytes())?; // sigfigs
        out.write_all(&snaplen.to_ne_bytes())?;
        out.write_all(&linktype_for_file(dlt).to_ne_bytes())?;
        Ok(PcapWriter { out })
    }

    /// Appends one record: the whole record is in the buffer before any of it can reach the
    /// file, so a flush never leaves half a record.
    pub fn write(&mut self, sec: u32, usec: u32, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&sec.to_ne_bytes());
        hdr[4..8].copy_from_slice(&usec.to_ne_bytes());
        hdr[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        hdr[12..16].copy_from_slice(&orig_len.to_ne_bytes());
        // BufWriter would write the header alone when only it fits: make room first.
        if self.out.capacity() - self.out.buffer().len() < hdr.len() + data.len() {
            self.out.flush()?;
        }
        self.out.write_all(&hdr)?;
        self.out.write_all(data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpcap_reads_what_we_write() {
        let path =
            std::env::temp_dir().join(format!("sockscope-pcapwrite-{}.pcap", std::process::id()));
        let mut w = PcapWriter::create(&path, 12, 256).unwrap();
        w.write(1_700_000_000, 42, 60, &[0x45; 40]).unwrap();
        w.write(1_700_000_001, 43, 40, &[0x45; 40]).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut cap = crate::capture::libpcap::Pcap::open_offline(&path).unwrap();
        assert_eq!(cap.datalink(), 12);
        let p = cap.next_packet().unwrap().unwrap();
        assert_eq!(
            (p.header.ts.tv_usec, p.header.caplen, p.header.len),
            (42, 40, 60)
        );
        assert!(cap.next_packet().unwrap().is_some());
        assert!(cap.next_packet().unwrap().is_none());
        let _ = std::fs::remove_file(&path);
    }

    /// A reader following the file (`-U`, the once-a-second flush) never sees half a record:
    /// whatever the buffer pushes out on its own ends on a record boundary.
    #[test]
    fn the_file_only_ever_ends_on_a_whole_record() {
        let path = std::env::temp_dir().join(format!(
            "sockscope-pcapwrite-whole-{}.pcap",
            std::process::id()
        ));
        let mut w = PcapWriter::create(&path, 1, 262_144).unwrap();
        let mut boundaries = vec![0u64, 24];
        for i in 0..12u32 {
            let data = vec![0u8; 200_000 + i as usize * 7];
            w.write(i, 0, data.len() as u32, &data).unwrap();
            boundaries.push(boundaries.last().unwrap() + 16 + data.len() as u64);
            let on_disk = std::fs::metadata(&path).unwrap().len();
            assert!(boundaries.contains(&on_disk), "{on_disk} after record {i}");
        }
        drop(w);
        let _ = std::fs::remove_file(&path);
    }
}
