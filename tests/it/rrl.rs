//! Response rate limiting: a flood from one prefix is cut to the rate (amplification gone),
//! other prefixes and TCP are served fully, and a real recursive resolver behind the limit
//! loses no answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::helpers::{TestApp, query, spawn_app_with, tcp_query};
use crate::interop::free_port;

async fn rrl_app(rate: u32) -> TestApp {
    let app = spawn_app_with(|c, _| {
        c.rrl.enabled = true;
        c.rrl.responses_per_second = rate;
        c.rrl.slip = 2;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "rrl.test").await;
    for i in 0..15 {
        let r = app
            .record(&token, &zone, "big", "TXT", &format!("{i:02}{}", "y".repeat(50)))
            .await;
        assert_eq!(r.status, 201);
    }
    app
}

/// Sends `n` copies of a query from a socket bound to `from` and counts what comes back:
/// (full answers, truncated answers, bytes received).
async fn flood(from: &str, to: SocketAddr, name: &str, rtype: RecordType, n: usize) -> (usize, usize, usize) {
    flood_with(from, to, query(name, rtype, true), n).await
}

/// `flood` with a query of one's own.
async fn flood_with(from: &str, to: SocketAddr, mut q: Message, n: usize) -> (usize, usize, usize) {
    let sock = UdpSocket::bind(format!("{from}:0")).await.unwrap();
    for i in 0..n {
        q.metadata.id = i as u16;
        sock.send_to(&q.to_vec().unwrap(), to).await.unwrap();
    }
    let (mut full, mut truncated, mut bytes) = (0, 0, 0);
    let mut buf = vec![0u8; 65_535];
    while let Ok(Ok(len)) = tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
        bytes += len;
        let m = Message::from_vec(&buf[..len]).expect("every answer sent is well-formed");
        if m.metadata.truncation {
            assert!(
                m.answers.is_empty() && m.edns.is_some(),
                "a slipped answer carries no records and keeps OPT"
            );
            truncated += 1;
        } else {
            full += 1;
        }
    }
    (full, truncated, bytes)
}

#[tokio::test]
async fn a_flood_from_one_prefix_is_cut_to_the_rate_and_others_are_answered_in_full() {
    let app = rrl_app(20).await;
    let started = Instant::now();
    let (full, truncated, bytes) = flood("127.0.0.1", app.dns_addr(), "big.rrl.test.", RecordType::TXT, 400).await;
    let seconds = started.elapsed().as_secs() as usize + 1;
    assert!(full <= 20 * seconds, "{full} full answers in {seconds} s at 20/s");
    assert!(truncated >= 100, "every second answer past the rate slips: {truncated}");
    assert!(full + truncated < 400, "the rest are dropped");
    // ~1 KB answers for ~40-byte queries: the flood reflects far fewer bytes than it asked for.
    assert!(bytes < 400 * 1_000 / 4, "{bytes} bytes reflected for 400 queries");

    let (other, tc, _) = flood("127.0.1.1", app.dns_addr(), "big.rrl.test.", RecordType::TXT, 15).await;
    assert_eq!((other, tc), (15, 0), "another /24 is not limited");
    let m = tcp_query(app.dns_addr(), &query("big.rrl.test.", RecordType::TXT, true)).await;
    assert_eq!(m.answers.len(), 15, "TCP is never limited");
    let (slipped, dropped) = app.running.as_ref().unwrap().rrl.as_ref().unwrap().counts();
    assert!(slipped >= truncated as u64 && dropped > 0);
}

#[tokio::test]
async fn refusals_for_names_we_do_not_serve_are_limited_too() {
    let app = rrl_app(10).await;
    let (full, truncated, _) = flood("127.0.0.1", app.dns_addr(), "victim.example.", RecordType::ANY, 100).await;
    assert!(
        full <= 20 && truncated > 0 && full + truncated < 100,
        "{full} {truncated}"
    );
}

struct Unbound {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The unbound binary, or `None` (test skipped) where it is not installed; CI installs it.
fn unbound_bin() -> Option<&'static str> {
    const UNBOUND: &str = "/usr/sbin/unbound";
    if std::path::Path::new(UNBOUND).exists() {
        return Some(UNBOUND);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install unbound (apt-get install unbound)"
    );
    eprintln!("skipped: {UNBOUND} not installed");
    None
}

fn start_unbound(bin: &str, dir: &std::path::Path, stub: SocketAddr) -> Unbound {
    let port = free_port();
    let conf = dir.join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  \
             do-not-query-localhost: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  \
             use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  num-threads: 1\n  so-reuseport: no\n  \
             qname-minimisation: no\n  module-config: \"iterator\"\n  harden-referral-path: no\n  \
             infra-keep-probing: yes\n  local-zone: \"test.\" nodefault\n\
             stub-zone:\n  name: \"rrl.test\"\n  stub-addr: {ip}@{sport}\n",
            dir = dir.display(),
            ip = stub.ip(),
            sport = stub.port()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Unbound {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_resolver_behind_the_default_limits_gets_every_answer() {
    let Some(bin) = unbound_bin() else { return };
    // The defaults, as shipped: 200 answers per second per prefix and kind, slip 2.
    let app = spawn_app_with(|c, _| c.rrl = ipx::config::Config::defaults().rrl).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "rrl.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "192.0.2.80").await.status, 201);
    let resolver = start_unbound(bin, app.dir(), app.dns_addr());
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..100 {
        let probe = query("www.rrl.test.", RecordType::A, true);
        sock.send_to(&probe.to_vec().unwrap(), resolver.addr).await.unwrap();
        let mut buf = [0u8; 4096];
        if tokio::time::timeout(Duration::from_millis(100), sock.recv(&mut buf))
            .await
            .is_ok()
        {
            break;
        }
    }
    // ~400 questions a second for 3 s, each a name the resolver has not seen, mostly names
    // that do not exist: one NXDOMAIN budget for the zone, which they overrun.
    let total = 1200;
    let mut asked: HashMap<u16, String> = HashMap::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let recv_sock = std::sync::Arc::new(sock);
    let reader = recv_sock.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.recv(&mut buf).await {
            if let Ok(m) = Message::from_vec(&buf[..n]) {
                let _ = tx.send((m.metadata.id, m.metadata.response_code, m.answers.len()));
            }
        }
    });
    let started = Instant::now();
    for i in 0..total {
        let name = if i % 10 == 0 {
            "www.rrl.test.".to_string()
        } else {
            format!("nx{i}.rrl.test.")
        };
        let mut q = query(&name, RecordType::A, true);
        q.metadata.id = i as u16;
        q.metadata.recursion_desired = true;
        recv_sock.send_to(&q.to_vec().unwrap(), resolver.addr).await.unwrap();
        asked.insert(i as u16, name);
        let due = started + Duration::from_micros(2_500 * (i as u64 + 1));
        tokio::time::sleep_until(due.into()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut wrong = Vec::new();
    while !asked.is_empty() {
        let Ok(Some((id, rcode, answers))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let Some(name) = asked.remove(&id) else { continue };
        let expected = if name.starts_with("www") {
            (ResponseCode::NoError, 1)
        } else {
            (ResponseCode::NXDomain, 0)
        };
        if (rcode, answers) != expected {
            wrong.push(format!("{name}: {rcode:?} with {answers} answers"));
        }
    }
    let (slipped, dropped) = app.running.as_ref().unwrap().rrl.as_ref().unwrap().counts();
    assert!(
        slipped > 0,
        "the resolver's questions overran the NXDOMAIN budget (dropped {dropped})"
    );
    assert!(
        asked.is_empty() && wrong.is_empty(),
        "{} unanswered, {} wrong: {:?}",
        asked.len(),
        wrong.len(),
        wrong.iter().take(5).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn identity_answers_are_rate_limited_like_any_other() {
    let app = spawn_app_with(|c, _| {
        c.rrl.enabled = true;
        c.rrl.responses_per_second = 20;
        c.rrl.slip = 2;
        c.dns.identity = "x".repeat(255);
        c.dns.nsid = "n".repeat(128);
    })
    .await;
    let mut q = query("id.server.", RecordType::TXT, true);
    q.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let nsid = hickory_proto::rr::rdata::opt::EdnsOption::Unknown(3, Vec::new());
    q.edns.as_mut().unwrap().options_mut().insert(nsid);
    let started = Instant::now();
    let (full, truncated, bytes) = flood_with("127.0.0.1", app.dns_addr(), q, 400).await;
    let seconds = started.elapsed().as_secs() as usize + 1;
    assert!(full <= 20 * seconds, "{full} identity answers in {seconds} s at 20/s");
    assert!(truncated >= 100, "{truncated} slipped");
    assert!(bytes < 400 * 450 / 3, "{bytes} bytes reflected for 400 queries");
}
