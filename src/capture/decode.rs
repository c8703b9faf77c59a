//! Link-layer frame → [`Segment`]: strip the link header for the link types libpcap hands us,
//! then let `etherparse` read IPv4/IPv6 (options, extension headers, VLAN tags) and TCP.
//! Pure and total: every input, however broken, gives a segment or an error, never a panic.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice,
};

use super::model::{Segment, TcpFlags};

/// libpcap DLT_* values (what `pcap_datalink` returns, also for files).
pub mod link {
    pub const NULL: i32 = 0;
    pub const EN10MB: i32 = 1;
    /// DLT_RAW is 12 on Linux, 14 on OpenBSD; 101 is LINKTYPE_RAW as stored in files.
    pub const RAW: [i32; 3] = [12, 14, 101];
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// Why a frame gave no TCP segment. Counted, never fatal: a capture file may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("link type {0} is not supported")]
    UnsupportedLink(i32),
    #[error("frame shorter than its link-layer header")]
    ShortLink,
    #[error("not an IP packet")]
    NotIp,
    #[error("not TCP (or a non-first fragment)")]
    NotTcp,
    #[error("IP or TCP header cut short or malformed")]
    Malformed,
}

/// Whether sockscope can decode frames of this link type.
pub fn supported_link(linktype: i32) -> bool {
    matches!(
        linktype,
        link::NULL
            | link::EN10MB
            | link::LOOP
            | link::LINUX_SLL
            | link::IPV4
            | link::IPV6
            | link::LINUX_SLL2
    ) || link::RAW.contains(&linktype)
}

/// Decodes one captured frame of link type `linktype` taken at `ts_us`.
pub fn decode(linktype: i32, ts_us: u64, frame: &[u8]) -> Result<Segment, DecodeError> {
    if let Some(seg) = plain_ip(linktype, frame).and_then(|ip| fast_tcp(ip, ts_us)) {
        return Ok(seg);
    }
    decode_full(linktype, ts_us, frame)
}

/// The general path: etherparse's lax walk through VLAN tags, IPv6 extension headers,
/// fragments and truncation. [`decode`] gives the same answer, faster for plain packets.
pub fn decode_full(linktype: i32, ts_us: u64, frame: &[u8]) -> Result<Segment, DecodeError> {
    let packet = decode_link(linktype, frame)?;
    segment_of(&packet, ts_us)
}

/// The IP packet of a frame whose link header says plainly "IPv4/IPv6 follows".
fn plain_ip(linktype: i32, frame: &[u8]) -> Option<&[u8]> {
    let proto_at = |at: usize| frame.get(at..at + 2).map(|p| [p[0], p[1]]);
    let ip_proto = |p: [u8; 2]| p == [0x08, 0x00] || p == [0x86, 0xdd];
    match linktype {
        link::EN10MB if ip_proto(proto_at(12)?) => frame.get(14..),
        link::LINUX_SLL if ip_proto(proto_at(14)?) => frame.get(16..),
        link::LINUX_SLL2 if ip_proto(proto_at(0)?) => frame.get(20..),
        link::NULL | link::LOOP => frame.get(4..),
        link::IPV4 | link::IPV6 => Some(frame),
        l if link::RAW.contains(&l) => Some(frame),
        _ => None,
    }
}

/// The common case at tens of thousands of packets a second: an unfragmented TCP segment
/// right behind an IPv4 header (options allowed) or a bare IPv6 header. One header-slice
/// parse and the TCP header read in place instead of the full walk; None sends the frame
/// down [`decode_full`].
fn fast_tcp(ip: &[u8], ts_us: u64) -> Option<Segment> {
    let (src, dst, ident, tcp_bytes): (IpAddr, IpAddr, u32, &[u8]) = match ip.first()? >> 4 {
        4 => {
            let h = Ipv4HeaderSlice::from_slice(ip).ok()?;
            if h.protocol() != IpNumber::TCP || h.is_fragmenting_payload() {
                return None;
            }
            let start = h.slice().len();
            let end = usize::from(h.total_len()).min(ip.len());
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                u32::from(h.identification()),
                ip.get(start..end)?,
            )
        }
        6 => {
            let h = Ipv6HeaderSlice::from_slice(ip).ok()?;
            if h.next_header() != IpNumber::TCP {
                return None;
            }
            let end = (40 + usize::from(h.payload_length())).min(ip.len());
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                h.flow_label().value(),
                ip.get(40..end)?,
            )
        }
        _ => return None,
    };
    segment(ts_us, src, dst, ident, tcp_bytes)
}

/// A segment from the TCP bytes of a packet (header and captured payload). The fixed
/// 20-byte header is enough: when the snap length cut the options, the segment is still
/// decoded (ports, numbers, flags), marked `cut`, with no payload. None when even the fixed
/// header is missing or its data offset is impossible.
fn segment(ts_us: u64, src: IpAddr, dst: IpAddr, ident: u32, tcp: &[u8]) -> Option<Segment> {
    let fixed: &[u8; 20] = tcp.get(..20)?.try_into().ok()?;
    let header_len = usize::from(fixed[12] >> 4) * 4;
    if header_len < 20 {
        return None;
    }
    let cut = tcp.len() < header_len;
    let header_end = header_len.min(tcp.len());
    let be16 = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    // Byte 13 of the TCP header holds CWR ECE URG ACK PSH RST SYN FIN.
    let flags = TcpFlags(fixed[13]);
    Some(Segment {
        ts_us,
        src: SocketAddr::new(src, be16(0)),
        dst: SocketAddr::new(dst, be16(2)),
        flags,
        seq: be32(4),
        ack: be32(8),
        payload_len: (tcp.len() - header_end) as u32,
        // Only SYNs need one (duplicate detection), so other segments skip the hash.
        fingerprint: if flags.syn() {
            fingerprint(ident, &tcp[12..header_end])
        } else {
            0
        },
        cut,
    })
}

/// FxHash of the IP identity and the TCP header bytes from the data offset on.
fn fingerprint(ident: u32, header_tail: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = super::tracker::FxHasher::default();
    h.write_u32(ident);
    h.write(header_tail);
    h.finish() | 1
}

fn decode_link(linktype: i32, frame: &[u8]) -> Result<LaxSlicedPacket<'_>, DecodeError> {
    match linktype {
        link::EN10MB => LaxSlicedPacket::from_ethernet(frame).map_err(|_| DecodeError::ShortLink),
        // Linux "cooked" headers (`-i any`): skip to the payload, the IP version nibble says
        // which IP it is. SLL: 16 bytes, protocol at 14. SLL2: 20 bytes, protocol at 0.
        link::LINUX_SLL => ip_after(frame, 16, 14),
        link::LINUX_SLL2 => ip_after(frame, 20, 0),
        // BSD loopback: a 4-byte address family (host order for NULL, network order for
        // LOOP) whose values differ between systems; the IP header itself says the version.
        link::NULL | link::LOOP => {
            let ip = frame.get(4..).ok_or(DecodeError::ShortLink)?;
            from_ip(ip)
        }
        link::IPV4 | link::IPV6 => from_ip(frame),
        l if link::RAW.contains(&l) => from_ip(frame),
        other => Err(DecodeError::UnsupportedLink(other)),
    }
}

fn ip_after(
    frame: &[u8],
    header: usize,
    proto_at: usize,
) -> Result<LaxSlicedPacket<'_>, DecodeError> {
    let proto = frame
        .get(proto_at..proto_at + 2)
        .ok_or(DecodeError::ShortLink)?;
    let ip = frame.get(header..).ok_or(DecodeError::ShortLink)?;
    match u16::from_be_bytes([proto[0], proto[1]]) {
        0x0800 | 0x86dd => from_ip(ip),
        _ => Err(DecodeError::NotIp),
    }
}

fn from_ip(ip: &[u8]) -> Result<LaxSlicedPacket<'_>, DecodeError> {
    LaxSlicedPacket::from_ip(ip).map_err(|_| DecodeError::Malformed)
}

fn segment_of(p: &LaxSlicedPacket<'_>, ts_us: u64) -> Result<Segment, DecodeError> {
    let (src, dst, ident, payload): (IpAddr, IpAddr, u32, _) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            u32::from(v4.header().identification()),
            v4.payload(),
        ),
        Some(LaxNetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.header().flow_label().value(),
            v6.payload(),
        ),
        _ => return Err(DecodeError::NotIp),
    };
    match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            segment(ts_us, src, dst, ident, tcp.slice()).ok_or(DecodeError::Malformed)
        }
        Some(_) => Err(DecodeError::NotTcp),
        // The IP layer parsed but TCP did not: another protocol, a later fragment, or a TCP
        // header cut short by the snap length or a broken file. A cut header whose fixed 20
        // bytes are there still gives a segment.
        None if payload.ip_number == IpNumber::TCP && !payload.fragmented => {
            segment(ts_us, src, dst, ident, payload.payload).ok_or(DecodeError::Malformed)
        }
        None => Err(if p.stop_err.is_some() {
            DecodeError::Malformed
        } else {
            DecodeError::NotTcp
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 127.0.0.1:40000 → 127.0.0.1:80 SYN, seq 1, as a bare IPv4 packet (20 + 20 bytes).
    pub fn ipv4_syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, // version/IHL, TOS, total length 40
            0, 1, 0x40, 0, // id, DF
            64, 6, 0, 0, // TTL, protocol TCP, checksum (not checked)
            127, 0, 0, 1, // source
            127, 0, 0, 1, // destination
        ];
        p.extend_from_slice(&[
            0x9c, 0x40, 0, 80, // ports 40000 → 80
            0, 0, 0, 1, // seq
            0, 0, 0, 0, // ack
            0x50, 0x02, 0xff, 0xff, // data offset 5, SYN, window
            0, 0, 0, 0, // checksum, urgent
        ]);
        p
    }

    #[test]
    fn raw_ipv4_syn() {
        let s = decode(12, 7, &ipv4_syn()).unwrap();
        assert_eq!(s.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.1:80".parse().unwrap());
        assert!(s.flags.syn() && !s.flags.ack());
        assert_eq!((s.seq, s.ts_us, s.payload_len), (1, 7, 0));
    }

    #[test]
    fn every_link_header_is_stripped() {
        let ip = ipv4_syn();
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        let mut null = 2u32.to_ne_bytes().to_vec();
        null.extend_from_slice(&ip);
        for (lt, frame) in [
            (link::EN10MB, &eth),
            (link::LINUX_SLL, &sll),
            (link::LINUX_SLL2, &sll2),
            (link::NULL, &null),
            (link::LOOP, &null),
            (link::IPV4, &ip),
            (101, &ip),
        ] {
            let s = decode(lt, 0, frame).unwrap_or_else(|e| panic!("link {lt}: {e}"));
            assert_eq!(s.dst.port(), 80, "link {lt}");
        }
    }

    #[test]
    fn broken_frames_are_errors_not_panics() {
        let ip = ipv4_syn();
        assert_eq!(decode(12, 0, &[]), Err(DecodeError::Malformed));
        assert_eq!(decode(1, 0, &[0; 5]), Err(DecodeError::ShortLink));
        assert_eq!(decode(113, 0, &[0; 15]), Err(DecodeError::ShortLink));
        assert_eq!(decode(147, 0, &ip), Err(DecodeError::UnsupportedLink(147)));
        // TCP header cut at 30 of its 20+20 bytes.
        assert!(decode(12, 0, &ip[..30]).is_err());
        // Every prefix of a valid packet, on every link type, decodes or errs.
        for lt in [0, 1, 12, 108, 113, 228, 229, 276] {
            for n in 0..ip.len() {
                let _ = decode(lt, 0, &ip[..n]);
            }
        }
        assert!(supported_link(1) && supported_link(276) && !supported_link(147));
    }

    /// The fast path and the full walk agree on every prefix of a packet with IPv4 options,
    /// a data payload, and on IPv6.
    #[test]
    fn fast_path_agrees_with_the_full_walk() {
        let mut with_opts = ipv4_syn();
        with_opts[0] = 0x46;
        with_opts[3] = 48;
        with_opts.splice(20..20, [1, 1, 1, 0]);
        with_opts.extend_from_slice(b"data");
        let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        v6.extend_from_slice(&[0; 15]);
        v6.push(1);
        v6.extend_from_slice(&[0; 15]);
        v6.push(1);
        v6.extend_from_slice(&ipv4_syn()[20..]);
        for p in [ipv4_syn(), with_opts, v6] {
            for n in 0..=p.len() {
                assert_eq!(
                    decode(12, 5, &p[..n]).ok(),
                    decode_full(12, 5, &p[..n]).ok(),
                    "{n}"
                );
            }
            assert!(decode(12, 5, &p).is_ok());
        }
    }

    /// Issue 9, item 13: a SYN whose options the snap length cut still decodes.
    #[test]
    fn a_syn_with_its_options_cut_decodes_from_the_fixed_header() {
        let mut p = ipv4_syn();
        p[3] = 60; // total length: 20 IP + 40 TCP
        p[32] = 0xa0; // data offset 10: 20 bytes of options
        p.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        let whole = decode(12, 0, &p).unwrap();
        assert!(!whole.cut);
        for n in 40..p.len() {
            for s in [decode(12, 0, &p[..n]), decode_full(12, 0, &p[..n])] {
                let s = s.unwrap_or_else(|e| panic!("{n}: {e}"));
                assert!(s.cut && s.flags.syn(), "{n}");
                assert_eq!((s.dst.port(), s.seq, s.payload_len), (80, 1, 0));
            }
        }
        // Copies fingerprint alike; a retransmission (new IP ID) does not.
        let mut again = p.clone();
        again[5] = 2;
        assert_eq!(decode(12, 0, &p).unwrap().fingerprint, whole.fingerprint);
        assert_ne!(
            decode(12, 0, &again).unwrap().fingerprint,
            whole.fingerprint
        );
    }
}
