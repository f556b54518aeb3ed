//! DNS over UDP with our own receive loop: a few tasks share the socket, each receiving into
//! its own buffer, answering through the same `Handler` as TCP and sending the answer
//! straight back. hickory-server's `Server` spawns a task and routes the answer through a
//! channel for every datagram; that was most of the CPU an answer cost (benches/README.md).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::Handler;

/// Largest datagram read; EDNS clients advertise up to 4096 and queries are far smaller.
const RECV_BUFFER: usize = 4096;

#[derive(Clone)]
struct Responder {
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for Responder {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut buf = Vec::with_capacity(512);
        let info = {
            let mut enc = BinEncoder::new(&mut buf);
            // RFC 1035 §4.2.1: 512 octets without OPT, else the size the OPT advertises.
            enc.set_max_size(response.edns().map_or(512, |e| e.max_payload()));
            response.destructive_emit(&mut enc)?
        };
        self.socket.send_to(&buf, self.peer).await.map_err(|e| NetError::from(e.to_string()))?;
        Ok(info)
    }
}

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
                let responder = Responder { socket: socket.clone(), peer };
                handler.handle_request::<_, TokioTime>(&request, responder).await;
            }
            Err(_) => {
                if let Some(reply) = super::tcp::formerr(raw) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        }
    }
}
