//! The collector thread and the handle scrapes use to reach it.
//!
//! One thread owns the [`Collector`] (its owner cache and previous counters) and sits in the
//! namespace being watched (setns moves only the calling thread, so the HTTP side keeps the
//! namespace it was started in). Scrapes queue a request; the thread takes every request
//! waiting, collects once, and answers them all: concurrent scrapes share one collection, and
//! there is no background loop.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::collect::{Collector, Plan, Sample};
use super::metrics::{render, Format};
use crate::host::Host;
use crate::netns::{self, NetnsError, NetnsSpec};

struct Job {
    format: Format,
    reply: oneshot::Sender<String>,
}

/// The scrapes' side of the collector thread.
pub struct Scrapes {
    jobs: mpsc::Sender<Job>,
}

impl Scrapes {
    /// A fresh collection's exposition text; `None` when the collector thread is gone.
    pub async fn scrape(&self, format: Format) -> Option<String> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job { format, reply }).ok()?;
        rx.await.ok()
    }
}

/// Starts the collector thread in `netns` (or the caller's namespace); fails when the
/// namespace cannot be entered.
/// `host` is `'static`: the collector thread serves scrapes until the process ends.
pub fn start(
    host: &'static dyn Host,
    netns: Option<NetnsSpec>,
    plan: Plan,
) -> Result<Scrapes, NetnsError> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            if let Err(e) = netns::enter_opt(host, netns.as_ref()) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            let mut c = Collector::new();
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                let sample = c.collect(host, &plan);
                log_errors(&sample);
                let errors = errors_total(&c);
                let mut texts: Vec<(Format, String)> = Vec::new();
                for job in batch {
                    let text = match texts.iter().find(|(f, _)| *f == job.format) {
                        Some((_, t)) => t.clone(),
                        None => {
                            let t = render(&sample, &errors, job.format);
                            texts.push((job.format, t.clone()));
                            t
                        }
                    };
                    // The scraper may have hung up; nothing to do then.
                    let _ = job.reply.send(text);
                }
            }
        })
        .expect("spawning the collector thread");
    match ready.recv() {
        Ok(Ok(())) => Ok(Scrapes { jobs }),
        Ok(Err(e)) => Err(e),
        Err(_) => unreachable!("the collector thread always reports"),
    }
}

/// The running error counts, in a stable order.
pub fn errors_total(c: &Collector) -> Vec<((&'static str, String), u64)> {
    let mut v: Vec<_> = c
        .errors_total
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    v.sort_unstable();
    v
}

/// A collection error is a metric and a line on stderr; the exporter keeps serving.
pub fn log_errors(s: &Sample) {
    for (what, e) in &s.errors {
        eprintln!("sockscope: exporter: collecting {what} failed: {e}");
    }
    for ns in &s.namespaces {
        for (what, e) in &ns.errors {
            eprintln!(
                "sockscope: exporter: collecting {what} in {} failed: {e}",
                ns.netns
            );
        }
    }
    for n in &s.notes {
        eprintln!("sockscope: exporter: {n}");
    }
}
