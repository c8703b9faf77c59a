//! Packet sources: a live device (inside a namespace if asked) or a pcap file, both through
//! libpcap (loaded on first use: see [`super::libpcap`]), with errors that say what to do.
//! The only file here that talks to libpcap's open calls.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::decode::{link, supported_link};
use super::filter::capture_filter;
use super::libpcap::{self, BreakLoop, LiveOptions, Packet, Pcap, Stat};
use super::ring::{Ring, RingBreak, RingOptions};
use crate::netns::NetnsError;

/// Bytes kept of each packet: enough for any link header, IPv4 or IPv6 with options or
/// extension headers, and TCP with options; payload is never needed.
pub const SNAPLEN: i32 = 256;
/// Bytes kept of each packet with `--full`: all of it (tcpdump's default).
pub const FULL_SNAPLEN: i32 = 262_144;
/// libpcap's buffer timeout: how long packets may wait in the kernel buffer (and the longest
/// a stop request waits for the last ones).
pub const TIMEOUT_MS: i32 = 100;
/// Kernel ring size. 8 MiB holds about 2 s of a 10,000-connections/s handshake storm.
pub const BUFFER_BYTES: i32 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "capturing on {device} needs CAP_NET_RAW (and CAP_NET_ADMIN for some devices): run as \
         root, or grant it once with `sudo setcap cap_net_raw,cap_net_admin+eip $(command -v sockscope)`"
    )]
    Permission { device: String },
    #[error("no capture device {name}{where_}; devices here: {available}")]
    UnknownDevice {
        name: String,
        where_: String,
        available: String,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot read {path}: {msg}")]
    OpenFile { path: PathBuf, msg: String },
    #[error("cannot write {path}: {msg}")]
    WriteFile { path: PathBuf, msg: String },
    #[error("{path}: link type {linktype} ({name}) is not supported; sockscope reads EN10MB, LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6, NULL and LOOP captures")]
    UnsupportedLink {
        path: String,
        linktype: i32,
        name: String,
    },
    #[error("libpcap failed to {what}: {msg}")]
    Pcap { what: String, msg: String },
    /// A device read without libpcap (see `ring`) failed.
    #[error("cannot {what}: {msg}")]
    Device { what: String, msg: String },
    /// libpcap is loaded only for a capture: without it, everything else still works.
    #[error("capture needs libpcap ({why}): apt install libpcap0.8")]
    NoLibpcap { why: String },
}

impl CaptureError {
    /// True for errors in what the user gave (a file, a path): exit 2; others are the
    /// environment's: exit 3.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            CaptureError::OpenFile { .. }
                | CaptureError::WriteFile { .. }
                | CaptureError::UnsupportedLink { .. }
        )
    }
}

/// `what` failed; a libpcap that could not be loaded says so whatever the step.
pub(super) fn pcap_err(what: &str, e: libpcap::Error) -> CaptureError {
    match e {
        libpcap::Error::NotLoaded { why } => CaptureError::NoLibpcap { why },
        e => CaptureError::Pcap {
            what: what.to_string(),
            msg: e.to_string(),
        },
    }
}

fn link_name(linktype: i32) -> String {
    libpcap::link_name(linktype).unwrap_or_else(|| "unknown".into())
}

/// A live device's packets: straight from the kernel's ring for Ethernet and loopback
/// devices ([`Ring`]), through libpcap for every other device and in immediate mode.
pub enum Reader {
    Ring(Ring),
    Pcap(Pcap),
}

/// Wakes a [`Reader::dispatch`] waiting on another thread (or ends the next one).
pub enum Breaker {
    Ring(RingBreak),
    Pcap(BreakLoop),
}

impl Breaker {
    pub fn wake(&self) {
        match self {
            Breaker::Ring(b) => b.wake(),
            Breaker::Pcap(b) => b.breakloop(),
        }
    }
}

impl Reader {
    /// The link type (DLT_*).
    pub fn datalink(&self) -> i32 {
        match self {
            Reader::Ring(r) => r.datalink(),
            Reader::Pcap(p) => p.datalink(),
        }
    }

    pub fn breaker(&self) -> Breaker {
        match self {
            Reader::Ring(r) => Breaker::Ring(r.breaker()),
            Reader::Pcap(p) => Breaker::Pcap(p.breakloop_handle()),
        }
    }

    /// Hands the packets ready (at most `want`) to `f`, waiting for some unless non-blocking;
    /// Ok(0) when woken with none.
    #[inline]
    pub fn dispatch<F: FnMut(Packet<'_>)>(
        &mut self,
        want: Option<usize>,
        f: F,
    ) -> Result<usize, String> {
        match self {
            Reader::Ring(r) => r.dispatch(want, f).map_err(|e| e.to_string()),
            Reader::Pcap(p) => p.dispatch(want, f).map_err(|e| e.to_string()),
        }
    }

    /// Makes reads return at once when nothing is waiting.
    pub fn set_nonblocking(self) -> Result<Reader, String> {
        match self {
            Reader::Ring(mut r) => {
                r.set_nonblocking();
                Ok(Reader::Ring(r))
            }
            Reader::Pcap(p) => p.setnonblock().map(Reader::Pcap).map_err(|e| e.to_string()),
        }
    }

    /// The kernel's counters since the start.
    pub fn stats(&mut self) -> Result<Stat, String> {
        match self {
            Reader::Ring(r) => r.stats().map_err(|e| e.to_string()),
            Reader::Pcap(p) => p.stats().map_err(|e| e.to_string()),
        }
    }
}

/// A device opened for capture.
pub struct Live {
    pub cap: Reader,
    /// A loopback device: the kernel counts each of its packets twice (once going out, once
    /// coming in) and libpcap discards the outgoing copy, so `stats().received` is double
    /// the packets delivered.
    pub loopback: bool,
}

/// Opens `device` for capture with the handshake filter (`full`: every TCP packet, whole). Call it on the thread that has
/// entered the wanted network namespace: the packet socket belongs to that namespace.
pub fn open_live(
    device: &str,
    port: Option<u16>,
    host: Option<IpAddr>,
    immediate: bool,
    full: bool,
    netns_shown: Option<&str>,
) -> Result<Live, CaptureError> {
    // Check the name first: libpcap's own message for a missing device varies by version.
    let devices = libpcap::devices().map_err(|e| pcap_err("list capture devices", e))?;
    let Some(found) = devices.iter().find(|d| d.name == device) else {
        let mut names: Vec<String> = devices
            .iter()
            .map(|d| crate::render::escape(&d.name))
            .collect();
        names.sort();
        return Err(CaptureError::UnknownDevice {
            name: crate::render::escape(device),
            where_: netns_shown
                .map(|n| format!(" in network namespace {n}"))
                .unwrap_or_default(),
            available: names.join(", "),
        });
    };
    let loopback = found.loopback;
    let filter = capture_filter(full, port, host);
    let snaplen = if full { FULL_SNAPLEN } else { SNAPLEN };
    // The ring serves batches; the live view's immediate mode stays with libpcap. Anything
    // the ring cannot open goes to libpcap too, whose errors (privileges, devices) the
    // messages below know.
    if !immediate && device != "any" {
        if let Ok(ring) = open_ring(device, &filter, snaplen) {
            return Ok(Live {
                cap: Reader::Ring(ring),
                loopback,
            });
        }
    }
    let options = LiveOptions {
        snaplen: if full { FULL_SNAPLEN } else { SNAPLEN },
        promisc: false,
        timeout_ms: TIMEOUT_MS,
        buffer_bytes: BUFFER_BYTES,
        immediate,
    };
    let mut cap = Pcap::open_live(device, &options).map_err(|e| match e {
        libpcap::Error::PermissionDenied(_) => CaptureError::Permission {
            device: device.to_string(),
        },
        // Older libpcaps report a refused socket() as a plain error.
        libpcap::Error::Pcap(msg) if msg.contains("ermission") || msg.contains("not permitted") => {
            CaptureError::Permission {
                device: device.to_string(),
            }
        }
        e => pcap_err(&format!("open {device}"), e),
    })?;
    let linktype = cap.datalink();
    if !supported_link(linktype) {
        return Err(CaptureError::UnsupportedLink {
            path: device.to_string(),
            linktype,
            name: link_name(linktype),
        });
    }
    cap.filter(&filter, true)
        .map_err(|e| pcap_err("compile the capture filter", e))?;
    Ok(Live {
        cap: Reader::Pcap(cap),
        loopback,
    })
}

/// The ring of an Ethernet or loopback `device`, its filter compiled by libpcap for that
/// link type; Err for other devices and for any failure (the caller falls back to libpcap).
fn open_ring(device: &str, filter: &str, snaplen: i32) -> Result<Ring, ()> {
    let dead = Pcap::open_dead_cut(link::EN10MB, snaplen).map_err(|_| ())?;
    let program = dead.compile(filter, true).map_err(|_| ())?;
    Ring::open(&RingOptions {
        device,
        filter: &program,
        snaplen: snaplen as u32,
        buffer_bytes: BUFFER_BYTES as usize,
        timeout_ms: TIMEOUT_MS as u32,
    })
    .map_err(|_| ())
}

/// Opens a capture file (pcap or pcapng, any writer) of a link type sockscope decodes.
pub fn open_file(path: &Path) -> Result<Pcap, CaptureError> {
    let shown = path.display().to_string();
    let cap = Pcap::open_offline(path).map_err(|e| match e {
        libpcap::Error::NotLoaded { why } => CaptureError::NoLibpcap { why },
        e => CaptureError::OpenFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        },
    })?;
    let linktype = cap.datalink();
    if !supported_link(linktype) {
        return Err(CaptureError::UnsupportedLink {
            path: shown,
            linktype,
            name: link_name(linktype),
        });
    }
    Ok(cap)
}
