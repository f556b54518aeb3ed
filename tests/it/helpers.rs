//! `spawn_app()` and typed helpers for API calls and DNS queries.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use ipx::app::Running;
use ipx::config::Config;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub struct TestApp {
    pub running: Option<Running>,
    pub config: Config,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn id(&self) -> String {
        self.body["data"]["id"].as_str().expect("data.id").to_string()
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.store.data_dir = dir.join("data");
    config.dns.listen = "127.0.0.1:0".parse().unwrap();
    config.api.listen = "127.0.0.1:0".parse().unwrap();
    config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    config.demo.enabled = false;
    // Tests burst from loopback; the RRL tests turn it on with their own rates.
    config.rrl.enabled = false;
    // Tests make bursts of calls; the rate-limit tests set their own quotas.
    config.rate_limits.read_per_minute = 1_000_000;
    config.rate_limits.write_per_minute = 1_000_000;
    config.rate_limits.provision_per_minute = 1_000_000;
    config.rate_limits.unauthenticated_per_minute = 1_000_000;
    config.auth.failures_per_minute_per_token = 1_000_000;
    config.auth.failures_per_minute_per_address = 1_000_000;
    config.api.max_connections_per_address = 1000;
    // Never a real CA from a test: SSL without a test CA (tests/it/pebble.rs) or the
    // simulated issuer fails at once, on loopback.
    config.acme.directory = "https://127.0.0.1:1/directory".into();
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// `spawn_app` with a configuration changed by `tweak` (given the temp dir for scripts).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config, &std::path::Path)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config, dir.path());
    let running = ipx::app::start(config.clone()).await.expect("server starts");
    TestApp {
        running: Some(running),
        config,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestApp {
    fn r(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn dns_addr(&self) -> SocketAddr {
        self.r().dns_addr
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Polls a site until `done` says so (or fails the test after 15 s).
    pub async fn wait_site(&self, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.get(token, &format!("/v1/sites/{id}")).await;
            if done(r.data()) {
                return r.data().clone();
            }
            assert!(std::time::Instant::now() < deadline, "site never got there: {}", r.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The metrics listener's address.
    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{}", self.r().metrics_addr.expect("metrics on"), path)
    }

    /// One scrape of `/metrics`.
    pub async fn scrape(&self) -> Scrape {
        let res = self.client.get(self.metrics_url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Scrape(res.text().await.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.r().api_addr, path)
    }

    /// Stops the server and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        self.running.take().unwrap().shutdown().await;
        self.running = Some(ipx::app::start(self.config.clone()).await.expect("server restarts"));
    }

    /// Runs an operator command the way the CLI does while the server runs: over the socket.
    pub async fn operator(&self, command: ipx::admin::Command) -> Result<String, String> {
        let path = self.config.socket_path();
        tokio::task::spawn_blocking(move || ipx::admin::send(&path, &command).map_err(|e| e.to_string()))
            .await
            .unwrap()
    }

    /// A new team and a token for it (all scopes unless some are given).
    pub async fn team(&self, name: &str, scopes: &[&str]) -> String {
        let c = self.config.clone();
        let (name, scopes) = (
            name.to_string(),
            scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        tokio::task::spawn_blocking(move || {
            let send = |cmd| ipx::admin::send(&c.socket_path(), &cmd).unwrap();
            let out = send(ipx::admin::Command::Team(ipx::admin::TeamCmd::List));
            if !out.lines().any(|l| l.split('\t').nth(1) == Some(name.as_str())) {
                send(ipx::admin::Command::Team(ipx::admin::TeamCmd::Create {
                    name: name.clone(),
                }));
            }
            let out = send(ipx::admin::Command::Token(ipx::admin::TokenCmd::Create {
                team: name,
                name: "test".into(),
                scopes,
            }));
            out.lines().last().unwrap().to_string()
        })
        .await
        .unwrap()
    }

    pub async fn call(&self, method: &str, token: &str, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        assert!(
            headers.contains_key("x-request-id"),
            "every response carries X-Request-Id"
        );
        Resp { status, headers, body }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call("GET", token, path, None).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call("POST", token, path, Some(body)).await
    }
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call("PATCH", token, path, Some(body)).await
    }
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call("DELETE", token, path, None).await
    }

    /// Creates a zone and returns its id.
    pub async fn zone(&self, token: &str, name: &str) -> String {
        let r = self.post(token, "/v1/zones", serde_json::json!({ "name": name })).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.id()
    }

    pub async fn record(&self, token: &str, zone: &str, name: &str, rtype: &str, content: &str) -> Resp {
        self.post(
            token,
            &format!("/v1/zones/{zone}/records"),
            serde_json::json!({ "name": name, "type": rtype, "content": content, "ttl": 300 }),
        )
        .await
    }

    pub async fn udp(&self, name: &str, rtype: RecordType) -> Message {
        udp_query(self.dns_addr(), &query(name, rtype, true)).await
    }

    pub async fn tcp(&self, name: &str, rtype: RecordType) -> Message {
        tcp_query(self.dns_addr(), &query(name, rtype, true)).await
    }
}

/// A name from its labels as octets (hickory's text reader refuses some labels DNS allows,
/// such as `-dash`).
pub fn name_of(name: &str) -> Name {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return Name::root();
    }
    let mut n = Name::from_labels(trimmed.split('.').map(str::as_bytes)).unwrap();
    n.set_fqdn(true);
    n
}

pub fn query(name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name_of(name), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 65_535) as u16
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all ours on
/// Linux): how tests play several clients.
pub async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends `bytes` to `addr` from a fresh socket and returns the first datagram from `addr`
/// with the same ID: a stray datagram to a port another test used a moment ago (a late
/// answer, a NOTIFY) is not taken for the answer.
pub async fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) if from == addr && n >= 2 && bytes.len() >= 2 && buf[..2] == bytes[..2] => {
                return Some(buf[..n].to_vec());
            }
            Ok(Ok(_)) => continue,
            _ => return None,
        }
    }
}

pub async fn udp_query(addr: SocketAddr, m: &Message) -> Message {
    let bytes = udp_raw(addr, &m.to_vec().unwrap())
        .await
        .expect("a DNS answer over UDP");
    Message::from_vec(&bytes).expect("answer parses")
}

pub async fn tcp_query(addr: SocketAddr, m: &Message) -> Message {
    exchange(TcpStream::connect(addr).await.unwrap(), m).await
}

/// `tcp_query` when `tcp`, else `udp_query`.
pub async fn query_over(tcp: bool, addr: SocketAddr, m: &Message) -> Message {
    if tcp {
        tcp_query(addr, m).await
    } else {
        udp_query(addr, m).await
    }
}

/// `tcp_query` from the loopback address `from` (see `connect_from`).
pub async fn tcp_query_from(from: &str, addr: SocketAddr, m: &Message) -> Message {
    exchange(connect_from(from, addr).await, m).await
}

/// One message out and one in on a TCP stream.
async fn exchange(mut s: TcpStream, m: &Message) -> Message {
    let bytes = m.to_vec().unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).expect("answer parses")
}

/// The answer section as `name type rdata` lines, sorted.
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

/// A `/metrics` exposition.
pub struct Scrape(pub String);

impl Scrape {
    /// The value of one series, written as in the exposition (`name{labels}`), labels in any
    /// order; 0 when it is absent (series are written once they count something).
    pub fn value(&self, series: &str) -> f64 {
        let (name, labels) = split_series(series);
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (s, v) = l.rsplit_once(' ')?;
                (split_series(s) == (name, labels.clone())).then(|| v.parse::<f64>().expect("a number"))
            })
            .unwrap_or(0.0)
    }

    /// How many series of `name` there are.
    pub fn series(&self, name: &str) -> usize {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#') && split_series(l.rsplit_once(' ').map_or(*l, |p| p.0)).0 == name)
            .count()
    }
}

fn split_series(s: &str) -> (&str, Vec<String>) {
    match s.split_once('{') {
        Some((name, rest)) => {
            let mut labels: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            labels.sort();
            (name, labels)
        }
        None => (s, Vec::new()),
    }
}
