//! Where an encoded response goes: a UDP peer, a TCP connection's writer, or a buffer
//! (`Handler::answer`). One `ResponseHandler` for all three, so encoding and its size rules
//! live in one place.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Clone)]
pub(crate) enum Sink {
    Udp(Arc<UdpSocket>, SocketAddr),
    Tcp(mpsc::Sender<Vec<u8>>),
    Collect(Arc<Mutex<Vec<Vec<u8>>>>),
}

#[derive(Clone)]
pub(crate) struct Responder {
    sink: Sink,
    /// Cut at the advertised size (RFC 1035 §4.2.1: 512 without OPT), else 65,535.
    udp: bool,
}

impl Responder {
    pub(crate) fn udp(socket: Arc<UdpSocket>, peer: SocketAddr) -> Self {
        Responder { sink: Sink::Udp(socket, peer), udp: true }
    }

    pub(crate) fn tcp(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Responder { sink: Sink::Tcp(tx), udp: false }
    }

    /// Keeps responses in memory, sized as `udp` says; `taken` reads them back.
    pub(crate) fn collect(udp: bool) -> Self {
        Responder { sink: Sink::Collect(Arc::default()), udp }
    }

    pub(crate) fn taken(&self) -> Vec<Vec<u8>> {
        match &self.sink {
            Sink::Collect(out) => std::mem::take(&mut *out.lock().expect("collect lock")),
            _ => Vec::new(),
        }
    }
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
            enc.set_max_size(if self.udp { response.edns().map_or(512, |e| e.max_payload()) } else { u16::MAX });
            response.destructive_emit(&mut enc)?
        };
        match &self.sink {
            Sink::Udp(socket, peer) => {
                socket.send_to(&buf, *peer).await.map_err(|e| NetError::from(e.to_string()))?;
            }
            Sink::Tcp(tx) => tx.send(buf).await.map_err(|_| NetError::from("connection closed"))?,
            Sink::Collect(out) => out.lock().expect("collect lock").push(buf),
        }
        Ok(info)
    }
}
