//! The API's HTTP/1.1 listener: our own accept loop around hyper, so that every connection
//! is bounded. Connections are capped in all and per client address (past either, 503 and
//! closed at once); headers must arrive within the header timeout, which also closes idle
//! keep-alive connections; a response the client does not read times out; bodies have their
//! own timeout where they are read (`extract::read_body`). On shutdown the listener closes,
//! each connection finishes its request in flight, and stragglers are cut at the grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ApiConfig;
use crate::listener::{Caps, Refused, WriteDeadline};

/// Largest request head hyper buffers; the request-id layer answers 431 well below it.
const MAX_HEAD: usize = 64 * 1024;

/// Serves `app` on `listener` until `stop` turns true, then drains for up to `grace`.
pub async fn serve(listener: TcpListener, app: Router, config: &ApiConfig, mut stop: watch::Receiver<bool>) {
    let caps = Caps::new(config.max_connections, config.max_connections_per_address);
    let header_timeout = Duration::from_secs(config.header_read_timeout_secs);
    let write_timeout = Duration::from_secs(config.write_timeout_secs);
    let mut connections = JoinSet::new();
    let refusers = Arc::new(Semaphore::new(REFUSERS));
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: let some close before trying again.
                tracing::warn!(error = %e, "api accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%peer, ?why, "api connection refused at its cap");
                if let Ok(permit) = refusers.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream, why).await;
                        drop(permit);
                    });
                }
                continue;
            }
        };
        let (app, stop) = (app.clone(), stop.clone());
        connections.spawn(async move {
            connection(stream, peer, app, header_timeout, write_timeout, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(left = connections.len(), "api connections still open after the grace period; closing them");
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, app: Router, header_timeout: Duration, write_timeout: Duration, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteDeadline::new(stream, write_timeout));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true).max_buf_size(MAX_HEAD);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "api connection ended");
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Tells a connection over a cap why it is closed. The answer fits in a fresh socket's
/// buffer; the request is read (a little, briefly) only so that closing does not reset the
/// connection before the client has read the answer. At most `REFUSERS` such goodbyes run at
/// once; past that a connection is closed without one.
async fn refuse(mut stream: TcpStream, why: Refused) {
    let message = match why {
        Refused::Total => "the server has as many connections as it serves; retry shortly",
        Refused::Client => "this address has as many connections open as one client may; close some or retry shortly",
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body = serde_json::json!({ "error": { "status": 503, "code": "too_many_connections", "message": message, "request_id": id } }).to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if stream.try_write(format!("{head}{body}").as_bytes()).is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(250), stream.read(&mut sink)).await;
}

/// Refused connections said goodbye to at once.
const REFUSERS: usize = 64;
