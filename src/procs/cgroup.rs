//! Which container (or systemd unit) a process runs in, read from its `/proc/PID/cgroup`
//! (pure). Every runtime names its cgroups its own way; this knows Docker, Podman, containerd
//! (CRI), CRI-O and Kubernetes pods, under cgroup v1, v2 and hybrid layouts, and falls back to
//! the systemd unit (`nginx.service`) for a process outside any container.

use serde::Serialize;

/// The container runtime a cgroup name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Podman,
    Containerd,
    Crio,
    /// A Kubernetes container whose cgroup (cgroupfs driver) does not say which runtime.
    Cri,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
            Runtime::Cri => "cri",
        }
    }
}

/// A container as its cgroup names it: enough to find its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerRef {
    pub runtime: Runtime,
    /// The full id (64 hex digits).
    pub id: String,
    /// The Kubernetes pod UID, when the cgroup sits under a pod.
    pub pod_uid: Option<String>,
}

/// Where a process lives, as far as its cgroup tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Container(ContainerRef),
    /// A systemd unit outside any container (`nginx.service`).
    Unit(String),
}

/// Reads the origin out of a `/proc/PID/cgroup` text. The cgroup v2 line (`0::PATH`) is
/// looked at first, then each v1 hierarchy: on a hybrid host a runtime may have placed the
/// process in only some of them. `None` when nothing in the paths is recognisable.
pub fn parse_cgroup(text: &str) -> Option<Origin> {
    let lines = text.lines().filter_map(|l| {
        let mut f = l.splitn(3, ':');
        let (hierarchy, _, path) = (f.next()?, f.next()?, f.next()?);
        Some((hierarchy != "0", path))
    });
    // v2 first (false sorts before true), v1 after, each in file order.
    let mut paths: Vec<(bool, &str)> = lines.collect();
    paths.sort_by_key(|&(v1, _)| v1);
    paths
        .iter()
        .find_map(|(_, p)| container_of_path(p).map(Origin::Container))
        .or_else(|| {
            paths
                .iter()
                .find_map(|(_, p)| unit_of_path(p).map(Origin::Unit))
        })
}

/// The container named by one cgroup path, looking from the deepest component up (a
/// container may nest cgroups of its own below the runtime's: `…/docker-ID.scope/init.scope`).
pub fn container_of_path(path: &str) -> Option<ContainerRef> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let pod_uid = parts.iter().find_map(|p| pod_uid_of(p));
    for (i, part) in parts.iter().enumerate().rev() {
        let part = part.strip_suffix(".scope").unwrap_or(part);
        let found = if let Some(id) = part.strip_prefix("docker-") {
            full_id(id).map(|id| (Runtime::Docker, id))
        } else if let Some(id) = part.strip_prefix("libpod-") {
            // libpod-conmon-ID is Podman's monitor process, not the container.
            full_id(id).map(|id| (Runtime::Podman, id))
        } else if let Some(id) = part.strip_prefix("cri-containerd-") {
            full_id(id).map(|id| (Runtime::Containerd, id))
        } else if let Some(id) = part.strip_prefix("crio-") {
            full_id(id).map(|id| (Runtime::Crio, id))
        } else if let Some(id) = full_id(part) {
            // A bare id: its parent says whose (cgroupfs drivers).
            match i.checked_sub(1).map(|p| parts[p]) {
                Some("docker") => Some((Runtime::Docker, id)),
                Some("libpod_parent") => Some((Runtime::Podman, id)),
                Some(parent) if pod_uid_of(parent).is_some() => Some((Runtime::Cri, id)),
                _ => None,
            }
        } else {
            None
        };
        if let Some((runtime, id)) = found {
            return Some(ContainerRef {
                runtime,
                id,
                pod_uid: pod_uid.clone(),
            });
        }
    }
    None
}

/// The innermost systemd service of a path, skipping the per-user manager (`user@1000.service`
/// holds a whole login session, not one program).
fn unit_of_path(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|p| p.ends_with(".service") && !p.starts_with("user@"))
        .map(str::to_string)
}

/// A 64-hex-digit container id, as every runtime here uses.
fn full_id(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// The pod UID in `pod<UID>` (cgroupfs driver) or `kubepods-<qos>-pod<UID>.slice` (systemd
/// driver, which writes the UID's dashes as underscores).
fn pod_uid_of(part: &str) -> Option<String> {
    let part = part.strip_suffix(".slice").unwrap_or(part);
    let at = part.rfind("pod")?;
    if at > 0 && !part[..at].ends_with('-') {
        return None;
    }
    let uid = part[at + 3..].replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    ok.then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c0d1e4b5a69788776655443322110ffeeddccbbaa998877665544332211";
    const UID: &str = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";

    fn container(text: &str) -> ContainerRef {
        match parse_cgroup(text) {
            Some(Origin::Container(c)) => c,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn runtime(text: &str) -> Runtime {
        let c = container(text);
        assert_eq!(c.id, ID, "{text}");
        c.runtime
    }

    #[test]
    fn docker_under_every_driver_and_layout() {
        // cgroup v2, systemd driver (the default on current Docker).
        assert_eq!(
            runtime(&format!("0::/system.slice/docker-{ID}.scope\n")),
            Runtime::Docker
        );
        // v2, cgroupfs driver.
        assert_eq!(runtime(&format!("0::/docker/{ID}\n")), Runtime::Docker);
        // v1: every controller line names it; the v2 line of a hybrid host is the root.
        let v1 = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(runtime(&v1), Runtime::Docker);
        // A container that made cgroups of its own (systemd inside).
        let nested = format!("0::/system.slice/docker-{ID}.scope/init.scope\n");
        assert_eq!(runtime(&nested), Runtime::Docker);
    }

    #[test]
    fn podman_cgroupfs_and_systemd() {
        // What this project's machines show (cgroupfs manager, DESIGN.md).
        assert_eq!(
            runtime(&format!("0::/libpod_parent/libpod-{ID}\n")),
            Runtime::Podman
        );
        assert_eq!(
            runtime(&format!("0::/machine.slice/libpod-{ID}.scope/container\n")),
            Runtime::Podman
        );
        // Rootless Podman, under the user's manager.
        let rootless = format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n"
        );
        assert_eq!(runtime(&rootless), Runtime::Podman);
        // conmon is the monitor, not the container: its unit is what is left.
        let conmon = format!("0::/machine.slice/libpod-conmon-{ID}.scope\n");
        assert_eq!(parse_cgroup(&conmon), None);
    }

    #[test]
    fn kubernetes_pods_under_both_drivers() {
        let underscored = UID.replace('-', "_");
        // containerd, systemd driver.
        let c = container(&format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope\n"
        ));
        assert_eq!(
            (c.runtime, c.id.as_str(), c.pod_uid.as_deref()),
            (Runtime::Containerd, ID, Some(UID))
        );
        // CRI-O, systemd driver, guaranteed QoS (no QoS slice).
        let c = container(&format!(
            "0::/kubepods.slice/kubepods-pod{underscored}.slice/crio-{ID}.scope\n"
        ));
        assert_eq!(
            (c.runtime, c.pod_uid.as_deref()),
            (Runtime::Crio, Some(UID))
        );
        // cgroupfs driver, v1: the runtime is not in the path.
        let c = container(&format!(
            "4:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{ID}\n"
        ));
        assert_eq!((c.runtime, c.pod_uid.as_deref()), (Runtime::Cri, Some(UID)));
        // Docker as the Kubernetes runtime (dockershim / cri-dockerd, systemd driver).
        let c = container(&format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{underscored}.slice/docker-{ID}.scope\n"
        ));
        assert_eq!(
            (c.runtime, c.pod_uid.as_deref()),
            (Runtime::Docker, Some(UID))
        );
    }

    #[test]
    fn systemd_units_outside_containers() {
        assert_eq!(
            parse_cgroup("0::/system.slice/nginx.service\n"),
            Some(Origin::Unit("nginx.service".into()))
        );
        assert_eq!(
            parse_cgroup(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n"
            ),
            Some(Origin::Unit("foo.service".into()))
        );
        // The per-user manager alone is a session, not a service.
        assert_eq!(
            parse_cgroup("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n"),
            None
        );
        // Hybrid: v1 names the unit, v2 is the root.
        assert_eq!(
            parse_cgroup("1:name=systemd:/system.slice/sshd.service\n0::/\n"),
            Some(Origin::Unit("sshd.service".into()))
        );
    }

    #[test]
    fn malformed_and_hostile_text_is_nothing_not_a_panic() {
        for text in [
            "",
            "garbage",
            "0::",
            "::::",
            "0::/docker/short",
            "0::/docker-XYZ.scope",
            "0::/kubepods/podnot-a-uid/abc",
            &format!("0::/kubepods/pod{UID}/{}", &ID[..63]),
            "0::/\u{1b}[2J.service/../..",
            "0::/docker-\u{0}\u{0}.scope",
        ] {
            let _ = parse_cgroup(text);
        }
        assert_eq!(parse_cgroup("0::/docker/short"), None);
        assert_eq!(
            parse_cgroup(&format!("0::/elsewhere/{ID}")),
            None,
            "a bare id needs a known parent"
        );
    }
}
