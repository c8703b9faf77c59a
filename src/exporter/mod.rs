//! `sockscope exporter`: the signals only sockscope computes, for Prometheus. Collection is
//! one function (`collect.rs`, with the owner cache in `owner_cache.rs`), rendering is the
//! Prometheus client's (`metrics.rs`), the HTTP side is hyper's (`http.rs`), the collector
//! thread sits between them (`server.rs`), and `textfile.rs` writes for node_exporter.

pub mod collect;
pub mod http;
pub mod metrics;
pub mod owner_cache;
pub mod server;
pub mod textfile;
