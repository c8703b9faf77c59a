//! Decoding `struct tcp_info` (the `INET_DIAG_INFO` attribute) by offset.
//!
//! The struct grows with kernel versions, so a fixed-size parse breaks on older or newer
//! kernels (the trouble netlink-packet-sock-diag's issue 22 describes). Every field is read
//! only if the attribute the kernel sent is long enough to hold it.

use super::model::TcpInfo;

// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h); these never move, new fields are
// only appended.
const RETRANSMITS: usize = 2;
const RTO: usize = 8;
const UNACKED: usize = 24;
const LOST: usize = 32;
const RETRANS: usize = 36;
const LAST_DATA_SENT: usize = 44;
const LAST_DATA_RECV: usize = 52;
const LAST_ACK_RECV: usize = 56;
const RTT: usize = 68;
const RTTVAR: usize = 72;
const SND_CWND: usize = 80;
const TOTAL_RETRANS: usize = 100;
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
const MIN_RTT: usize = 148;

fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_ne_bytes(a)
    })
}

/// Decodes whatever part of `tcp_info` the attribute holds; never fails.
pub fn parse_tcp_info(b: &[u8]) -> TcpInfo {
    TcpInfo {
        rtt_us: u32_at(b, RTT),
        rttvar_us: u32_at(b, RTTVAR),
        min_rtt_us: u32_at(b, MIN_RTT),
        rto_us: u32_at(b, RTO),
        retransmits: u8_at(b, RETRANSMITS),
        retrans: u32_at(b, RETRANS),
        total_retrans: u32_at(b, TOTAL_RETRANS),
        cwnd: u32_at(b, SND_CWND),
        unacked: u32_at(b, UNACKED),
        lost: u32_at(b, LOST),
        last_data_sent_ms: u32_at(b, LAST_DATA_SENT),
        last_data_recv_ms: u32_at(b, LAST_DATA_RECV),
        last_ack_recv_ms: u32_at(b, LAST_ACK_RECV),
        bytes_acked: u64_at(b, BYTES_ACKED),
        bytes_received: u64_at(b, BYTES_RECEIVED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tcp_info image of `len` bytes with recognisable values at the fields we read.
    fn image(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len.max(232)];
        b[RETRANSMITS] = 3;
        let put =
            |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        put(&mut b, RTO, 204_000);
        put(&mut b, UNACKED, 7);
        put(&mut b, LOST, 2);
        put(&mut b, RETRANS, 1);
        put(&mut b, LAST_DATA_SENT, 15);
        put(&mut b, LAST_DATA_RECV, 16);
        put(&mut b, LAST_ACK_RECV, 17);
        put(&mut b, RTT, 1234);
        put(&mut b, RTTVAR, 567);
        put(&mut b, SND_CWND, 10);
        put(&mut b, TOTAL_RETRANS, 42);
        b[BYTES_ACKED..BYTES_ACKED + 8].copy_from_slice(&(5_000_000_000u64).to_ne_bytes());
        b[BYTES_RECEIVED..BYTES_RECEIVED + 8].copy_from_slice(&99u64.to_ne_bytes());
        put(&mut b, MIN_RTT, 800);
        b.truncate(len);
        b
    }

    #[test]
    fn full_struct_decodes_every_field() {
        let i = parse_tcp_info(&image(232));
        assert_eq!(i.retransmits, Some(3));
        assert_eq!(i.rto_us, Some(204_000));
        assert_eq!(i.unacked, Some(7));
        assert_eq!(i.lost, Some(2));
        assert_eq!(i.retrans, Some(1));
        assert_eq!(i.last_data_sent_ms, Some(15));
        assert_eq!(i.last_data_recv_ms, Some(16));
        assert_eq!(i.last_ack_recv_ms, Some(17));
        assert_eq!(i.rtt_us, Some(1234));
        assert_eq!(i.rttvar_us, Some(567));
        assert_eq!(i.cwnd, Some(10));
        assert_eq!(i.total_retrans, Some(42));
        assert_eq!(i.bytes_acked, Some(5_000_000_000));
        assert_eq!(i.bytes_received, Some(99));
        assert_eq!(i.min_rtt_us, Some(800));
    }

    #[test]
    fn old_kernel_short_struct_keeps_what_it_has() {
        // Linux 2.6-era tcp_info ended after total_retrans (104 bytes).
        let i = parse_tcp_info(&image(104));
        assert_eq!(i.rtt_us, Some(1234));
        assert_eq!(i.total_retrans, Some(42));
        assert_eq!(i.bytes_acked, None);
        assert_eq!(i.min_rtt_us, None);
    }

    #[test]
    fn newer_kernel_longer_struct_is_fine() {
        let i = parse_tcp_info(&image(400));
        assert_eq!(i.min_rtt_us, Some(800));
    }

    #[test]
    fn empty_and_tiny_attributes_do_not_panic() {
        assert_eq!(parse_tcp_info(&[]), TcpInfo::default());
        assert_eq!(parse_tcp_info(&[1, 2, 3]).retransmits, Some(3));
    }
}
