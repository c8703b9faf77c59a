//! The sock_diag collector: asks the kernel for its TCP/UDP socket tables over netlink
//! (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`) and decodes the answers into [`Socket`]s.
//!
//! TCP over both families is one dump where the kernel allows it: the legacy request type
//! `TCPDIAG_GETSOCK` asks with `AF_UNSPEC`, so the kernel walks its socket tables once instead
//! of once per family. Those tables are host-wide (every namespace's sockets, filtered by
//! namespace), so on a node with many namespaces each walk costs the whole node's sockets.
//!
//! `read_*` does the I/O; `parse_*` is pure and tested on byte fixtures. The crate's types
//! (`netlink-packet-sock-diag`) stay in this file: its fixed-size `tcp_info` parse rejects
//! kernels whose struct is shorter or longer, so attributes are walked here and `tcp_info` is
//! decoded by offset in [`super::tcp_info`].

use std::io;

use netlink_packet_core::Parseable;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{
        ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags, Timer as NlTimer,
    },
    SockDiagMessage,
};

use super::model::{Endpoint, Proto, SockMem, Socket, TcpState, Timer};
use super::tcp_info::parse_tcp_info;
use crate::host::Host;

pub(crate) const NLMSG_HDR_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The legacy TCP request (`struct inet_diag_req`): dumps IPv4 and IPv6 in one walk; its
/// answers carry this type instead of [`SOCK_DIAG_BY_FAMILY`].
pub(crate) const TCPDIAG_GETSOCK: u16 = 18;
/// `struct inet_diag_req`: family, src_len, dst_len, ext, the 48-byte socket id, states, dbs.
const INET_DIAG_REQ_LEN: usize = 60;
/// [`DumpRequest::family`] for TCP over IPv4 and IPv6 in one dump.
pub const BOTH_FAMILIES: u8 = 0;
const INET_DIAG_MSG_LEN: usize = 72;
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_SKMEMINFO: u16 = 7;
/// A u8: IPV6_V6ONLY of an AF_INET6 socket (sent with every IPv6 socket but TIME_WAIT ones).
const INET_DIAG_SKV6ONLY: u16 = 11;
const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// What one dump asks the kernel for. The kernel filters protocol, family and states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpRequest {
    pub proto: Proto,
    /// 4, 6, or [`BOTH_FAMILIES`] (TCP only: one `TCPDIAG_GETSOCK` dump).
    pub family: u8,
    /// Bit `1 << state` for each wanted state (see [`TcpState::mask_bit`]).
    pub states: u32,
    /// Ask for `tcp_info` (INET_DIAG_INFO) with each TCP socket.
    pub tcp_info: bool,
    /// Ask for the socket's memory (INET_DIAG_SKMEMINFO).
    pub memory: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Open(#[source] io::Error),
    #[error(
        "the kernel has no sock_diag support for {proto} over {} (module {module} not \
         loaded?); try `modprobe {module}`",
        family_name(*family)
    )]
    NoKernelSupport {
        proto: &'static str,
        family: u8,
        module: &'static str,
    },
    #[error("sock_diag dump of {proto} over {} failed: {source}", family_name(*family))]
    Dump {
        proto: &'static str,
        family: u8,
        source: io::Error,
    },
    #[error("sock_diag answered with a message sockscope cannot decode: {0}")]
    Decode(String),
}

/// "IPv4", "IPv6", or both for a [`BOTH_FAMILIES`] dump.
pub fn family_name(family: u8) -> String {
    match family {
        BOTH_FAMILIES => "IPv4 and IPv6".into(),
        f => format!("IPv{f}"),
    }
}

impl DiagError {
    /// The kernel (or a snapshot recorded before one-walk dumps) refused a [`BOTH_FAMILIES`]
    /// dump before sending any socket: ask per family instead.
    pub fn refused_both(&self) -> bool {
        match self {
            DiagError::NoKernelSupport { family, .. } => *family == BOTH_FAMILIES,
            DiagError::Dump { family, source, .. } => {
                *family == BOTH_FAMILIES
                    && matches!(source.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL))
            }
            _ => false,
        }
    }
}

/// The dumps of one run, through the run's [`crate::host::Host`]: the live kernel, or a
/// recording whose unfiltered dumps are narrowed here to what each request asks for.
pub struct DiagSocket<'h> {
    host: &'h dyn Host,
    seq: u32,
}

impl<'h> DiagSocket<'h> {
    /// Ready to dump in the calling thread's network namespace (the socket itself is opened
    /// by each dump, in the thread that runs it).
    pub fn open(host: &'h dyn Host) -> Result<Self, DiagError> {
        Ok(DiagSocket { host, seq: 0 })
    }

    /// Streams every socket matching `req` to `each`, never holding the table in memory.
    pub fn dump(
        &mut self,
        req: &DumpRequest,
        each: &mut dyn FnMut(Socket),
    ) -> Result<(), DiagError> {
        self.dump_filtered(req, &[], each)
    }

    /// Like [`Self::dump`], with an inet_diag bytecode program (see [`super::bytecode`]) the
    /// kernel runs on each socket; empty means none.
    ///
    /// A recording has no kernel to run a program: it refuses one with EINVAL, as a kernel
    /// that rejects a program does, and the caller filters in user space instead
    /// ([`super::for_each_socket`]). The state mask and the extras are applied here.
    pub fn dump_filtered(
        &mut self,
        req: &DumpRequest,
        bytecode: &[u8],
        each: &mut dyn FnMut(Socket),
    ) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let host = self.host;
        let narrow = host.filters_in_user_space();
        let dump_err = |source: io::Error| DiagError::Dump {
            proto: req.proto.name(),
            family: req.family,
            source,
        };
        if narrow && !bytecode.is_empty() {
            return Err(dump_err(io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let packet = build_request(req, self.seq, bytecode);
        let full = build_request(
            &DumpRequest {
                states: super::all_states_mask(),
                tcp_info: req.proto == Proto::Tcp,
                memory: true,
                ..*req
            },
            self.seq,
            &[],
        );
        let ask = crate::host::DiagAsk {
            proto: req.proto.name(),
            family: req.family,
            packet: &packet,
            seq: self.seq,
            full: &full,
        };
        let mut refused = None;
        let mut keep = |mut s: Socket| {
            if narrow {
                // A per-family question answered from a recorded both-families dump.
                if req.states & s.state.mask_bit() == 0
                    || (req.family != BOTH_FAMILIES && s.family != req.family)
                {
                    return;
                }
                if !req.tcp_info {
                    s.info = None;
                }
                if !req.memory {
                    s.mem = None;
                }
            }
            each(s)
        };
        // A recorded dump holds every socket with every extra: the state and family are read
        // from the message's first bytes before decoding the rest (listeners answered from a
        // 100k-socket recording decoded all of them to keep a few).
        let skip = |payload: &[u8]| -> bool {
            if !narrow || payload.len() < 2 {
                return false;
            }
            let state = TcpState::from_kernel_for(payload[1], req.proto);
            let family = if payload[0] == AF_INET6 { 6 } else { 4 };
            req.states & state.mask_bit() == 0
                || (req.family != BOTH_FAMILIES && family != req.family)
        };
        host.sock_diag(&ask, &mut |buf, seq| {
            let batch = walk_batch(buf, seq, &mut |payload| {
                if !skip(payload) {
                    keep(parse_inet_diag_msg(payload, req.proto)?);
                }
                Ok(())
            })?;
            Ok(match batch {
                Batch::More => false,
                Batch::Done => true,
                Batch::Error(errno) => {
                    refused = Some(errno);
                    true
                }
            })
        })?;
        let Some(errno) = refused else {
            return Ok(());
        };
        if errno == libc::ENOENT || errno == libc::EOPNOTSUPP {
            return Err(DiagError::NoKernelSupport {
                proto: req.proto.name(),
                family: req.family,
                module: match req.proto {
                    Proto::Tcp => "tcp_diag",
                    Proto::Udp => "udp_diag",
                },
            });
        }
        Err(dump_err(io::Error::from_raw_os_error(errno)))
    }
}

fn build_request(req: &DumpRequest, seq: u32, bytecode: &[u8]) -> Vec<u8> {
    let mut buf = if req.family == BOTH_FAMILIES && req.proto == Proto::Tcp {
        build_compat_request(req, seq)
    } else {
        build_by_family_request(req, seq)
    };
    if !bytecode.is_empty() {
        // The crate has no bytecode attribute: append INET_DIAG_REQ_BYTECODE after the
        // request and grow nlmsg_len to cover it. Both request layouts are 4-byte aligned.
        let attr_len = 4 + bytecode.len();
        buf.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        buf.extend_from_slice(bytecode);
        buf.resize(buf.len().next_multiple_of(4), 0);
        let total = buf.len() as u32;
        buf[0..4].copy_from_slice(&total.to_ne_bytes());
    }
    buf
}

/// `TCPDIAG_GETSOCK` with a `struct inet_diag_req` (the crate has no such message): the kernel
/// dumps it as `AF_UNSPEC`, every family in one walk (`inet_diag_dump_compat`).
fn build_compat_request(req: &DumpRequest, seq: u32) -> Vec<u8> {
    let mut ext = 0u8;
    if req.tcp_info {
        ext |= 1 << (INET_DIAG_INFO - 1);
    }
    if req.memory {
        ext |= 1 << (INET_DIAG_SKMEMINFO - 1);
    }
    let len = NLMSG_HDR_LEN + INET_DIAG_REQ_LEN;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    b.extend_from_slice(&[0, 0, 0, ext]); // idiag_family (ignored: AF_UNSPEC), src/dst_len
    b.extend_from_slice(&[0u8; 48]); // id: any socket (cookie 0 is "no cookie")
    b.extend_from_slice(&req.states.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // idiag_dbs
    b
}

fn build_by_family_request(req: &DumpRequest, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let (family, socket_id) = if req.family == 6 {
        (AF_INET6, SocketId::new_v6())
    } else {
        (AF_INET, SocketId::new_v4())
    };
    let mut extensions = ExtensionFlags::empty();
    if req.tcp_info && req.proto == Proto::Tcp {
        extensions |= ExtensionFlags::INFO;
    }
    if req.memory {
        extensions |= ExtensionFlags::SKMEMINFO;
    }
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: match req.proto {
                Proto::Tcp => IPPROTO_TCP,
                Proto::Udp => IPPROTO_UDP,
            },
            extensions,
            states: StateFlags::from_bits_retain(req.states),
            socket_id,
        })),
    );
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// How a received batch of netlink messages ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    More,
    Done,
    /// The kernel answered with an error (a positive errno).
    Error(i32),
}

/// Decodes one datagram of netlink messages, handing each socket to `each`.
pub fn parse_batch(
    buf: &[u8],
    seq: u32,
    req: &DumpRequest,
    each: &mut dyn FnMut(Socket),
) -> Result<Batch, DiagError> {
    walk_batch(buf, seq, &mut |payload| {
        each(parse_inet_diag_msg(payload, req.proto)?);
        Ok(())
    })
}

/// Walks one datagram of sock_diag answers (any family): checks each netlink header, skips
/// messages of other requests, and hands every `SOCK_DIAG_BY_FAMILY` (or, answering a
/// both-families TCP dump, `TCPDIAG_GETSOCK`) payload to `each`.
pub fn walk_batch(
    mut buf: &[u8],
    seq: u32,
    each: &mut dyn FnMut(&[u8]) -> Result<(), DiagError>,
) -> Result<Batch, DiagError> {
    while buf.len() >= NLMSG_HDR_LEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let msg_seq = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if len < NLMSG_HDR_LEN || len > buf.len() {
            return Err(DiagError::Decode(format!(
                "netlink message length {len} with {} bytes left",
                buf.len()
            )));
        }
        let payload = &buf[NLMSG_HDR_LEN..len];
        // Messages from an earlier, abandoned request on this socket are not ours.
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(Batch::Done),
                NLMSG_ERROR => {
                    let code = payload
                        .get(0..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code == 0 {
                        return Ok(Batch::Done);
                    }
                    return Ok(Batch::Error(-code));
                }
                SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => each(payload)?,
                _ => {}
            }
        }
        // Messages are 4-byte aligned.
        let step = (len + 3) & !3;
        if step >= buf.len() {
            break;
        }
        buf = &buf[step..];
    }
    Ok(Batch::More)
}

/// The u32 array of INET_DIAG_SKMEMINFO; it grew over kernel versions (drops came last), so
/// a shorter one leaves the later fields out and a longer one is read as far as known.
pub fn parse_skmeminfo(b: &[u8]) -> Option<SockMem> {
    let v: Vec<u32> = b
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.len() < 8 {
        return None;
    }
    Some(SockMem {
        rmem_alloc: v[0],
        rcvbuf: v[1],
        wmem_alloc: v[2],
        sndbuf: v[3],
        fwd_alloc: v[4],
        wmem_queued: v[5],
        optmem: v[6],
        backlog: v[7],
        drops: v.get(8).copied(),
    })
}

/// Decodes one `inet_diag_msg` and its attributes.
pub fn parse_inet_diag_msg(payload: &[u8], proto: Proto) -> Result<Socket, DiagError> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(DiagError::Decode(format!(
            "inet_diag_msg of {} bytes, expected at least {INET_DIAG_MSG_LEN}",
            payload.len()
        )));
    }
    let h = InetResponseHeader::parse(&payload[..INET_DIAG_MSG_LEN])
        .map_err(|e| DiagError::Decode(e.to_string()))?;
    let family = if h.family == AF_INET6 { 6 } else { 4 };
    let mut info = None;
    let mut mem = None;
    let mut v6only = None;
    let mut attrs = &payload[INET_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let alen = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        // The top bits of the type are flags (nested, byte order).
        let atype = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if alen < 4 || alen > attrs.len() {
            break;
        }
        if atype == INET_DIAG_INFO && proto == Proto::Tcp {
            info = Some(parse_tcp_info(&attrs[4..alen]));
        }
        if atype == INET_DIAG_SKMEMINFO {
            mem = parse_skmeminfo(&attrs[4..alen]);
        }
        if atype == INET_DIAG_SKV6ONLY && alen > 4 {
            v6only = Some(attrs[4] != 0);
        }
        let step = (alen + 3) & !3;
        if step >= attrs.len() {
            break;
        }
        attrs = &attrs[step..];
    }
    let timer = h.timer.map(|t| match t {
        NlTimer::Retransmit(d, n) => Timer::Retransmit {
            expires_ms: d.as_millis() as u64,
            retransmits: n,
        },
        NlTimer::KeepAlive(d) => Timer::Keepalive {
            expires_ms: d.as_millis() as u64,
        },
        // The crate drops a TIME_WAIT socket's expiry; it sits in idiag_expires (offset 52).
        NlTimer::TimeWait => Timer::TimeWait {
            expires_ms: u32::from_ne_bytes([payload[52], payload[53], payload[54], payload[55]])
                as u64,
        },
        NlTimer::Probe(d) => Timer::Probe {
            expires_ms: d.as_millis() as u64,
        },
    });
    Ok(Socket {
        proto,
        family,
        state: TcpState::from_kernel_for(h.state, proto),
        local: Endpoint {
            addr: h.socket_id.source_address,
            port: h.socket_id.source_port,
        },
        peer: Endpoint {
            addr: h.socket_id.destination_address,
            port: h.socket_id.destination_port,
        },
        recv_q: h.recv_queue,
        send_q: h.send_queue,
        uid: h.uid,
        inode: h.inode,
        timer,
        info,
        processes: None,
        mem,
        v6only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// An `inet_diag_msg` as the kernel lays it out, field by field.
    fn diag_msg(
        family: u8,
        state: u8,
        timer: u8,
        sport: u16,
        dport: u16,
        src: [u8; 16],
        dst: [u8; 16],
    ) -> Vec<u8> {
        let mut b = vec![
            family, // idiag_family
            state,  // idiag_state
            timer,  // idiag_timer
            2,      // idiag_retrans
        ];
        b.extend_from_slice(&sport.to_be_bytes()); // id.idiag_sport (network order)
        b.extend_from_slice(&dport.to_be_bytes()); // id.idiag_dport
        b.extend_from_slice(&src); // id.idiag_src
        b.extend_from_slice(&dst); // id.idiag_dst
        b.extend_from_slice(&0u32.to_ne_bytes()); // id.idiag_if
        b.extend_from_slice(&[0xff; 8]); // id.idiag_cookie
        b.extend_from_slice(&1500u32.to_ne_bytes()); // idiag_expires (ms)
        b.extend_from_slice(&5u32.to_ne_bytes()); // idiag_rqueue
        b.extend_from_slice(&4u32.to_ne_bytes()); // idiag_wqueue
        b.extend_from_slice(&1000u32.to_ne_bytes()); // idiag_uid
        b.extend_from_slice(&4242u32.to_ne_bytes()); // idiag_inode
        assert_eq!(b.len(), INET_DIAG_MSG_LEN);
        b
    }

    fn nlmsg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDR_LEN + payload.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut r = [0u8; 16];
        r[..4].copy_from_slice(&a);
        r
    }

    const REQ: DumpRequest = DumpRequest {
        proto: Proto::Tcp,
        family: 4,
        states: u32::MAX,
        tcp_info: false,
        memory: false,
    };

    #[test]
    fn decodes_a_v4_listener_header() {
        let m = diag_msg(2, 10, 0, 8080, 0, v4([127, 0, 0, 1]), v4([0, 0, 0, 0]));
        let s = parse_inet_diag_msg(&m, Proto::Tcp).unwrap();
        assert_eq!(s.family, 4);
        assert_eq!(s.state, TcpState::Listening);
        assert_eq!(s.local.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s.local.port, 8080);
        assert_eq!(s.peer.port, 0);
        assert_eq!((s.recv_q, s.send_q, s.uid, s.inode), (5, 4, 1000, 4242));
        assert_eq!(s.timer, None);
        assert_eq!(s.info, None);
    }

    #[test]
    fn decodes_v6_timer_and_tcp_info_attribute() {
        let mut m = diag_msg(
            10,
            1,
            1,
            443,
            51000,
            Ipv6Addr::LOCALHOST.octets(),
            Ipv6Addr::LOCALHOST.octets(),
        );
        // INET_DIAG_INFO attribute: 4-byte header + a 104-byte (old-kernel) tcp_info.
        let mut info = vec![0u8; 104];
        info[68..72].copy_from_slice(&777u32.to_ne_bytes()); // tcpi_rtt
        m.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        m.extend_from_slice(&info);
        let s = parse_inet_diag_msg(&m, Proto::Tcp).unwrap();
        assert_eq!(s.family, 6);
        assert_eq!(s.state, TcpState::Established);
        assert_eq!(s.peer.port, 51000);
        assert_eq!(
            s.timer,
            Some(Timer::Retransmit {
                expires_ms: 1500,
                retransmits: 2
            })
        );
        assert_eq!(s.v6only, None);
        let info = s.info.unwrap();
        assert_eq!(info.rtt_us, Some(777));
        assert_eq!(info.min_rtt_us, None);
    }

    #[test]
    fn decodes_v6only_of_a_dual_stack_listener() {
        let base = diag_msg(10, 10, 0, 6300, 0, [0; 16], [0; 16]);
        for (byte, want) in [(0u8, false), (1, true)] {
            let mut m = base.clone();
            // INET_DIAG_SKV6ONLY: 4-byte header + one byte, padded to 8.
            m.extend_from_slice(&5u16.to_ne_bytes());
            m.extend_from_slice(&INET_DIAG_SKV6ONLY.to_ne_bytes());
            m.extend_from_slice(&[byte, 0, 0, 0]);
            let s = parse_inet_diag_msg(&m, Proto::Tcp).unwrap();
            assert_eq!(s.v6only, Some(want));
            assert_eq!(s.local.port, 6300);
        }
        // An IPv4 socket carries no such attribute.
        let m = diag_msg(2, 10, 0, 80, 0, v4([0; 4]), v4([0; 4]));
        assert_eq!(parse_inet_diag_msg(&m, Proto::Tcp).unwrap().v6only, None);
    }

    #[test]
    fn batch_streams_sockets_then_done() {
        let mut batch = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            7,
            &diag_msg(2, 6, 3, 40000, 80, v4([10, 0, 0, 1]), v4([10, 0, 0, 2])),
        );
        batch.extend(nlmsg(
            SOCK_DIAG_BY_FAMILY,
            7,
            &diag_msg(2, 1, 0, 40001, 80, v4([10, 0, 0, 1]), v4([10, 0, 0, 2])),
        ));
        // A stale message from another request is skipped.
        batch.extend(nlmsg(
            SOCK_DIAG_BY_FAMILY,
            6,
            &diag_msg(2, 1, 0, 1, 1, v4([1, 1, 1, 1]), v4([1, 1, 1, 1])),
        ));
        batch.extend(nlmsg(NLMSG_DONE, 7, &0i32.to_ne_bytes()));
        let mut got = Vec::new();
        let r = parse_batch(&batch, 7, &REQ, &mut |s| got.push(s)).unwrap();
        assert_eq!(r, Batch::Done);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].state, TcpState::TimeWait);
        assert!(matches!(got[0].timer, Some(Timer::TimeWait { .. })));
        assert_eq!(got[1].local.port, 40001);
    }

    /// A both-families dump (`TCPDIAG_GETSOCK`) answers with messages of its own type, IPv4
    /// and IPv6 mixed: each is decoded with its own family.
    #[test]
    fn batch_decodes_both_families_answers_of_the_legacy_type() {
        let mut batch = nlmsg(
            TCPDIAG_GETSOCK,
            3,
            &diag_msg(2, 10, 0, 8080, 0, v4([127, 0, 0, 1]), v4([0; 4])),
        );
        let mapped: std::net::Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
        let mut v6 = diag_msg(10, 1, 0, 8080, 40000, mapped.octets(), mapped.octets());
        v6.extend_from_slice(&5u16.to_ne_bytes());
        v6.extend_from_slice(&INET_DIAG_SKV6ONLY.to_ne_bytes());
        v6.extend_from_slice(&[0, 0, 0, 0]);
        batch.extend(nlmsg(TCPDIAG_GETSOCK, 3, &v6));
        batch.extend(nlmsg(NLMSG_DONE, 3, &0i32.to_ne_bytes()));
        let both = DumpRequest {
            family: BOTH_FAMILIES,
            ..REQ
        };
        let mut got = Vec::new();
        let r = parse_batch(&batch, 3, &both, &mut |s| got.push(s)).unwrap();
        assert_eq!(r, Batch::Done);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].family, got[0].state), (4, TcpState::Listening));
        assert_eq!((got[1].family, got[1].state), (6, TcpState::Established));
        assert_eq!(got[1].local.addr, IpAddr::V6(mapped));
        assert_eq!(got[1].v6only, Some(false));
    }

    /// The both-families request is a `struct inet_diag_req` under type 18, with the extras
    /// in idiag_ext, the state mask after the socket id, and a bytecode attribute after it.
    #[test]
    fn both_families_request_is_the_legacy_layout() {
        let req = DumpRequest {
            proto: Proto::Tcp,
            family: BOTH_FAMILIES,
            states: TcpState::TimeWait.mask_bit() | TcpState::Listening.mask_bit(),
            tcp_info: true,
            memory: true,
        };
        let b = build_request(&req, 5, &[]);
        assert_eq!(b.len(), NLMSG_HDR_LEN + INET_DIAG_REQ_LEN);
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), TCPDIAG_GETSOCK);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 5);
        let p = &b[NLMSG_HDR_LEN..];
        assert_eq!(p[0], 0); // AF_UNSPEC
        assert_eq!(
            p[3],
            1 << (INET_DIAG_INFO - 1) | 1 << (INET_DIAG_SKMEMINFO - 1)
        );
        assert!(p[4..52].iter().all(|&x| x == 0), "any socket id");
        assert_eq!(u32::from_ne_bytes([p[52], p[53], p[54], p[55]]), req.states);
        let with = build_request(&req, 5, &[1, 2, 3, 4]);
        assert_eq!(with.len(), b.len() + 8);
        assert_eq!(u32::from_ne_bytes([with[0], with[1], with[2], with[3]]), 84);
        assert_eq!(
            u16::from_ne_bytes([with[78], with[79]]),
            INET_DIAG_REQ_BYTECODE
        );
        // UDP has no legacy request: one family per dump, whatever is asked.
        let udp = build_request(
            &DumpRequest {
                proto: Proto::Udp,
                family: 4,
                ..req
            },
            5,
            &[],
        );
        assert_eq!(u16::from_ne_bytes([udp[4], udp[5]]), SOCK_DIAG_BY_FAMILY);
    }

    #[test]
    fn batch_reports_kernel_errors() {
        let batch = nlmsg(NLMSG_ERROR, 1, &(-libc::ENOENT).to_ne_bytes());
        let r = parse_batch(&batch, 1, &REQ, &mut |_| {}).unwrap();
        assert_eq!(r, Batch::Error(libc::ENOENT));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let m = nlmsg(
            SOCK_DIAG_BY_FAMILY,
            1,
            &diag_msg(2, 1, 0, 1, 2, v4([1, 2, 3, 4]), v4([5, 6, 7, 8])),
        );
        assert!(parse_batch(&m[..40], 1, &REQ, &mut |_| {}).is_err());
        assert!(parse_inet_diag_msg(&[0u8; 10], Proto::Tcp).is_err());
        // A partial header at the end is ignored.
        assert_eq!(
            parse_batch(&[0u8; 8], 1, &REQ, &mut |_| {}).unwrap(),
            Batch::More
        );
    }

    #[test]
    fn skmeminfo_of_any_kernel_length() {
        let words = |n: u32| -> Vec<u8> { (1..=n).flat_map(|i| (i * 100).to_ne_bytes()).collect() };
        assert_eq!(parse_skmeminfo(&words(7)), None);
        let m = parse_skmeminfo(&words(8)).unwrap();
        assert_eq!(
            (m.rmem_alloc, m.rcvbuf, m.backlog, m.drops),
            (100, 200, 800, None)
        );
        let m = parse_skmeminfo(&words(10)).unwrap();
        assert_eq!((m.sndbuf, m.drops), (400, Some(900)));
    }

    #[test]
    fn request_carries_the_state_mask_and_info_flag() {
        let req = DumpRequest {
            proto: Proto::Tcp,
            family: 6,
            states: TcpState::TimeWait.mask_bit(),
            tcp_info: true,
            memory: false,
        };
        let b = build_request(&req, 9, &[]);
        assert_eq!(b.len(), NLMSG_HDR_LEN + 56);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), SOCK_DIAG_BY_FAMILY);
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 9);
        let p = &b[NLMSG_HDR_LEN..];
        assert_eq!(p[0], AF_INET6); // sdiag_family
        assert_eq!(p[1], IPPROTO_TCP); // sdiag_protocol
        assert_eq!(p[2], 1 << (INET_DIAG_INFO - 1)); // idiag_ext
        assert_eq!(u32::from_ne_bytes([p[4], p[5], p[6], p[7]]), 1 << 6); // idiag_states
                                                                          // Memory asked for too: its bit joins INFO's.
        let b = build_request(
            &DumpRequest {
                memory: true,
                ..req
            },
            9,
            &[],
        );
        assert_eq!(
            b[NLMSG_HDR_LEN + 2],
            1 << (INET_DIAG_INFO - 1) | 1 << (INET_DIAG_SKMEMINFO - 1)
        );
    }
}
