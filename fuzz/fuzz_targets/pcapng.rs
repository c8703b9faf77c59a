//! Any bytes given to the pcapng reader must read or fail with an error, never panic or
//! allocate without bound; whatever packets come out go through the pipeline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockscope::capture::pcapng::PcapngReader;
use sockscope::capture::pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = PcapngReader::new(data) else {
        return;
    };
    let mut pipe = Pipeline::new(0, 64);
    // Bounded: every packet consumes at least one block of 12 bytes or more.
    while let Ok(Some(p)) = r.next_packet() {
        pipe.frame_of(p.linktype, p.ts_us, &p.data);
    }
    let _ = pipe.finish(None);
});
