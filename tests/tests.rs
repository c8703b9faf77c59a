//! All integration tests in one binary (faster to build and link). Live tests run the built
//! binary against real sockets in private network namespaces and need root.

mod support;

mod capture;
mod cli;
mod counters;
mod diag;
mod doctor;
mod explain;
mod exporter;
mod fds;
mod node;
mod schema;
mod snapshot;
mod sockets;
mod ssfilter;
mod states;
mod summary;

/// Entry point of child processes (see `support::child`); a no-op in a normal test run.
#[test]
fn child_main() {
    let Some((role, args)) = support::child::role() else {
        return;
    };
    let handled = sockets::child(&role, &args)
        || doctor::child(&role, &args)
        || fds::child(&role, &args)
        || exporter::child(&role, &args)
        || capture::child(&role, &args)
        || states::child(&role, &args);
    assert!(handled, "unknown child role {role}");
    std::process::exit(0);
}
