//! Process scanning through `/proc`: fd walks and the socket inode → owner map.

pub mod cgroup;
pub mod container;
pub mod discover;
pub mod fdwalk;
pub mod growth;
pub mod kinds;
pub mod model;
pub mod namespaces;
pub mod owners;
pub mod procfile;
pub mod rank;
pub mod report;
pub mod spread;
pub mod unreadable;
pub mod usage;
