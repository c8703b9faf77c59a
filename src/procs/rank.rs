//! Ordering processes by how close they are to EMFILE (pure).

use std::cmp::Ordering;

use super::container::Container;
use super::model::FdUsage;
use super::report::ContainerFds;

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

/// Groups processes by container (pure): sums, the worst process of each (by [`by_use`]),
/// and the groups worst first (by their worst process, as rows are ranked).
pub fn by_container(procs: Vec<(FdUsage, Option<Container>)>) -> Vec<ContainerFds> {
    let mut groups: Vec<ContainerFds> = Vec::new();
    for (u, c) in procs {
        let key = c.as_ref().map(|c| c.id.clone());
        let g = match groups
            .iter_mut()
            .position(|g| g.container.as_ref().map(|c| &c.id) == key.as_ref())
        {
            Some(i) => &mut groups[i],
            None => {
                groups.push(ContainerFds {
                    container: c,
                    processes: 0,
                    fds: 0,
                    unreadable: 0,
                    worst: None,
                    worst_percent_used: None,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.processes += 1;
        match u.fds {
            Some(n) => g.fds += n,
            None => g.unreadable += 1,
        }
        if g.worst
            .as_ref()
            .is_none_or(|w| by_use(&u, w) == Ordering::Less)
        {
            g.worst_percent_used = u.percent_used();
            g.worst = Some(u);
        }
    }
    groups.sort_by(|a, b| match (&a.worst, &b.worst) {
        (Some(x), Some(y)) => by_use(x, y).then_with(|| b.fds.cmp(&a.fds)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_sum_their_processes_and_rank_by_the_worst() {
        let c = |id: &str| Container {
            runtime: crate::procs::cgroup::Runtime::Podman,
            id: id.into(),
            name: Some(id.into()),
            pod: None,
            pod_namespace: None,
        };
        let groups = by_container(vec![
            (usage(1, Some(10), Some(100)), Some(c("web"))), // 10%
            (usage(2, Some(90), Some(100)), Some(c("web"))), // 90%: web's worst
            (usage(3, None, Some(100)), Some(c("web"))),     // unreadable
            (usage(4, Some(500), Some(1000)), Some(c("db"))), // 50%
            (usage(5, Some(950), Some(1000)), None),         // 95%, outside containers
        ]);
        let ids: Vec<Option<&str>> = groups
            .iter()
            .map(|g| g.container.as_ref().map(|c| c.id.as_str()))
            .collect();
        assert_eq!(ids, [None, Some("web"), Some("db")]);
        let web = &groups[1];
        assert_eq!(web.processes, 3);
        assert_eq!(web.fds, 100);
        assert_eq!(web.unreadable, 1);
        assert_eq!(web.worst.as_ref().unwrap().pid, 2);
        assert_eq!(web.worst_percent_used, Some(90.0));
    }

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
