//! The table of a namespace's connected sockets by connection pair ([`super::local`]), with
//! lookups that can be prefetched.
//!
//! Hand-written instead of a `HashMap` because of one measurement: matching the ~100k flows of
//! a busy capture against the ~32k TIME_WAIT sockets of its end dump took 21–28 ms, four
//! fifths of it stalled on the first read of each entry (a cache miss per flow: the entries
//! are megabytes, the flows come in no order of the table). `HashMap` cannot say where a key
//! will be before looking; here the hash of the next keys is known ahead, so their slots are
//! asked for together ([`prefetched`]) and the misses overlap.
//!
//! Open addressing with linear probing, at most half full; entries are never removed.

use std::hash::{BuildHasher, BuildHasherDefault, Hash};

use crate::fxhash::FxHasher;

/// What is known of a pair's two ends: the inode found on each side (`Some(0)`: found, but
/// held by no fd).
pub type Sides = [Option<u32>; 2];

#[derive(Debug, Clone)]
pub struct PairMap<K> {
    /// A power of two long (or empty).
    slots: Vec<Option<(K, Sides)>>,
    len: usize,
}

impl<K> Default for PairMap<K> {
    fn default() -> Self {
        PairMap {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// How many lookups are asked for ahead of their use: enough misses in flight to cover the
/// memory's latency, few enough that the first slots are still cached when they are read.
pub const AHEAD: usize = 16;

impl<K: Copy + Eq + Hash> PairMap<K> {
    pub fn hash(k: &K) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(k)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Makes room for `more` new keys, so that inserting them moves nothing.
    pub fn reserve(&mut self, more: usize) {
        let want = (self.len + more)
            .saturating_mul(2)
            .max(8)
            .next_power_of_two();
        if want <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![None; want]);
        for (k, v) in old.into_iter().flatten() {
            let i = self.probe(Self::hash(&k), &k);
            self.slots[i] = Some((k, v));
        }
    }

    /// The slot holding `k`, or the empty one where it would go. The table is never full.
    fn probe(&self, h: u64, k: &K) -> usize {
        let mask = self.mask();
        let mut i = h as usize & mask;
        loop {
            match &self.slots[i] {
                Some((key, _)) if key != k => i = (i + 1) & mask,
                _ => return i,
            }
        }
    }

    /// Asks the CPU for the cache line of `h`'s first slot (a hint: nothing is read).
    pub fn prefetch(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        if !self.slots.is_empty() {
            let p = self.slots.as_ptr().wrapping_add(h as usize & self.mask());
            // SAFETY: a prefetch reads nothing and cannot fault; `p` is inside the table.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p as *const i8,
                )
            };
        }
    }

    /// The sides of `k`, whose hash is `h`.
    pub fn get(&self, h: u64, k: &K) -> Option<&Sides> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.probe(h, k)].as_ref().map(|(_, v)| v)
    }

    /// The sides of `k` (hash `h`), made empty if `k` is new.
    pub fn entry(&mut self, h: u64, k: K) -> &mut Sides {
        if (self.len + 1) * 2 > self.slots.len() {
            self.reserve(self.len.max(4));
        }
        let i = self.probe(h, &k);
        let slot = &mut self.slots[i];
        if slot.is_none() {
            self.len += 1;
        }
        &mut slot.get_or_insert((k, [None; 2])).1
    }
}

/// Calls `f(item)` for each item in order, after `prefetch` was called on each of the next
/// [`AHEAD`] items: their lookups' misses overlap instead of coming one after another.
pub fn prefetched<T>(
    items: impl IntoIterator<Item = T>,
    mut prefetch: impl FnMut(&T),
    mut f: impl FnMut(T),
) {
    let mut items = items.into_iter();
    let mut ahead: Vec<T> = Vec::with_capacity(AHEAD);
    loop {
        ahead.extend(items.by_ref().take(AHEAD).inspect(&mut prefetch));
        if ahead.is_empty() {
            return;
        }
        ahead.drain(..).for_each(&mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Against a `HashMap` on keys made to collide in the low bits and not: the same answers,
    /// for keys present and absent, across growth.
    #[test]
    fn answers_as_a_hash_map_does() {
        let mut ours = PairMap::<[u32; 3]>::default();
        let mut std: HashMap<[u32; 3], Sides> = HashMap::new();
        let keys: Vec<[u32; 3]> = (0..5000u32)
            .map(|i| [0x7f00_0001, 0x7f00_0001, (i % 97) << 16 | i])
            .chain((0..3000u32).map(|i| [i << 20, 7, 9]))
            .collect();
        for (n, k) in keys.iter().enumerate() {
            let v = Some(n as u32);
            let side = n % 2;
            ours.entry(PairMap::hash(k), *k)[side] = v;
            std.entry(*k).or_default()[side] = v;
            // An insert of a key already there changes no count.
            ours.entry(PairMap::hash(k), *k);
        }
        assert_eq!(ours.len(), std.len());
        for k in &keys {
            assert_eq!(ours.get(PairMap::hash(k), k), std.get(k), "{k:?}");
        }
        for i in 0..2000u32 {
            let absent = [1, 2, i];
            assert_eq!(ours.get(PairMap::hash(&absent), &absent), None);
        }
    }

    #[test]
    fn an_empty_map_finds_nothing_and_reserving_moves_nothing_lost() {
        let mut m = PairMap::<u64>::default();
        assert_eq!(m.get(PairMap::hash(&5), &5), None);
        m.prefetch(PairMap::hash(&5));
        m.entry(PairMap::hash(&5), 5)[1] = Some(0);
        m.reserve(10_000);
        assert_eq!(m.get(PairMap::hash(&5), &5), Some(&[None, Some(0)]));
        assert_eq!(m.len(), 1);
    }

    /// Every item is handed over once, in order, and prefetched before, at most [`AHEAD`]
    /// ahead, however the count falls against the lookahead.
    #[test]
    fn prefetched_walks_hand_over_every_item_in_order() {
        for n in [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 5 * AHEAD + 3] {
            let (mut asked, mut seen) = (Vec::new(), Vec::new());
            let asked_ref = std::cell::RefCell::new(&mut asked);
            prefetched(
                0..n,
                |&i| asked_ref.borrow_mut().push(i),
                |i| {
                    let asked = asked_ref.borrow();
                    assert!(asked.contains(&i) && asked.len() <= i + AHEAD, "{i} of {n}");
                    seen.push(i);
                },
            );
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            assert_eq!(asked, seen);
        }
    }
}
