//! The API's HTTP/1.1 listener: our own accept loop around hyper, so that every connection
//! is bounded. Connections are capped in all and per client address; past the per-address
//! cap a new connection gets 503 and is closed; at the total cap, the connection that has
//! waited longest for a request (at least a second: a slowloris one, or an idle keep-alive)
//! is closed to make room, and only when none waits does the newcomer get 503. Headers must
//! arrive within the header timeout, which also closes idle keep-alive connections; a
//! response the client does not read times out; bodies have their own timeout where they
//! are read (`extract::read_body`). On shutdown the listener closes, each connection
//! finishes its request in flight, and stragglers are cut at the grace period.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ApiConfig;
use crate::listener::{Caps, Refused, Slot, WriteDeadline};

/// Largest request head hyper buffers; the request-id layer answers 431 well below it.
const MAX_HEAD: usize = 64 * 1024;

/// How long a connection must have waited for a request before it may be closed to make
/// room: a real client's request head arrives within milliseconds of the connection.
const EVICTABLE_AFTER_MS: u64 = 1_000;

/// A connection's state as the accept loop sees it.
struct Tracked {
    /// Milliseconds since `Open::epoch` when it began waiting for a request; `BUSY` while
    /// one runs.
    waiting_since: AtomicU64,
    evict: Notify,
}

const BUSY: u64 = u64::MAX;
/// Told to close: never picked again.
const EVICTED: u64 = u64::MAX - 1;

/// The connections open, to find the one waiting longest for a request.
struct Open {
    epoch: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Tracked>>>,
}

impl Open {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn track(self: &Arc<Self>) -> (u64, Arc<Tracked>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            waiting_since: AtomicU64::new(self.now()),
            evict: Notify::new(),
        });
        self.conns.lock().expect("open connections").insert(id, tracked.clone());
        (id, tracked)
    }

    fn forget(&self, id: u64) {
        self.conns.lock().expect("open connections").remove(&id);
    }

    /// Tells the connection waiting longest for a request (a second or more) to close.
    fn evict_idlest(&self) -> bool {
        let now = self.now();
        let conns = self.conns.lock().expect("open connections");
        let idlest = conns
            .values()
            .map(|c| (c.waiting_since.load(Ordering::Relaxed), c))
            .filter(|(since, _)| *since < EVICTED && now.saturating_sub(*since) >= EVICTABLE_AFTER_MS)
            .min_by_key(|(since, _)| *since);
        let Some((since, victim)) = idlest else { return false };
        // Lost to a request that just started on it: then it is not idle after all.
        if victim
            .waiting_since
            .compare_exchange(since, EVICTED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        victim.evict.notify_one();
        true
    }
}

/// Serves `app` on `listener` until `stop` turns true, then drains for up to `grace`.
pub async fn serve(listener: TcpListener, app: Router, config: &ApiConfig, mut stop: watch::Receiver<bool>) {
    let caps = Caps::new(config.max_connections, config.max_connections_per_address);
    let header_timeout = Duration::from_secs(config.header_read_timeout_secs);
    let write_timeout = Duration::from_secs(config.write_timeout_secs);
    let mut connections = JoinSet::new();
    let refusers = Arc::new(Semaphore::new(REFUSERS));
    let open = Arc::new(Open {
        epoch: Instant::now(),
        next: AtomicU64::new(0),
        conns: Mutex::default(),
    });
    // Connections admitted by making room, back to this loop to be served and drained.
    let (admitted_tx, mut admitted) = mpsc::channel::<(TcpStream, SocketAddr, Slot)>(REFUSERS);
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut stop) => break,
            Some((stream, peer, slot)) = admitted.recv() => {
                spawn_connection(&mut connections, &open, (stream, peer, slot), &app, (header_timeout, write_timeout), &stop);
                continue;
            }
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
                tracing::debug!(%peer, ?why, "api connection at a cap");
                if let Ok(permit) = refusers.clone().try_acquire_owned() {
                    let (caps, open, admitted) = (caps.clone(), open.clone(), admitted_tx.clone());
                    tokio::spawn(async move {
                        match make_room(&caps, &open, peer, why).await {
                            Some(slot) => {
                                let _ = admitted.send((stream, peer, slot)).await;
                            }
                            None => refuse(stream, why).await,
                        }
                        drop(permit);
                    });
                }
                continue;
            }
        };
        spawn_connection(
            &mut connections,
            &open,
            (stream, peer, slot),
            &app,
            (header_timeout, write_timeout),
            &stop,
        );
    }
    drop(listener);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "api connections still open after the grace period; closing them"
        );
    }
}

/// At the total cap, closes the connection waiting longest for a request and takes its
/// place; `None` when there is none to close (or the cap hit is the client's own).
async fn make_room(caps: &Caps, open: &Open, peer: SocketAddr, why: Refused) -> Option<Slot> {
    if why != Refused::Total || !open.evict_idlest() {
        return None;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    loop {
        match caps.admit(peer.ip()) {
            Ok(slot) => return Some(slot),
            Err(Refused::Client) => return None,
            Err(Refused::Total) => {
                if tokio::time::timeout_at(deadline, caps.freed()).await.is_err() {
                    return None;
                }
            }
        }
    }
}

fn spawn_connection(
    connections: &mut JoinSet<()>,
    open: &Arc<Open>,
    (stream, peer, slot): (TcpStream, SocketAddr, Slot),
    app: &Router,
    timeouts: (Duration, Duration),
    stop: &watch::Receiver<bool>,
) {
    let (app, stop, open) = (app.clone(), stop.clone(), open.clone());
    connections.spawn(async move {
        let (id, tracked) = open.track();
        connection(stream, peer, app, timeouts, stop, (&open, &tracked)).await;
        open.forget(id);
        drop(slot);
    });
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    (header_timeout, write_timeout): (Duration, Duration),
    mut stop: watch::Receiver<bool>,
    (open, tracked): (&Arc<Open>, &Arc<Tracked>),
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteDeadline::new(stream, write_timeout));
    let (open_for_service, tracked_for_service) = (open.clone(), tracked.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let (app, open, tracked) = (app.clone(), open_for_service.clone(), tracked_for_service.clone());
        tracked.waiting_since.store(BUSY, Ordering::Relaxed);
        async move {
            let response = app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
            tracked.waiting_since.store(open.now(), Ordering::Relaxed);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = tracked.evict.notified() => {
            tracing::debug!(%peer, "api connection closed to make room: it waited too long for a request");
            return;
        }
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
