//! A minimal pcap reader/writer for the tests: enough to turn one capture into the same
//! packets under other link types, and to build broken files on purpose.

pub const EN10MB: u32 = 1;
pub const NULL: u32 = 0;
pub const RAW: u32 = 101;
pub const LOOP: u32 = 108;
pub const LINUX_SLL: u32 = 113;
pub const IPV4: u32 = 228;
pub const IPV6: u32 = 229;
pub const LINUX_SLL2: u32 = 276;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub sec: u32,
    pub usec: u32,
    /// Original length on the wire.
    pub len: u32,
    pub data: Vec<u8>,
}

/// Reads a little-endian microsecond pcap file (what libpcap writes on x86/arm).
pub fn read(bytes: &[u8]) -> (u32, Vec<Record>) {
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "not a LE pcap");
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let linktype = u32_at(20);
    let mut recs = Vec::new();
    let mut i = 24;
    while i + 16 <= bytes.len() {
        let caplen = u32_at(i + 8) as usize;
        recs.push(Record {
            sec: u32_at(i),
            usec: u32_at(i + 4),
            len: u32_at(i + 12),
            data: bytes[i + 16..i + 16 + caplen].to_vec(),
        });
        i += 16 + caplen;
    }
    (linktype, recs)
}

pub fn write(linktype: u32, recs: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, linktype] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    // The version field is two u16 (2, 4): fix the order written above.
    out[4..8].copy_from_slice(&[2, 0, 4, 0]);
    for r in recs {
        for v in [r.sec, r.usec, r.data.len() as u32, r.len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&r.data);
    }
    out
}

/// The IP packet inside an Ethernet frame (no VLAN on lo).
pub fn ip_of_ethernet(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// Re-frames IP packets under another link type.
pub fn reframe(ip_recs: &[Record], linktype: u32) -> Vec<Record> {
    ip_recs
        .iter()
        .map(|r| {
            let ip = &r.data;
            let v6 = ip.first().map(|b| b >> 4) == Some(6);
            let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
            let mut d = Vec::new();
            match linktype {
                NULL => d.extend_from_slice(&(if v6 { 10u32 } else { 2 }).to_le_bytes()),
                LOOP => d.extend_from_slice(&(if v6 { 10u32 } else { 2 }).to_be_bytes()),
                LINUX_SLL => {
                    // packet type 0 (to us), ARPHRD_LOOPBACK 772, address length 6, address, protocol.
                    d.extend_from_slice(&[0, 0, 0x03, 0x04, 0, 6]);
                    d.extend_from_slice(&[0; 8]);
                    d.extend_from_slice(&ethertype);
                }
                LINUX_SLL2 => {
                    d.extend_from_slice(&ethertype);
                    d.extend_from_slice(&[0, 0]); // reserved
                    d.extend_from_slice(&1u32.to_be_bytes()); // ifindex
                    d.extend_from_slice(&[0x03, 0x04, 0, 6]); // ARPHRD, packet type, addr len
                    d.extend_from_slice(&[0; 8]);
                }
                EN10MB => {
                    d.extend_from_slice(&[0; 12]);
                    d.extend_from_slice(&ethertype);
                }
                RAW | IPV4 | IPV6 => {}
                other => panic!("reframe: link type {other}"),
            }
            let extra = d.len() as u32;
            d.extend_from_slice(ip);
            Record {
                sec: r.sec,
                usec: r.usec,
                len: r.len + extra,
                data: d,
            }
        })
        .collect()
}
