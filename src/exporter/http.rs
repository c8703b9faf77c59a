//! The exporter's HTTP side: GET `/metrics` and a small `/` page, nothing else, over hyper
//! (HTTP/1 only: request parsing, the 400 for garbage and the header limits are hyper's).
//!
//! Each connection is its own task, so a client that sends nothing or sends slowly waits
//! alone: its headers must arrive within [`HEADER_TIMEOUT`], a connection lives at most
//! [`CONNECTION_LIFETIME`], and at most [`MAX_CONNECTIONS`] are served at once (more are
//! closed at accept). Collection happens on one collector thread (see `server.rs`); a scrape
//! only waits for its answer.

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use super::metrics::Format;
use super::server::Scrapes;

/// A client must send its whole request head within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection (even a busy keep-alive one) is closed after this long; scrapers reconnect.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Request head limit (hyper's minimum buffer): a scrape's request is a few hundred bytes.
const MAX_HEAD: usize = 8192;
const MAX_HEADERS: usize = 32;

const INDEX: &str = "<!doctype html><html><head><title>sockscope exporter</title></head><body>\
<h1>sockscope exporter</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

/// Serves until `stop` resolves (SIGINT or SIGTERM). The listener is already bound (in the
/// namespace the exporter was started in).
pub fn serve(
    listener: StdListener,
    scrapes: Scrapes,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let scrapes = Arc::new(scrapes);
        tokio::pin!(stop);
        loop {
            let (tcp, _) = tokio::select! {
                _ = &mut stop => return Ok(()),
                r = listener.accept() => match r {
                    Ok(c) => c,
                    // EMFILE and the like: wait a little rather than spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(tcp);
                continue;
            };
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let scrapes = scrapes.clone();
                    async move { Ok::<_, Infallible>(answer(req, &scrapes).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEAD)
                    .max_headers(MAX_HEADERS)
                    .serve_connection(TokioIo::new(tcp), svc);
                // Errors are the client's (garbage, a hang-up): hyper has answered or closed.
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
                drop(permit);
            });
        }
    })
}

async fn answer(req: Request<Incoming>, scrapes: &Scrapes) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let format =
                Format::from_accept(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
            match scrapes.scrape(format).await {
                Some(body) => {
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    );
                    r
                }
                None => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the collector thread has stopped\n",
                ),
            }
        }
        "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(INDEX.as_bytes())));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => reply(StatusCode::NOT_FOUND, "not found: try /metrics\n"),
    }
}

fn reply(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
