//! Names for containers: from a process's cgroup (see [`super::cgroup`]) to the runtime's own
//! metadata files — Docker's `containers/ID/config.v2.json`, Podman's `containers.json`, the OCI
//! bundle `config.json` of containerd and CRI-O with its Kubernetes annotations. Never a
//! runtime API call, so it works with the daemon down; unreadable or malformed metadata gives
//! the id alone (and a note), never an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cgroup::{parse_cgroup, ContainerRef, Origin, Runtime};
use crate::host::Host;

/// A container as shown to the user. `name`, `pod` and `pod_namespace` come from metadata and
/// are untrusted text: escape before printing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub runtime: Runtime,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
}

impl Container {
    /// The first 12 digits of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// Metadata files larger than this are not read (a config.v2.json is a few KiB; a hostile or
/// broken one must not cost the scan its memory).
const MAX_METADATA: u64 = 8 << 20;

/// Looks containers up under a root directory (`/` live; a fixture tree in tests), once each,
/// through the run's host (a snapshot replays the metadata it recorded).
pub struct Attributor<'h> {
    host: &'h dyn Host,
    root: PathBuf,
    cache: HashMap<String, Container>,
    podman_names: Option<HashMap<String, String>>,
    /// What could not be read, for a note on stderr (one per container).
    pub notes: Vec<String>,
}

impl<'h> Attributor<'h> {
    pub fn new(host: &'h dyn Host, root: impl Into<PathBuf>) -> Attributor<'h> {
        Attributor {
            host,
            root: root.into(),
            cache: HashMap::new(),
            podman_names: None,
            notes: Vec::new(),
        }
    }

    /// The container of a process, from the text of its `/proc/PID/cgroup`.
    /// The host it reads container metadata through (callers read cgroups through it too).
    pub fn host(&self) -> &'h dyn Host {
        self.host
    }

    pub fn of_cgroup(&mut self, cgroup: &str) -> Option<Container> {
        match parse_cgroup(cgroup)? {
            Origin::Container(r) => Some(self.lookup(&r)),
            Origin::Unit(_) => None,
        }
    }

    /// Names a container, reading its runtime's metadata the first time.
    pub fn lookup(&mut self, r: &ContainerRef) -> Container {
        if let Some(c) = self.cache.get(&r.id) {
            return c.clone();
        }
        let mut c = Container {
            runtime: r.runtime,
            id: r.id.clone(),
            name: None,
            pod: None,
            pod_namespace: None,
        };
        let found = match r.runtime {
            Runtime::Docker => self.docker(&mut c),
            Runtime::Podman => self.podman(&mut c),
            Runtime::Containerd | Runtime::Crio | Runtime::Cri => self.oci_bundle(&mut c),
        };
        if let Err(why) = found {
            self.notes.push(format!(
                "{} container {}: {why}; shown by id",
                r.runtime.name(),
                c.short_id()
            ));
        }
        self.cache.insert(r.id.clone(), c.clone());
        c
    }

    fn docker(&mut self, c: &mut Container) -> Result<(), String> {
        let path = self
            .root
            .join("var/lib/docker/containers")
            .join(&c.id)
            .join("config.v2.json");
        let v = read_json(self.host, &path)?;
        c.name = v["Name"]
            .as_str()
            .map(|n| n.trim_start_matches('/').to_string());
        kubernetes_labels(c, &v["Config"]["Labels"]);
        Ok(())
    }

    fn podman(&mut self, c: &mut Container) -> Result<(), String> {
        if self.podman_names.is_none() {
            self.podman_names = Some(self.read_podman_names());
        }
        c.name = self
            .podman_names
            .as_ref()
            .and_then(|m| m.get(&c.id).cloned());
        // Pods made by `podman kube play` carry the Kubernetes annotations in the bundle.
        let bundle = self.oci_bundle(c);
        match (&c.name, bundle) {
            (None, Err(why)) => Err(why),
            _ => Ok(()),
        }
    }

    /// Podman's container list (root's storage): id → first name.
    fn read_podman_names(&self) -> HashMap<String, String> {
        let path = self
            .root
            .join("var/lib/containers/storage/overlay-containers/containers.json");
        let mut names = HashMap::new();
        if let Ok(serde_json::Value::Array(list)) = read_json(self.host, &path) {
            for e in list {
                if let (Some(id), Some(name)) = (e["id"].as_str(), e["names"][0].as_str()) {
                    names.insert(id.to_string(), name.to_string());
                }
            }
        }
        names
    }

    /// The OCI runtime bundle's `config.json`, where containerd, CRI-O and Podman keep the
    /// Kubernetes annotations.
    fn oci_bundle(&self, c: &mut Container) -> Result<(), String> {
        let candidates = [
            format!(
                "run/containerd/io.containerd.runtime.v2.task/k8s.io/{}/config.json",
                c.id
            ),
            format!(
                "run/containerd/io.containerd.runtime.v2.task/moby/{}/config.json",
                c.id
            ),
            format!(
                "run/containerd/io.containerd.runtime.v2.task/default/{}/config.json",
                c.id
            ),
            format!(
                "run/containers/storage/overlay-containers/{}/userdata/config.json",
                c.id
            ),
            format!(
                "var/lib/containers/storage/overlay-containers/{}/userdata/config.json",
                c.id
            ),
        ];
        let mut last = "no metadata found".to_string();
        for rel in candidates {
            let path = self.root.join(rel);
            if self.host.stat(&path.to_string_lossy()).is_err() {
                continue;
            }
            match read_json(self.host, &path) {
                Ok(v) => {
                    kubernetes_labels(c, &v["annotations"]);
                    return Ok(());
                }
                Err(why) => last = why,
            }
        }
        Err(last)
    }
}

/// Fills pod, pod namespace and container name from Kubernetes annotations or labels (CRI-O
/// and Docker use `io.kubernetes.pod.*`, containerd `io.kubernetes.cri.*`).
fn kubernetes_labels(c: &mut Container, map: &serde_json::Value) {
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| map[*k].as_str())
            .map(str::to_string)
    };
    if let Some(pod) = get(&["io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name"]) {
        c.pod = Some(pod);
    }
    if let Some(ns) = get(&[
        "io.kubernetes.pod.namespace",
        "io.kubernetes.cri.sandbox-namespace",
    ]) {
        c.pod_namespace = Some(ns);
    }
    if let Some(name) = get(&[
        "io.kubernetes.container.name",
        "io.kubernetes.cri.container-name",
    ]) {
        c.name = Some(name);
    }
}

fn read_json(host: &dyn Host, path: &Path) -> Result<serde_json::Value, String> {
    let shown = path.to_string_lossy();
    let meta = host
        .stat(&shown)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.size > MAX_METADATA {
        return Err(format!(
            "{}: larger than {MAX_METADATA} bytes",
            path.display()
        ));
    }
    let bytes = host
        .read_file(&shown)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not valid JSON ({e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c0d1e4b5a69788776655443322110ffeeddccbbaa998877665544332211";

    fn tree(files: &[(String, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (rel, body) in files {
            let p = d.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        d
    }

    /// A scratch directory removed on drop (std only: no crate for one test helper).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "sockscope-container-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn docker_names_and_kubernetes_labels() {
        let d = tree(&[(
            format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/web","Config":{"Labels":{"io.kubernetes.pod.name":"web-7d9f","io.kubernetes.pod.namespace":"shop","io.kubernetes.container.name":"nginx"}}}"#,
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        let c = a
            .of_cgroup(&format!("0::/system.slice/docker-{ID}.scope"))
            .unwrap();
        assert_eq!(c.runtime, Runtime::Docker);
        assert_eq!(c.name.as_deref(), Some("nginx"));
        assert_eq!(c.pod.as_deref(), Some("web-7d9f"));
        assert_eq!(c.pod_namespace.as_deref(), Some("shop"));
        assert_eq!(c.short_id(), "3f2a9c0d1e4b");
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }

    #[test]
    fn containerd_bundle_annotations() {
        let d = tree(&[(
            format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            r#"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.sandbox-name":"web-7d9f","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.container-name":"nginx"}}"#,
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        let c = a
            .of_cgroup(&format!(
                "0::/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6071_8293_a4b5c6d7e8f9.slice/cri-containerd-{ID}.scope"
            ))
            .unwrap();
        assert_eq!(
            (
                c.runtime,
                c.name.as_deref(),
                c.pod.as_deref(),
                c.pod_namespace.as_deref()
            ),
            (
                Runtime::Containerd,
                Some("nginx"),
                Some("web-7d9f"),
                Some("shop")
            )
        );
    }

    #[test]
    fn crio_bundle_annotations() {
        let d = tree(&[(
            format!("run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.pod.name":"db-0","io.kubernetes.pod.namespace":"data","io.kubernetes.container.name":"postgres"}}"#,
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        let c = a
            .of_cgroup(&format!("0::/kubepods.slice/crio-{ID}.scope"))
            .unwrap();
        assert_eq!(
            (c.runtime, c.name.as_deref(), c.pod.as_deref()),
            (Runtime::Crio, Some("postgres"), Some("db-0"))
        );
    }

    #[test]
    fn podman_names_from_its_container_list() {
        let d = tree(&[(
            "var/lib/containers/storage/overlay-containers/containers.json".to_string(),
            &format!(r#"[{{"id":"{ID}","names":["api"]}},{{"id":"x","names":[]}}]"#),
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        let c = a
            .of_cgroup(&format!("0::/libpod_parent/libpod-{ID}"))
            .unwrap();
        assert_eq!(
            (c.runtime, c.name.as_deref()),
            (Runtime::Podman, Some("api"))
        );
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }

    #[test]
    fn broken_or_missing_metadata_gives_the_id_and_one_note() {
        let d = tree(&[(
            format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/web","Con"#,
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        for _ in 0..3 {
            let c = a.of_cgroup(&format!("0::/docker/{ID}")).unwrap();
            assert_eq!((c.id.as_str(), c.name.as_deref()), (ID, None));
        }
        assert_eq!(a.notes.len(), 1, "once per container: {:?}", a.notes);
        assert!(a.notes[0].contains("not valid JSON"), "{:?}", a.notes);

        let empty = tree(&[]);
        let mut a = Attributor::new(&crate::host::LiveHost, &empty.0);
        let c = a
            .of_cgroup(&format!(
                "0::/kubepods/pod0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9/{ID}"
            ))
            .unwrap();
        assert_eq!((c.runtime, c.name), (Runtime::Cri, None));
        assert!(a.of_cgroup("0::/system.slice/nginx.service").is_none());
    }

    #[test]
    fn hostile_names_are_kept_verbatim_for_the_renderer_to_escape() {
        let d = tree(&[(
            format!("var/lib/docker/containers/{ID}/config.v2.json"),
            "{\"Name\":\"/evil\\u001b[2J\\\"name\"}",
        )]);
        let mut a = Attributor::new(&crate::host::LiveHost, &d.0);
        let c = a.of_cgroup(&format!("0::/docker/{ID}")).unwrap();
        assert_eq!(c.name.as_deref(), Some("evil\u{1b}[2J\"name"));
    }
}
