//! A pcapng reader of its own, because libpcap refuses valid files whose interfaces differ in
//! snap length or link type ("an interface has a snapshot length … different from …"), which
//! is what `dumpcap -i a -i b` and merged captures produce. Each packet carries its
//! interface's link type and timestamp resolution. Pure over any `Read`; bounded allocation.

use std::io::{self, Read};

/// The first four bytes of every pcapng file (a Section Header Block).
pub const MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OBSOLETE_PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Larger blocks are damage, not packets: libpcap's own ceiling is 16 MiB as well.
const MAX_BLOCK: usize = 16 << 20;
const OPT_TSRESOL: u16 = 9;
const OPT_TSOFFSET: u16 = 14;

/// One packet with what its interface says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgPacket {
    /// LINKTYPE_* of the packet's interface.
    pub linktype: i32,
    /// Microseconds since the epoch (0 for Simple Packet Blocks, which carry no time).
    pub ts_us: u64,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    linktype: i32,
    /// if_tsresol: units are 10^-n (decimal) or 2^-n (binary) seconds. Default 10^-6.
    resol: Resolution,
    /// if_tsoffset: seconds added to every timestamp.
    offset_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn to_us(self, units: u64) -> u64 {
        let units = units as u128;
        let us = match self {
            Resolution::Decimal(n) if n >= 6 => 10u128
                .checked_pow(u32::from(n - 6))
                .map_or(0, |d| units / d),
            Resolution::Decimal(n) => units.saturating_mul(10u128.pow(u32::from(6 - n))),
            Resolution::Binary(n) => match 1u128.checked_shl(u32::from(n)) {
                Some(d) if n < 127 => units.saturating_mul(1_000_000) / d,
                _ => 0,
            },
        };
        u64::try_from(us).unwrap_or(u64::MAX)
    }
}

pub struct PcapngReader<R> {
    r: R,
    big_endian: bool,
    ifaces: Vec<Iface>,
}

impl<R: Read> PcapngReader<R> {
    /// Reads the first Section Header Block. Errors are one-line texts for the user.
    pub fn new(r: R) -> Result<Self, String> {
        let mut reader = PcapngReader {
            r,
            big_endian: false,
            ifaces: Vec::new(),
        };
        match reader.block()? {
            Some((SHB, _)) => Ok(reader),
            _ => Err("not a pcapng file (no section header block)".into()),
        }
    }

    /// The next packet; `Ok(None)` at a clean end of file; an error for damage, after which
    /// the reader is done.
    pub fn next_packet(&mut self) -> Result<Option<NgPacket>, String> {
        loop {
            let Some((kind, body)) = self.block()? else {
                return Ok(None);
            };
            match kind {
                SHB => self.ifaces.clear(),
                IDB => {
                    let iface = self.idb(&body)?;
                    self.ifaces.push(iface);
                }
                EPB | OBSOLETE_PB => return self.packet(kind, &body).map(Some),
                SPB => {
                    if body.len() < 4 {
                        return Err("simple packet block too short".into());
                    }
                    let orig = self.u32_at(&body, 0) as usize;
                    let iface = self.iface(0)?;
                    let data = body[4..].get(..orig).unwrap_or(&body[4..]).to_vec();
                    return Ok(Some(NgPacket {
                        linktype: iface.linktype,
                        ts_us: 0,
                        data,
                    }));
                }
                // Name resolution, statistics, journal, custom blocks: nothing for us.
                _ => {}
            }
        }
    }

    fn u16_at(&self, b: &[u8], i: usize) -> u16 {
        let v = [b[i], b[i + 1]];
        if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    fn u32_at(&self, b: &[u8], i: usize) -> u32 {
        let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn iface(&self, id: u32) -> Result<Iface, String> {
        self.ifaces.get(id as usize).copied().ok_or_else(|| {
            format!("a packet on interface {id}, which no interface description block declared")
        })
    }

    /// Reads one whole block: `Ok(None)` only at end of file before its first byte. A Section
    /// Header Block sets the byte order for what follows.
    fn block(&mut self) -> Result<Option<(u32, Vec<u8>)>, String> {
        let mut head = [0u8; 8];
        match read_full(&mut self.r, &mut head) {
            Ok(0) => return Ok(None),
            Ok(8) => {}
            Ok(n) => return Err(format!("truncated block header ({n} of 8 bytes)")),
            Err(e) => return Err(e.to_string()),
        }
        let kind_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if kind_le == SHB {
            let mut bom = [0u8; 4];
            if read_full(&mut self.r, &mut bom).map_err(|e| e.to_string())? != 4 {
                return Err("truncated section header block".into());
            }
            self.big_endian = match bom {
                b if u32::from_le_bytes(b) == BYTE_ORDER_MAGIC => false,
                b if u32::from_be_bytes(b) == BYTE_ORDER_MAGIC => true,
                _ => return Err("section header block with a bad byte-order magic".into()),
            };
            let len = self.u32_at(&head, 4) as usize;
            let mut body = self.body(len, 4)?;
            body.splice(0..0, bom);
            return Ok(Some((SHB, body)));
        }
        let kind = self.u32_at(&head, 0);
        let len = self.u32_at(&head, 4) as usize;
        Ok(Some((kind, self.body(len, 0)?)))
    }

    /// The rest of a block of total length `len` whose first `already` body bytes were read;
    /// checks the trailing copy of the length.
    fn body(&mut self, len: usize, already: usize) -> Result<Vec<u8>, String> {
        if len < 12 + already || len % 4 != 0 || len > MAX_BLOCK {
            return Err(format!("block with an impossible length {len}"));
        }
        let mut rest = vec![0u8; len - 8 - already];
        let got = read_full(&mut self.r, &mut rest).map_err(|e| e.to_string())?;
        if got < rest.len() {
            return Err(format!(
                "truncated: a block of {len} bytes ends after {} of them",
                got + 8 + already
            ));
        }
        let trailer = self.u32_at(&rest, rest.len() - 4) as usize;
        if trailer != len {
            return Err(format!(
                "block length {len} and its trailer {trailer} disagree"
            ));
        }
        rest.truncate(rest.len() - 4);
        Ok(rest)
    }

    fn idb(&self, body: &[u8]) -> Result<Iface, String> {
        if body.len() < 8 {
            return Err("interface description block too short".into());
        }
        let mut iface = Iface {
            linktype: i32::from(self.u16_at(body, 0)),
            resol: Resolution::Decimal(6),
            offset_s: 0,
        };
        let mut i = 8;
        while i + 4 <= body.len() {
            let code = self.u16_at(body, i);
            let len = self.u16_at(body, i + 2) as usize;
            let Some(value) = body.get(i + 4..i + 4 + len) else {
                return Err("interface option runs past its block".into());
            };
            match (code, value) {
                (0, _) => break,
                (OPT_TSRESOL, [v]) => {
                    iface.resol = if v & 0x80 == 0 {
                        Resolution::Decimal(*v)
                    } else {
                        Resolution::Binary(v & 0x7f)
                    }
                }
                (OPT_TSOFFSET, v) if v.len() == 8 => {
                    let b: [u8; 8] = v.try_into().unwrap_or_default();
                    iface.offset_s = if self.big_endian {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
                _ => {}
            }
            i += 4 + len.div_ceil(4) * 4;
        }
        Ok(iface)
    }

    fn packet(&self, kind: u32, body: &[u8]) -> Result<NgPacket, String> {
        if body.len() < 20 {
            return Err("packet block too short".into());
        }
        let id = if kind == EPB {
            self.u32_at(body, 0)
        } else {
            u32::from(self.u16_at(body, 0))
        };
        let iface = self.iface(id)?;
        let units = (u64::from(self.u32_at(body, 4)) << 32) | u64::from(self.u32_at(body, 8));
        let caplen = self.u32_at(body, 12) as usize;
        let Some(data) = body[20..].get(..caplen) else {
            return Err(format!(
                "a packet of {caplen} captured bytes in a block with room for {}",
                body.len() - 20
            ));
        };
        let us = iface.resol.to_us(units);
        let ts_us = us.saturating_add_signed(iface.offset_s.saturating_mul(1_000_000));
        Ok(NgPacket {
            linktype: iface.linktype,
            ts_us,
            data: data.to_vec(),
        })
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes pcapng (little endian): for tests and fixtures.
pub mod write {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&len.to_le_bytes());
    }

    pub fn section(out: &mut Vec<u8>) {
        let mut b = Vec::new();
        b.extend_from_slice(&super::BYTE_ORDER_MAGIC.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        block(out, super::SHB, &b);
    }

    /// An interface; `tsresol` is the raw if_tsresol byte (None: the default, microseconds).
    pub fn interface(out: &mut Vec<u8>, linktype: u16, snaplen: u32, tsresol: Option<u8>) {
        let mut b = Vec::new();
        b.extend_from_slice(&linktype.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        if let Some(r) = tsresol {
            b.extend_from_slice(&super::OPT_TSRESOL.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[r, 0, 0, 0]);
            b.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        block(out, super::IDB, &b);
    }

    /// An Enhanced Packet Block; `units` in the interface's resolution.
    pub fn packet(out: &mut Vec<u8>, iface: u32, units: u64, orig_len: u32, data: &[u8]) {
        let mut b = Vec::new();
        b.extend_from_slice(&iface.to_le_bytes());
        b.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(units as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.to_le_bytes());
        b.extend_from_slice(data);
        block(out, super::EPB, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> (Vec<NgPacket>, Option<String>) {
        let mut r = PcapngReader::new(bytes).unwrap();
        let mut v = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => v.push(p),
                Ok(None) => return (v, None),
                Err(e) => return (v, Some(e)),
            }
        }
    }

    #[test]
    fn interfaces_keep_their_own_link_type_and_resolution() {
        let mut f = Vec::new();
        write::section(&mut f);
        write::interface(&mut f, 1, 262_144, None);
        write::interface(&mut f, 101, 8192, Some(9)); // nanoseconds
        write::packet(&mut f, 0, 1_700_000_000_000_001, 60, &[1, 2, 3]);
        write::packet(&mut f, 1, 1_700_000_000_000_002_999, 40, &[4; 5]);
        let (p, err) = read_all(&f);
        assert_eq!(err, None);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].linktype, p[0].ts_us, &p[0].data[..]),
            (1, 1_700_000_000_000_001, &[1, 2, 3][..])
        );
        assert_eq!((p[1].linktype, p[1].ts_us), (101, 1_700_000_000_000_002));
        assert_eq!(p[1].data, vec![4; 5]);
        assert_eq!(
            Resolution::Binary(10).to_us(1024 * 3),
            3_000_000,
            "2^-10 s units"
        );
        assert_eq!(Resolution::Decimal(255).to_us(u64::MAX), 0);
        assert_eq!(Resolution::Decimal(0).to_us(u64::MAX), u64::MAX);
    }

    #[test]
    fn damage_is_an_error_after_the_good_packets() {
        let mut f = Vec::new();
        write::section(&mut f);
        write::interface(&mut f, 1, 256, None);
        write::packet(&mut f, 0, 1, 3, &[1, 2, 3]);
        write::packet(&mut f, 0, 2, 3, &[1, 2, 3]);
        let whole = f.len();
        for cut in [whole - 1, whole - 20, whole - 30] {
            let (p, err) = read_all(&f[..cut]);
            assert_eq!(p.len(), 1, "cut at {cut}");
            assert!(err.unwrap().contains("truncated"), "cut at {cut}");
        }
        // A packet on an interface nobody declared.
        let mut g = f.clone();
        write::packet(&mut g, 7, 3, 1, &[0]);
        let (p, err) = read_all(&g);
        assert_eq!(p.len(), 2);
        assert!(err.unwrap().contains("interface 7"));
        // A length field that lies: no huge allocation, an error.
        let mut h = f.clone();
        h.extend_from_slice(&6u32.to_le_bytes());
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        let (_, err) = read_all(&h);
        assert!(err.unwrap().contains("impossible length"));
        // Every prefix reads without a panic.
        for cut in 0..whole {
            if let Ok(mut r) = PcapngReader::new(&f[..cut]) {
                while let Ok(Some(_)) = r.next_packet() {}
            }
        }
    }
}
