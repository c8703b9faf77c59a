//! A live capture read straight from the kernel's TPACKET_V3 ring, for Ethernet and loopback
//! devices (link type EN10MB, not in immediate mode). libpcap still compiles the filter and
//! opens everything else (`any`, tunnels, the live view's immediate mode).
//!
//! Why by hand: in a profile of `scripts/bench-capture` (10k connections/s on `lo`), libpcap's
//! per-packet loop and the callback into Rust were ~17% of the capture's CPU during the load,
//! more than the flow tracking's biggest part. Reading the ring here is the same walk without
//! the indirection, and the packet handler is inlined into it. It does what libpcap does for
//! these devices, so the packets, the file and the counters are the same: the filter runs in
//! the kernel and cuts packets to the snap length; a loopback device's outgoing copy of each
//! packet is skipped; a VLAN tag the kernel took off is put back; `received` and `dropped`
//! are the socket's `PACKET_STATISTICS`, summed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use libc::{c_int, c_void};

use super::libpcap::{Packet, PacketHeader, Program, Stat};

const SOL_PACKET: c_int = 263;
const PACKET_RX_RING: c_int = 5;
const PACKET_STATISTICS: c_int = 6;
const PACKET_VERSION: c_int = 10;
const TPACKET_V3: c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const PACKET_OUTGOING: u8 = 4;
const ETH_P_ALL: u16 = 0x0003;
const ETH_P_8021Q: u16 = 0x8100;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
/// Where a frame's `sockaddr_ll` starts: right after its header, aligned
/// (`TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`).
const SLL_AT: usize = 48;

/// `struct tpacket_req3`.
#[repr(C)]
struct Req3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct StatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// `struct ifreq` as the two ioctls below use it: the name, then an index or a `sockaddr`.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

/// How the ring is opened.
pub struct RingOptions<'a> {
    pub device: &'a str,
    /// The capture filter, compiled for EN10MB at the snap length (its accept value cuts
    /// packets to it, in the kernel).
    pub filter: &'a Program,
    pub snaplen: u32,
    /// Whole ring, bytes.
    pub buffer_bytes: usize,
    /// A block that holds packets is handed over at the latest after this long.
    pub timeout_ms: u32,
}

/// Why the ring was not opened: `NotForUs` sends the caller to libpcap.
#[derive(Debug)]
pub enum OpenError {
    /// Not an Ethernet or loopback device that is up: libpcap knows the link type, or says
    /// what is wrong in its words.
    NotForUs,
    Io(&'static str, io::Error),
}

pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    block_size: usize,
    blocks: usize,
    /// The block being read, and where in it: the offset of the next packet and how many
    /// packets are left (`None`: the block was not started).
    block: usize,
    at: Option<(usize, u32)>,
    /// Loopback: skip the outgoing copy of each packet, as libpcap does.
    loopback: bool,
    wake: Arc<OwnedFd>,
    nonblocking: bool,
    device: String,
    /// The counters so far (the kernel resets its own at each read).
    received: u32,
    dropped: u32,
    /// A frame with its VLAN tag put back.
    vlan_frame: Vec<u8>,
}

// SAFETY: the mapping belongs to this Ring alone; it is read only through &mut self.
unsafe impl Send for Ring {}

fn last(what: &'static str) -> OpenError {
    OpenError::Io(what, io::Error::last_os_error())
}

fn check(rc: c_int, what: &'static str) -> Result<(), OpenError> {
    if rc < 0 {
        Err(last(what))
    } else {
        Ok(())
    }
}

fn ifreq(fd: &OwnedFd, device: &str, request: libc::c_ulong) -> Result<IfReq, OpenError> {
    let mut r = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    let name = device.as_bytes();
    if name.len() >= r.name.len() {
        return Err(OpenError::NotForUs);
    }
    r.name[..name.len()].copy_from_slice(name);
    // SAFETY: an ifreq-sized buffer for an ioctl that reads the name and fills the rest.
    check(
        unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &mut r) },
        "ask for the device",
    )?;
    Ok(r)
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: c_int,
    name: c_int,
    v: &T,
    what: &'static str,
) -> Result<(), OpenError> {
    // SAFETY: v is a live value of the size passed.
    check(
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                v as *const T as *const c_void,
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        },
        what,
    )
}

impl Ring {
    /// Opens the ring on the calling thread's network namespace's `device`. The filter is
    /// attached before the socket is bound, so no unfiltered packet is ever queued.
    pub fn open(o: &RingOptions) -> Result<Ring, OpenError> {
        // SAFETY: plain system calls; every fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(fd, "open a packet socket")?;
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let hw = ifreq(&fd, o.device, libc::SIOCGIFHWADDR)?;
        let loopback = match u16::from_ne_bytes([hw.data[0], hw.data[1]]) {
            ARPHRD_LOOPBACK => true,
            ARPHRD_ETHER => false,
            _ => return Err(OpenError::NotForUs),
        };
        // A device that is down: libpcap refuses it at once ("That device is not up").
        let flags = ifreq(&fd, o.device, libc::SIOCGIFFLAGS)?;
        if i16::from_ne_bytes([flags.data[0], flags.data[1]]) & libc::IFF_UP as i16 == 0 {
            return Err(OpenError::NotForUs);
        }
        let ix = ifreq(&fd, o.device, libc::SIOCGIFINDEX)?;
        let ifindex = c_int::from_ne_bytes([ix.data[0], ix.data[1], ix.data[2], ix.data[3]]);

        let insns = o.filter.instructions();
        let prog = libc::sock_fprog {
            len: insns.len() as u16,
            filter: insns.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog,
            "attach the filter",
        )?;
        setsockopt(
            &fd,
            SOL_PACKET,
            PACKET_VERSION,
            &TPACKET_V3,
            "ask for TPACKET_V3",
        )?;
        // Blocks of 1 MiB (a block must also hold the largest packet whole). The kernel wakes
        // the reader once a block is full or its retire time passed: at 10k connections/s,
        // 256 KiB blocks cost ~0.1 of tcpdump's CPU more in `bench-capture` (load 0.76-0.87
        // against 0.61-0.71, four runs each). The ring's size is the same.
        let block_size = (o.snaplen as usize + 4096).next_power_of_two().max(1 << 20);
        let blocks = (o.buffer_bytes / block_size).max(2);
        let frame_size = 2048;
        let req = Req3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size,
            frame_nr: (block_size / frame_size as usize * blocks) as u32,
            retire_blk_tov: o.timeout_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(
            &fd,
            SOL_PACKET,
            PACKET_RX_RING,
            &req,
            "make the packet ring",
        )?;
        // SAFETY: the ring the kernel just made, mapped whole, shared.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                block_size * blocks,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(last("map the packet ring"));
        }
        // From here on the mapping is the Ring's: dropped with it on any later error.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            let e = last("make an eventfd");
            unsafe { libc::munmap(map, block_size * blocks) };
            return Err(e);
        }
        let ring = Ring {
            fd,
            map: map as *mut u8,
            block_size,
            blocks,
            block: 0,
            at: None,
            loopback,
            wake: Arc::new(unsafe { OwnedFd::from_raw_fd(wake) }),
            nonblocking: false,
            device: o.device.to_string(),
            received: 0,
            dropped: 0,
            vlan_frame: Vec::new(),
        };
        // SAFETY: a sockaddr_ll, zeroed then filled.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        check(
            unsafe {
                libc::bind(
                    ring.fd.as_raw_fd(),
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            },
            "bind the packet socket",
        )?;
        Ok(ring)
    }

    /// Always Ethernet framing (loopback devices have an all-zero Ethernet header).
    pub fn datalink(&self) -> i32 {
        super::decode::link::EN10MB
    }

    /// Reads return at once when no block is ready.
    pub fn set_nonblocking(&mut self) {
        self.nonblocking = true;
    }

    /// A handle another thread can use to end a blocked [`Ring::dispatch`] (or the next one).
    pub fn breaker(&self) -> RingBreak {
        RingBreak(self.wake.clone())
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: block_status, the u32 at offset 8 of the block descriptor, is written by
        // the kernel and by us; atomics order it with the block's contents.
        unsafe { AtomicU32::from_ptr(self.map.add(block * self.block_size + 8) as *mut u32) }
    }

    fn read_u32(&self, at: usize) -> u32 {
        // SAFETY: `at` is inside the mapping (a header field of a block the user owns).
        unsafe { (self.map.add(at) as *const u32).read_unaligned() }
    }

    /// Hands every packet of the ready blocks to `f` (at most `want`), waiting for a block
    /// when none is ready unless non-blocking. Ok(0): woken with nothing read (a break, or
    /// nothing ready in non-blocking mode).
    pub fn dispatch<F: FnMut(Packet<'_>)>(
        &mut self,
        want: Option<usize>,
        mut f: F,
    ) -> Result<usize, io::Error> {
        let want = want.unwrap_or(usize::MAX);
        let mut n = 0;
        loop {
            if self.status(self.block).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                if n > 0 || self.nonblocking || self.wait()? {
                    return Ok(n);
                }
                continue;
            }
            let base = self.block * self.block_size;
            let (mut off, mut left) = self.at.unwrap_or_else(|| {
                (
                    base + self.read_u32(base + 16) as usize,
                    self.read_u32(base + 12),
                )
            });
            while left > 0 && n < want {
                let next = self.read_u32(off) as usize;
                left -= 1;
                if self.packet(off, &mut f) {
                    n += 1;
                }
                off += next;
            }
            if left > 0 {
                self.at = Some((off, left));
                return Ok(n);
            }
            self.at = None;
            self.status(self.block)
                .store(TP_STATUS_KERNEL, Ordering::Release);
            self.block = (self.block + 1) % self.blocks;
            if n >= want {
                return Ok(n);
            }
        }
    }

    /// One frame at `off` to `f`; false when skipped (a loopback device's outgoing copy).
    #[inline]
    fn packet<F: FnMut(Packet<'_>)>(&mut self, off: usize, f: &mut F) -> bool {
        // SAFETY: a frame of a block the user owns: its header, address and data are inside
        // the block, as the kernel wrote them.
        let frame = unsafe { self.map.add(off) };
        crate::capture::libpcap::prefetch_ahead(frame);
        if self.loopback && unsafe { *frame.add(SLL_AT + 10) } == PACKET_OUTGOING {
            return false;
        }
        let sec = self.read_u32(off + 4);
        let nsec = self.read_u32(off + 8);
        let caplen = self.read_u32(off + 12);
        let len = self.read_u32(off + 16);
        let status = self.read_u32(off + 20);
        let mac = unsafe { (frame.add(24) as *const u16).read_unaligned() } as usize;
        let data = unsafe { std::slice::from_raw_parts(frame.add(mac), caplen as usize) };
        let mut header = PacketHeader {
            ts: libc::timeval {
                tv_sec: sec as libc::time_t,
                tv_usec: (nsec / 1000) as libc::suseconds_t,
            },
            caplen,
            len,
        };
        if status & TP_STATUS_VLAN_VALID != 0 && data.len() >= 12 {
            // The kernel took the tag off into the header; libpcap puts it back after the
            // MAC addresses, and so the file and the decoder see the frame as sent.
            let tci = self.read_u32(off + 32) as u16;
            let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                self.read_u32(off + 36) as u16
            } else {
                ETH_P_8021Q
            };
            let mut v = std::mem::take(&mut self.vlan_frame);
            v.clear();
            v.extend_from_slice(&data[..12]);
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&tci.to_be_bytes());
            v.extend_from_slice(&data[12..]);
            header.caplen += 4;
            header.len += 4;
            f(Packet {
                header: &header,
                data: &v,
            });
            self.vlan_frame = v;
            return true;
        }
        f(Packet {
            header: &header,
            data,
        });
        true
    }

    /// Waits for a block or a break. Ok(true): broken (the wake-up is consumed).
    fn wait(&mut self) -> Result<bool, io::Error> {
        let mut fds = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // No timeout: the kernel hands over a block with packets within its retire time, and
        // an idle device is woken by a break.
        // SAFETY: two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut v = 0u64;
            // SAFETY: an 8-byte read of an eventfd.
            unsafe { libc::read(self.wake.as_raw_fd(), &mut v as *mut u64 as *mut c_void, 8) };
            return Ok(true);
        }
        if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(self.socket_error());
        }
        Ok(false)
    }

    /// The socket's pending error: ENETDOWN when the device went down or was removed.
    fn socket_error(&self) -> io::Error {
        let mut err: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: an int-sized option.
        unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut c_int as *mut c_void,
                &mut len,
            )
        };
        match err {
            libc::ENETDOWN => io::Error::other(format!(
                "{} went down or disappeared",
                crate::render::escape(&self.device)
            )),
            0 => io::Error::other("the packet socket failed"),
            e => io::Error::from_raw_os_error(e),
        }
    }

    /// The kernel's counters since the start: packets it received for this socket (drops
    /// included) and those it dropped for want of room, as libpcap sums them.
    pub fn stats(&mut self) -> Result<Stat, io::Error> {
        let mut s = StatsV3::default();
        let mut len = std::mem::size_of::<StatsV3>() as libc::socklen_t;
        // SAFETY: a tpacket_stats_v3-sized option.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                &mut s as *mut StatsV3 as *mut c_void,
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = self.received.wrapping_add(s.packets);
        self.dropped = self.dropped.wrapping_add(s.drops);
        Ok(Stat {
            received: self.received,
            dropped: self.dropped,
            if_dropped: 0,
        })
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open, unmapped once; the fd closes after.
        unsafe { libc::munmap(self.map as *mut c_void, self.block_size * self.blocks) };
    }
}

/// Wakes a [`Ring::dispatch`] waiting on another thread, or ends the next one.
#[derive(Clone)]
pub struct RingBreak(Arc<OwnedFd>);

impl RingBreak {
    pub fn wake(&self) {
        let one = 1u64;
        // SAFETY: an 8-byte write to an eventfd (it only fails when the counter would
        // overflow, and then a wake-up is pending anyway).
        unsafe { libc::write(self.0.as_raw_fd(), &one as *const u64 as *const c_void, 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::libpcap::{LiveOptions, Pcap};
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// What a reader handed over of one packet.
    type Seen = (libc::time_t, libc::suseconds_t, u32, u32, Vec<u8>);

    fn seen(p: &Packet<'_>) -> Seen {
        (
            p.header.ts.tv_sec,
            p.header.ts.tv_usec,
            p.header.caplen,
            p.header.len,
            p.data.to_vec(),
        )
    }

    fn need_root() {
        // SAFETY: geteuid reads nothing of ours.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "needs root: a network namespace and packet sockets (run `bash scripts/test`)"
        );
    }

    fn run(args: &[&str]) {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    /// Runs `f` on a thread of its own in a new network namespace (gone with the thread).
    fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            // SAFETY: unshare of this thread's network namespace only.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
            f()
        })
        .join()
        .unwrap()
    }

    /// The ring and libpcap on the same device with the same filter, both opened before the
    /// traffic `make` sends; then both read until `want` packets (bounded).
    fn both_read(
        device: &str,
        filter: &str,
        want: usize,
        make: impl FnOnce(),
    ) -> (Vec<Seen>, Vec<Seen>) {
        let snaplen = 256;
        let dead = Pcap::open_dead_cut(crate::capture::decode::link::EN10MB, snaplen).unwrap();
        let program = dead.compile(filter, true).unwrap();
        let mut ring = Ring::open(&RingOptions {
            device,
            filter: &program,
            snaplen: snaplen as u32,
            buffer_bytes: 4 << 20,
            timeout_ms: 20,
        })
        .unwrap();
        let options = LiveOptions {
            snaplen,
            promisc: false,
            timeout_ms: 20,
            buffer_bytes: 4 << 20,
            immediate: false,
        };
        let mut pcap = Pcap::open_live(device, &options).unwrap();
        pcap.filter(filter, true).unwrap();
        let mut pcap = pcap.setnonblock().unwrap();
        ring.set_nonblocking();
        make();
        let (mut from_ring, mut from_pcap) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        while (from_ring.len() < want || from_pcap.len() < want) && Instant::now() < deadline {
            // One packet per call: a block read in several calls resumes where it stopped.
            while ring
                .dispatch(Some(1), |p| from_ring.push(seen(&p)))
                .unwrap()
                > 0
            {}
            pcap.dispatch(None, |p| from_pcap.push(seen(&p))).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        let s = ring.stats().unwrap();
        assert_eq!((s.dropped, s.if_dropped), (0, 0));
        (from_ring, from_pcap)
    }

    /// The same packets in the same order, byte for byte. Each socket stamps a packet
    /// itself when the device did not (loopback, veth): the times may differ by microseconds.
    fn assert_same(ring: &[Seen], pcap: &[Seen]) {
        let bytes = |v: &[Seen]| -> Vec<(u32, u32, Vec<u8>)> {
            v.iter().map(|p| (p.2, p.3, p.4.clone())).collect()
        };
        assert_eq!(bytes(ring), bytes(pcap));
        for (r, p) in ring.iter().zip(pcap) {
            // time_t and suseconds_t are i64 here; the allow keeps 32-bit builds working.
            #[allow(clippy::useless_conversion)]
            let us = |p: &Seen| i64::from(p.0) * 1_000_000 + i64::from(p.1);
            assert!((us(r) - us(p)).abs() < 1000, "{} against {}", us(r), us(p));
        }
    }

    /// Loopback: every connection's packets once (the outgoing copy skipped), with the same
    /// times and bytes as libpcap's, cut by the filter to the snap length.
    #[test]
    #[ignore = "needs root: a network namespace and packet sockets (run `bash scripts/test`)"]
    fn on_loopback_the_ring_hands_over_what_libpcap_does() {
        need_root();
        let (ring, pcap) = in_new_netns(|| {
            run(&["ip", "link", "set", "lo", "up"]);
            both_read("lo", "tcp", 3 * 7, || {
                use std::io::Write;
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                for _ in 0..3 {
                    let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
                    let (s, _) = l.accept().unwrap();
                    // Past the snap length: the filter's accept value cuts it.
                    c.write_all(&[7u8; 1000]).unwrap();
                    drop(c);
                    drop(s);
                }
            })
        });
        assert!(ring.len() >= 3 * 7, "{} packets", ring.len());
        assert!(
            ring.iter().any(|p| p.3 > 1000 && p.2 == 256),
            "a cut packet"
        );
        assert_same(&ring, &pcap);
    }

    /// A VLAN tag the kernel took off into the frame's header is put back as libpcap does.
    #[test]
    #[ignore = "needs root: a network namespace and packet sockets (run `bash scripts/test`)"]
    fn a_vlan_tag_is_put_back_as_libpcap_does() {
        need_root();
        let (ring, pcap) = in_new_netns(|| {
            run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            run(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
            run(&[
                "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
            ]);
            run(&["ip", "link", "set", "v0", "up"]);
            run(&["ip", "link", "set", "v1", "up"]);
            std::thread::sleep(Duration::from_millis(100));
            both_read("v0", "", 6, || send_frames("v1"))
        });
        assert_eq!(ring.len(), 6, "{ring:?}");
        // The tagged frames carry their tag at bytes 12..16, as sent.
        assert_eq!(&ring[1].4[12..16], &[0x81, 0x00, 0x00, 0x07]);
        assert_eq!(ring[1].2, 64 + 4);
        assert_same(&ring, &pcap);
    }

    /// A capture on an Ethernet or loopback device reads the ring; `any` and the live view's
    /// immediate mode go through libpcap.
    #[test]
    #[ignore = "needs root: a network namespace and packet sockets (run `bash scripts/test`)"]
    fn captures_read_the_ring_where_it_serves() {
        use crate::capture::source::{open_live, Reader};
        need_root();
        let kinds = in_new_netns(|| {
            run(&["ip", "link", "set", "lo", "up"]);
            run(&[
                "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
            ]);
            run(&["ip", "link", "set", "v0", "up"]);
            [("lo", false), ("v0", false), ("lo", true), ("any", false)]
                .iter()
                .map(|&(device, immediate)| {
                    let live = open_live(device, None, None, immediate, false, None).unwrap();
                    matches!(live.cap, Reader::Ring(_))
                })
                .collect::<Vec<bool>>()
        });
        assert_eq!(kinds, [true, true, false, false]);
    }

    /// Six Ethernet frames out of `device`: plain and VLAN-tagged (id 7) in turn.
    fn send_frames(device: &str) {
        // SAFETY: a raw packet socket, closed at the end; the frames are local buffers.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0);
            let name = std::ffi::CString::new(device).unwrap();
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as c_int;
            sll.sll_halen = 6;
            for i in 0..6u8 {
                let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
                if i % 2 == 1 {
                    f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
                }
                f.extend_from_slice(&[0x88, 0xb5]); // local experimental EtherType
                f.resize(f.len() + 50, i);
                let sent = libc::sendto(
                    fd,
                    f.as_ptr() as *const c_void,
                    f.len(),
                    0,
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                );
                assert_eq!(sent, f.len() as isize);
            }
            libc::close(fd);
        }
    }
}
