//! FxHash, rustc's hasher, for the hot maps keyed by small values (a flow's 4-tuple, a
//! snapshot's paths). Hand-written: a dozen lines, and the rustc-hash crate is not in the
//! offline registry here; measured several times faster than SipHash on these keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): several times faster than SipHash on small keys. Not
/// flood-resistant: used where the keys come from the kernel or are bounded (a capture's
/// `max_flows`).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // hashbrown picks the bucket from the low bits, where a multiply leaves only the low
        // bits of its input: keys that differ early (a 4-tuple's port before a fixed address)
        // or only above bit 16 all fell in a few buckets (100k flows took 30 ms to index
        // instead of 3). The rotation brings the well-mixed high bits down, as rustc-hash 2
        // does.
        self.0.rotate_left(26)
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
