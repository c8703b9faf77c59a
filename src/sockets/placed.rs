//! A row of a listing that may span the node: the socket (or listener) itself, the namespace
//! and container it lives in (`--all-netns`), and its owners with their own containers.
//! Without a place or owners to add, it serializes exactly as the item alone.

use serde::ser::{Serialize, Serializer};

use crate::procs::container::Container;
use crate::scope::{NetnsRef, Where};

/// A process holding a socket, with the container it runs in (`--all-netns -p`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    pub pid: u32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// `item` with where it lives and who holds it. `owners`, when given, replace the item's own
/// `processes` in JSON (the item's are then left empty by the caller).
pub struct Placed<'a, T> {
    pub item: &'a T,
    pub place: Option<&'a Where>,
    pub owners: Option<&'a [Owner]>,
}

impl<'a, T> Placed<'a, T> {
    pub fn bare(item: &'a T) -> Placed<'a, T> {
        Placed {
            item,
            place: None,
            owners: None,
        }
    }
}

#[derive(serde::Serialize)]
struct Flat<'a, T> {
    #[serde(flatten)]
    item: &'a T,
    netns: &'a NetnsRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<&'a [Owner]>,
}

impl<T: Serialize> Serialize for Placed<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.place {
            // The common case costs nothing: the item as it is.
            None if self.owners.is_none() => self.item.serialize(s),
            place => {
                #[derive(serde::Serialize)]
                struct NoPlace<'a, T> {
                    #[serde(flatten)]
                    item: &'a T,
                    processes: Option<&'a [Owner]>,
                }
                match place {
                    Some(p) => Flat {
                        item: self.item,
                        netns: &p.netns,
                        container: p.container.as_ref(),
                        processes: self.owners,
                    }
                    .serialize(s),
                    None => NoPlace {
                        item: self.item,
                        processes: self.owners,
                    }
                    .serialize(s),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::cgroup::Runtime;

    #[derive(serde::Serialize)]
    struct Item {
        port: u16,
    }

    #[test]
    fn adds_the_place_and_owners_only_when_known() {
        let item = Item { port: 80 };
        assert_eq!(
            serde_json::to_string(&Placed::bare(&item)).unwrap(),
            r#"{"port":80}"#
        );
        let place = Where {
            netns: NetnsRef {
                inode: 7,
                name: Some("web".into()),
                host: false,
            },
            container: Some(Container {
                runtime: Runtime::Podman,
                id: "abc".into(),
                name: Some("api".into()),
                pod: None,
                pod_namespace: None,
            }),
        };
        let owners = [Owner {
            pid: 12,
            name: "nginx".into(),
            container: None,
        }];
        let row = Placed {
            item: &item,
            place: Some(&place),
            owners: Some(&owners),
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"port":80,"netns":{"inode":7,"name":"web","host":false},"container":{"runtime":"podman","id":"abc","name":"api"},"processes":[{"pid":12,"name":"nginx"}]}"#
        );
    }
}
