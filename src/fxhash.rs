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
        // Whole words straight from the bytes: a copy into a buffer per chunk was a memcpy
        // call per 8 bytes of every path a snapshot keys its tape by.
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(rest) {
                *d = *s;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    fn low_bits<T: Hash>(keys: impl Iterator<Item = T>, bits: u32) -> usize {
        let b = BuildHasherDefault::<FxHasher>::default();
        keys.map(|k| b.hash_one(k) & ((1 << bits) - 1))
            .collect::<HashSet<u64>>()
            .len()
    }

    /// hashbrown takes the bucket from the low bits: keys that differ only above bit 16 (a
    /// port shifted up) or only before a constant word (a 4-tuple's port before a fixed
    /// address) must still spread over them: as a random function would, about 63% of 4096
    /// buckets for 4096 keys (without the final rotation the first case used one bucket).
    #[test]
    fn keys_differing_high_or_early_spread_over_the_low_bits() {
        let shifted = low_bits((0..4096u32).map(|p| (p << 16) | 9200), 12);
        assert!(shifted > 2000, "{shifted} of 4096 buckets");
        let early = low_bits((0..4096u32).map(|p| (p, 0x7f00_0001u32, 9200u16)), 12);
        assert!(early > 2000, "{early} of 4096 buckets");
        let paths = low_bits((0..4096).map(|fd| format!("/proc/4242/fd/{fd}")), 12);
        assert!(paths > 2000, "{paths} of 4096 buckets");
    }

    /// Every byte counts, the last partial word too.
    #[test]
    fn bytes_past_the_last_whole_word_change_the_hash() {
        let b = BuildHasherDefault::<FxHasher>::default();
        let h = |s: &[u8]| {
            let mut x = b.build_hasher();
            x.write(s);
            x.finish()
        };
        assert_ne!(h(b"0123456789a"), h(b"0123456789b"));
        assert_ne!(h(b"01234567"), h(b"012345678"));
    }
}
