//! The BPF filter libpcap compiles into the kernel, so packets a handshake diagnosis does not
//! need are dropped before they are copied to user space.
//!
//! What passes: every segment with SYN, RST or FIN, plus pure ACKs (ACK flag, no payload).
//! WHY pure ACKs: the ACK that completes a handshake carries no data on Linux and on every
//! common stack, but a BPF program cannot tell it from other pure ACKs (it would need the
//! SYN-ACK's sequence number, which is state). Taking every ACK would copy all data traffic;
//! taking none would lose the SYN-ACK→ACK time and the proof that a handshake completed.
//! Pure ACKs are a fraction of a busy link (none for the data segments themselves, about one
//! per two segments received in bulk transfers), which keeps a busy link cheap.
//! Data segments are not needed to decide a handshake whose completing ACK carried data (TCP
//! Fast Open, or a lost pure ACK): the tracker accepts any later ACK of the SYN-ACK, a
//! server segment past its SYN, or a FIN as proof, and those pass; only `ack_rtt_us` is then
//! unknown, which it reports as null rather than timing a later packet.
//!
//! IPv6: libpcap's `tcp[…]` accessor does not work over IPv6, so the IPv6 half uses fixed
//! offsets (`ip6[40+13]` is the TCP flag byte when TCP follows the fixed 40-byte header
//! directly). IPv6 packets whose TCP header sits behind extension headers are rare: every IPv6
//! packet whose first next-header is not TCP, UDP or ICMPv6 is passed and user space sorts
//! them out; with --port, libpcap's `tcp port` looks only behind the fixed header, so those
//! rare packets are then not captured. (`ip6 protochain 6` would be exact, but it compiles to a loop, which the kernel's
//! BPF verifier rejects: libpcap then filters in user space, copying every packet.)

use std::net::IpAddr;

/// The filter for a capture: the handshake filter, or with `full` (`--full`) every TCP
/// segment, for a `-w` file that keeps the conversations whole.
pub fn capture_filter(full: bool, port: Option<u16>, host: Option<IpAddr>) -> String {
    if !full {
        return bpf_filter(port, host);
    }
    let mut f = "tcp".to_string();
    restrict(&mut f, port, host);
    f
}

fn restrict(f: &mut String, port: Option<u16>, host: Option<IpAddr>) {
    if let Some(p) = port {
        f.push_str(&format!(" and tcp port {p}"));
    }
    if let Some(h) = host {
        f.push_str(&format!(" and host {h}"));
    }
}

/// The filter expression for the given `--port` / `--host` restrictions.
pub fn bpf_filter(port: Option<u16>, host: Option<IpAddr>) -> String {
    let v4 = "(tcp[tcpflags] & (tcp-syn|tcp-rst|tcp-fin) != 0 \
              or (tcp[tcpflags] & tcp-ack != 0 \
              and ip[2:2] - ((ip[0] & 0x0f) << 2) - ((tcp[12] & 0xf0) >> 2) == 0))";
    let v6 = "(ip6[6] == 6 and (ip6[53] & 0x07 != 0 \
              or (ip6[53] & 0x10 != 0 and ip6[4:2] - ((ip6[52] & 0xf0) >> 2) == 0)))";
    let v6_ext = "(ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58)";
    let mut f = format!("((ip and {v4}) or (ip6 and ({v6} or {v6_ext})))");
    restrict(&mut f, port, host);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrictions_are_appended() {
        let f = bpf_filter(Some(443), Some("10.0.0.9".parse().unwrap()));
        assert!(f.ends_with(" and tcp port 443 and host 10.0.0.9"), "{f}");
        assert!(bpf_filter(None, None).starts_with("((ip and (tcp[tcpflags]"));
    }

    #[test]
    fn libpcap_compiles_every_variant() {
        let dead = crate::capture::libpcap::Pcap::open_dead(1).unwrap();
        for (port, host) in [
            (None, None),
            (Some(80), None),
            (None, Some("::1".parse().unwrap())),
            (Some(1), Some("127.0.0.1".parse().unwrap())),
        ] {
            for full in [false, true] {
                let f = capture_filter(full, port, host);
                dead.compile(&f, true)
                    .unwrap_or_else(|e| panic!("{f}: {e}"));
            }
        }
    }
}
