//! The HTTP listener under slowloris and friends: slow headers, slow bodies, huge declared
//! bodies, clients that never read, and more connections than a client may hold.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, connect_from, spawn_app_with};

fn api(app: &TestApp) -> SocketAddr {
    app.running.as_ref().unwrap().api_addr
}

/// Reads what the server sends until it closes (or `limit` passes): the status line's code.
async fn status_of(stream: &mut TcpStream, limit: Duration) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Whether the server has closed the connection (EOF or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn get_healthz(from: &str, to: SocketAddr) -> Option<u16> {
    let mut s = connect_from(from, to).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    status_of(&mut s, Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_connections_are_capped_per_address_and_in_all() {
    let app = spawn_app_with(|c, _| {
        c.api.header_read_timeout_secs = 1;
        c.api.max_connections_per_address = 4;
        c.api.max_connections = 6;
    })
    .await;
    let addr = api(&app);
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from("127.0.0.1", addr).await;
        s.write_all(b"GET /v1/zones HTTP/1.1\r\nhost: x\r\n").await.unwrap(); // never finishes
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get_healthz("127.0.0.1", addr).await,
        Some(503),
        "a fifth connection from one address"
    );
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.2", addr).await;
        s.write_all(b"GET /v1/zones HTTP/1.1\r\n").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get_healthz("127.0.0.3", addr).await,
        Some(503),
        "past the total cap, anyone is refused"
    );

    // While HTTP is full, DNS over TCP and the operator socket still answer.
    app.team("acme", &[]).await;
    let m = app.tcp("nothing.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, hickory_proto::op::ResponseCode::Refused);

    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(4)).await,
            "a slow header must not hold a connection"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(
        get_healthz("127.0.0.1", addr).await,
        Some(200),
        "the places are free again"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = spawn_app_with(|c, _| c.api.header_read_timeout_secs = 1).await;
    let mut s = connect_from("127.0.0.1", api(&app)).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert_eq!(status_of(&mut s, Duration::from_secs(2)).await, Some(200));
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "idle after its answer, the connection closes"
    );
}

#[tokio::test]
async fn a_slow_body_gets_408_and_a_huge_declared_body_413_before_it_is_sent() {
    let app = spawn_app_with(|c, _| c.api.body_read_timeout_secs = 1).await;
    let token = app.team("acme", &[]).await;
    let addr = api(&app);
    let mut s = connect_from("127.0.0.1", addr).await;
    let head = format!(
        "POST /v1/zones HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"na"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    assert_eq!(status_of(&mut s, Duration::from_secs(5)).await, Some(408));
    assert!(started.elapsed() < Duration::from_secs(3));

    let mut s = connect_from("127.0.0.1", addr).await;
    let head = format!(
        "POST /v1/zones HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        status_of(&mut s, Duration::from_secs(5)).await,
        Some(413),
        "refused on the header alone"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        closed_within(&mut s, Duration::from_secs(2)).await,
        "and the connection is not kept for the body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_responses_loses_the_connection() {
    let app = spawn_app_with(|c, _| {
        c.api.write_timeout_secs = 1;
        c.api.max_connections_per_address = 1;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "big.test").await;
    let creates: Vec<_> = (0..1000)
        .map(|i| serde_json::json!({ "name": format!("h{i}"), "type": "TXT", "content": "x".repeat(200) }))
        .collect();
    let r = app
        .post(
            &token,
            &format!("/v1/zones/{zone}/records/batch"),
            serde_json::json!({ "creates": creates }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let addr = api(&app);
    // Pipelined requests for ~300 KB each, never read: the server's writes stall.
    // From an address of its own: the test's HTTP client keeps its connections from 127.0.0.1.
    let mut stuck = connect_from("127.0.0.5", addr).await;
    let one =
        format!("GET /v1/zones/{zone}/records?limit=1000 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n");
    for _ in 0..40 {
        if tokio::time::timeout(Duration::from_millis(200), stuck.write_all(one.as_bytes()))
            .await
            .is_err()
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get_healthz("127.0.0.5", addr).await,
        Some(503),
        "the stuck connection holds the address's one place"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        get_healthz("127.0.0.5", addr).await,
        Some(200),
        "after the write timeout the place is free"
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_total_cap_the_longest_waiting_connection_makes_room_for_a_new_client() {
    let app = spawn_app_with(|c, _| {
        c.api.header_read_timeout_secs = 30;
        c.api.max_connections = 4;
    })
    .await;
    let addr = api(&app);
    let mut slow = Vec::new();
    for i in 0..4 {
        let mut s = connect_from(&format!("127.0.1.{}", i + 1), addr).await;
        s.write_all(b"GET /v1/zones HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get_healthz("127.0.2.1", addr).await,
        Some(503),
        "nobody has waited a second yet: refused"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut newcomers = Vec::new();
    for i in 0..3 {
        // Kept open (keep-alive), so each newcomer needs a place of its own.
        let mut s = connect_from(&format!("127.0.2.{}", i + 2), addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        assert_eq!(
            status_of(&mut s, Duration::from_secs(2)).await,
            Some(200),
            "a slow connection made room"
        );
        newcomers.push(s);
    }
    let mut closed = 0;
    for s in &mut slow {
        closed += usize::from(closed_within(s, Duration::from_millis(300)).await);
    }
    assert_eq!(
        closed, 3,
        "one slow connection closed per newcomer, the rest left alone"
    );
}
