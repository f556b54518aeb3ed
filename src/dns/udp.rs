//! DNS over UDP with our own receive loop: a few tasks share the socket, each receiving into
//! its own buffer, answering through the same `Handler` as TCP and sending the answer
//! straight back. hickory-server's `Server` spawns a task and routes the answer through a
//! channel for every datagram; that was most of the CPU an answer cost (benches/README.md).

use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::Handler;
use super::respond::Responder;

/// Largest datagram read; EDNS clients advertise up to 4096 and queries are far smaller.
const RECV_BUFFER: usize = 4096;

/// Serves `socket` with `workers` receive loops until the task is dropped.
pub async fn serve(socket: UdpSocket, handler: Handler, workers: usize) {
    let (socket, handler) = (Arc::new(socket), Arc::new(handler));
    let mut loops = JoinSet::new();
    for _ in 0..workers.max(1) {
        loops.spawn(receive(socket.clone(), handler.clone()));
    }
    while loops.join_next().await.is_some() {}
}

async fn receive(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        if peer.port() == 0 {
            continue; // nowhere to answer
        }
        let raw = &buf[..n];
        match Request::from_bytes(raw.to_vec(), peer, Protocol::Udp) {
            Ok(request) => {
                handler
                    .handle(&request, &mut Responder::udp(socket.clone(), peer))
                    .await;
            }
            Err(_) => {
                if let Some(reply) = super::tcp::formerr(raw) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        }
    }
}
