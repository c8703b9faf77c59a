//! Ordering processes by how close they are to EMFILE (pure).

use std::cmp::Ordering;

use super::model::FdUsage;

/// Most-used first: by % of the soft limit, then by open fds; processes without a soft limit
/// after those with one; unreadable processes last; pid breaks ties so output is stable.
pub fn by_use(a: &FdUsage, b: &FdUsage) -> Ordering {
    let pct = |u: &FdUsage| u.percent_used();
    // Unreadable (fds None) last.
    b.fds
        .is_some()
        .cmp(&a.fds.is_some())
        .then_with(|| match (pct(a), pct(b)) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| b.fds.cmp(&a.fds))
        .then_with(|| a.pid.cmp(&b.pid))
}

/// Sorts by [`by_use`] and keeps the first `top` (all when `None`).
pub fn rank(mut procs: Vec<FdUsage>, top: Option<usize>) -> Vec<FdUsage> {
    procs.sort_by(by_use);
    if let Some(n) = top {
        procs.truncate(n);
    }
    procs
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn usage(pid: u32, fds: Option<u64>, soft: Option<u64>) -> FdUsage {
        FdUsage {
            pid,
            name: format!("p{pid}"),
            fds,
            soft_limit: soft,
            hard_limit: None,
            sockets: None,
            kinds: None,
        }
    }

    #[test]
    fn ranks_by_percent_then_fds_then_unlimited_then_unreadable() {
        let procs = vec![
            usage(1, None, Some(1024)),     // unreadable
            usage(2, Some(10), Some(100)),  // 10%
            usage(3, Some(900), None),      // unlimited, many fds
            usage(4, Some(200), Some(256)), // 78.1%
            usage(5, Some(20), Some(200)),  // 10%, more fds than pid 2
            usage(6, Some(5), None),        // unlimited, few fds
        ];
        let order: Vec<u32> = rank(procs.clone(), None).iter().map(|u| u.pid).collect();
        assert_eq!(order, [4, 5, 2, 3, 6, 1]);
        let top: Vec<u32> = rank(procs, Some(2)).iter().map(|u| u.pid).collect();
        assert_eq!(top, [4, 5]);
    }
}
