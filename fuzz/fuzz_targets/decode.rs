//! Any bytes, under any link type sockscope reads, must decode or fail cleanly, and whatever
//! decodes must go through the tracker without a panic; the fast decode path must agree with
//! the full one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockscope::capture::decode::{decode, decode_full};
use sockscope::capture::pipeline::Pipeline;

const LINKS: [i32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let linktype = LINKS[sel as usize % LINKS.len()];
    let mut pipe = Pipeline::new(linktype, 64);
    // Frames are length-prefixed (one byte) so one input can hold a whole conversation.
    let mut rest = rest;
    let mut ts = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (frame, next) = tail.split_at(n);
        ts += u64::from(len) * 1000;
        // The fast path must never disagree with the full walk when both decode.
        if let (Ok(a), Ok(b)) = (decode(linktype, ts, frame), decode_full(linktype, ts, frame)) {
            assert_eq!(a, b);
        }
        pipe.frame(ts, frame);
        rest = next;
    }
    let _ = pipe.finish(None);
});
