//! Spreading per-process work over the CPUs. An fd walk is one `readlinkat` (and for kinds a
//! `stat`) per fd, nearly all of it kernel time, so it scales with cores; threads take
//! processes one at a time from a shared counter because one process may hold most of the
//! host's fds.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many workers for `items` pieces of work: the CPUs, at most 8, at most one per item.
pub fn workers(items: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(items.max(1))
}

/// `f(i)` for every `i` in `0..n`, on [`workers`] threads; the results in index order.
pub fn map_indexed<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let threads = workers(n);
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let parts: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, v) in parts.into_iter().flatten() {
        out[i] = Some(v);
    }
    out.into_iter()
        .map(|v| v.expect("every index mapped"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_once_in_order() {
        let got = map_indexed(1000, |i| i * 2);
        assert_eq!(got, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert!(map_indexed(0, |i| i).is_empty());
    }
}
