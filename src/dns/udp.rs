//! DNS over UDP in Knot's shape: one plain thread per core, each with its own `SO_REUSEPORT`
//! socket on the DNS port (the kernel spreads datagrams over them by flow), receiving up to
//! `BATCH` queries with one `recvmmsg` and sending their answers with one `sendmmsg`. No async
//! runtime on this path: a thread answers from the snapshot and goes back to the socket.
//!
//! The threads look at a stop flag between batches; stopping sets it and wakes them with
//! shutdown(2), so `Udp::stop` (or a drop) returns once every thread has let go of the
//! handler and its socket is closed. Messages for the hickory path (UPDATE, NOTIFY,
//! transfers) are answered by tasks on the runtime, so nothing here waits on the store.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{Handler, UdpAnswer};
use crate::metrics::dns::{Proto, Stamp};

/// Messages for the hickory path (UPDATE, NOTIFY, transfers, odd ones) a UDP thread has
/// answered by tasks at once.
const OTHERS_IN_FLIGHT: usize = 64;
/// Datagrams taken per `recvmmsg` and answered per `sendmmsg`.
const BATCH: usize = 32;
/// Largest datagram read; EDNS clients advertise up to 4096 and queries are far smaller.
const RECV_BUFFER: usize = 4096;

/// Binds a UDP socket on `addr` that other sockets of this process may share
/// (`SO_REUSEPORT`); with port 0 the kernel picks one, and more can be bound on it.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket below or closed.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let socket = unsafe { UdpSocket::from_raw_fd(fd) };
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    if addr.is_ipv6() {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    if unsafe { libc::bind(fd, (&raw const storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The running UDP threads.
pub struct Udp {
    stop: Arc<AtomicBool>,
    sockets: Vec<Arc<UdpSocket>>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves each socket (all bound to one address, `bind`) with a thread of its own.
pub fn serve(sockets: Vec<UdpSocket>, handler: Handler) -> io::Result<Udp> {
    let runtime = tokio::runtime::Handle::current();
    let mut udp = Udp {
        stop: Arc::new(AtomicBool::new(false)),
        sockets: sockets.into_iter().map(Arc::new).collect(),
        threads: Vec::new(),
    };
    for (i, socket) in udp.sockets.iter().enumerate() {
        let (socket, handler, stopped, runtime) = (socket.clone(), handler.clone(), udp.stop.clone(), runtime.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ipx-udp-{i}"))
            .spawn(move || {
                receive(&socket, &handler, &stopped, &runtime);
            })?; // the threads already started stop when `udp` drops
        udp.threads.push(thread);
    }
    Ok(udp)
}

impl Udp {
    /// Stops the threads and waits for them (each lets go of the handler, and so of the
    /// store's journal, before this returns).
    pub fn stop(self) {}
}

/// The threads stop, and the sockets close, when the server goes, however it goes: a
/// server dropped without `shutdown` (a test's) must not leave threads answering on a port
/// the next server may be given.
impl Drop for Udp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.sockets {
            // Wakes a thread blocked in recvmmsg (a receive timeout would cost a timer per
            // blocking call); on an unconnected socket Linux answers ENOTCONN but still
            // wakes the readers, and recvmmsg returns at once from then on.
            // SAFETY: shutdown(2) on a descriptor the socket owns until it drops.
            unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RD) };
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One batch's buffers, reused for every batch of the thread.
struct Batch {
    bufs: Vec<[u8; RECV_BUFFER]>,
    addrs: [libc::sockaddr_storage; BATCH],
    iovs: [libc::iovec; BATCH],
    msgs: [libc::mmsghdr; BATCH],
    answers: Vec<Vec<u8>>,
    peers: Vec<SocketAddr>,
    /// Plain queries answered (type, rcode; none when dropped), counted once the batch is sent.
    counted: Vec<(u16, Option<u8>)>,
}

impl Batch {
    fn new() -> Box<Self> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut b = Box::new(Self {
            bufs: vec![[0u8; RECV_BUFFER]; BATCH],
            addrs: unsafe { zeroed() },
            iovs: unsafe { zeroed() },
            msgs: unsafe { zeroed() },
            answers: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            peers: Vec::with_capacity(BATCH),
            counted: Vec::with_capacity(BATCH),
        });
        b.arm();
        b
    }

    /// Points each message at its buffer and address slot, for `recvmmsg`.
    fn arm(&mut self) {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_BUFFER,
            };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&raw mut self.addrs[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &raw mut self.iovs[i];
            hdr.msg_iovlen = 1;
            self.msgs[i].msg_len = 0;
        }
    }
}

fn receive(socket: &Arc<UdpSocket>, handler: &Handler, stop: &AtomicBool, runtime: &tokio::runtime::Handle) {
    let fd = socket.as_raw_fd();
    let others = Arc::new(tokio::sync::Semaphore::new(OTHERS_IN_FLIGHT));
    let mut batch = Batch::new();
    let mut key = super::snapshot::Key::default();
    let metrics = handler.metrics_worker();
    while !stop.load(Ordering::Relaxed) {
        batch.arm();
        // SAFETY: every message points at live buffers of the sizes given (`arm`).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                batch.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) {
                tracing::debug!(error = %e, "udp receive failed");
            }
            continue;
        }
        // One clock read per batch: an answer's latency is from its batch's arrival to the
        // batch's send.
        let arrived = metrics.as_ref().map(|_| Stamp::now());
        let n = n as usize;
        batch.peers.clear();
        batch.counted.clear();
        let mut out = 0;
        for i in 0..n {
            let Some(peer) = from_sockaddr(&batch.addrs[i]).filter(|p| p.port() != 0) else {
                continue; // nowhere to answer
            };
            let len = (batch.msgs[i].msg_len as usize).min(RECV_BUFFER);
            let mut answer = std::mem::take(&mut batch.answers[out]);
            answer.clear();
            let raw = &batch.bufs[i][..len];
            let send = match handler.answer_udp(raw, peer, &mut key, &mut answer) {
                UdpAnswer::Plain { send, qtype } => {
                    batch.counted.push((qtype, send.then(|| answer[3] & 0x0F)));
                    send
                }
                UdpAnswer::Ignore => false,
                // The hickory path may wait on the store (an UPDATE commits): a task answers
                // it, so this thread goes on answering; past the cap, this thread waits
                // for it, which slows whoever sends so many.
                UdpAnswer::Other => match others.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (handler, socket, raw) = (handler.clone(), socket.clone(), raw.to_vec());
                        runtime.spawn(async move {
                            if let Some(reply) = handler.answer_udp_other(raw, peer).await {
                                let _ = socket.send_to(&reply, peer);
                            }
                            drop(permit);
                        });
                        false
                    }
                    Err(_) => match runtime.block_on(handler.answer_udp_other(raw.to_vec(), peer)) {
                        Some(reply) => {
                            answer = reply;
                            true
                        }
                        None => false,
                    },
                },
            };
            batch.answers[out] = answer;
            if send {
                batch.peers.push(peer);
                out += 1;
            }
        }
        send_all(fd, &mut batch, out);
        if let (Some(m), Some(arrived)) = (&metrics, arrived) {
            m.answered_batch(Proto::Udp, &batch.counted, arrived.elapsed_nanos());
        }
    }
}

/// Sends the first `count` answers of the batch to their peers with as few `sendmmsg` as
/// the kernel allows.
fn send_all(fd: RawFd, batch: &mut Batch, count: usize) {
    for i in 0..count {
        let (storage, len) = to_sockaddr(batch.peers[i]);
        batch.addrs[i] = storage;
        batch.iovs[i] = libc::iovec {
            iov_base: batch.answers[i].as_mut_ptr().cast(),
            iov_len: batch.answers[i].len(),
        };
        let hdr = &mut batch.msgs[i].msg_hdr;
        hdr.msg_name = (&raw mut batch.addrs[i]).cast();
        hdr.msg_namelen = len;
        hdr.msg_iov = &raw mut batch.iovs[i];
        hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: messages `sent..count` point at live answers and addresses (above).
        let r = unsafe { libc::sendmmsg(fd, batch.msgs[sent..].as_mut_ptr(), (count - sent) as libc::c_uint, 0) };
        if r <= 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::debug!(error = %e, "udp send failed");
            sent += 1; // skip the one that failed (a peer's ICMP error, a full buffer)
            continue;
        }
        sent += r as usize;
    }
}

fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage; the family's struct fits inside it.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_survive_the_round_trip_through_libc() {
        for a in ["192.0.2.1:53", "[2001:db8::1]:5353", "127.0.0.1:0"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (storage, _) = to_sockaddr(addr);
            assert_eq!(from_sockaddr(&storage), Some(addr));
        }
    }

    #[test]
    fn two_sockets_share_one_port() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = bind(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    }
}
