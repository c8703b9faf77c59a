//! `sockscope capture`: packets (live through libpcap, or from a pcap file) → decoded TCP
//! segments → a per-flow handshake tracker → flows, a per-destination summary and counters.
//!
//! source (libpcap I/O) → decode (pure) → tracker (pure) → summary and verdicts (pure); rendering lives in
//! `render::capture`.

pub mod decode;
pub mod filter;
pub mod libpcap;
pub mod live;
pub mod local;
pub mod model;
pub mod offline;
pub mod pairmap;
pub mod pcapng;
pub mod pcapwrite;
pub mod pipeline;
pub mod ring;
pub mod source;
pub mod summary;
pub mod tracker;
pub mod verdict;

pub use live::{Capture, CaptureSpec, LiveEvent};
pub use model::{CaptureReport, CaptureStats, DestSummary, Flow, Outcome, Segment, Side, Verdict};
pub use source::CaptureError;
