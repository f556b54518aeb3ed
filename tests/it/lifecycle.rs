//! The process's life as an operator's supervisor sees it: SIGTERM drains, a start that fails
//! leaves nothing behind, configuration errors never echo a secret.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ipx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipx"));
    c.env_remove("IPX_LOG");
    c
}

/// Starts `ipx serve` on port 0 and returns it with its API address, once it is serving.
fn serve(data: &std::path::Path, env: &[(&str, &str)]) -> (Child, SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut child = ipx()
        .arg("--data-dir")
        .arg(data)
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut api = None;
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line.split("api listening on http://").nth(1) {
            api = a.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        if line.contains("serving") {
            break;
        }
        line.clear();
    }
    (child, api.expect("api address logged"), err)
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args(["team", "create", "acme"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create", "--team", "acme", "--name", "t"])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let (mut child, api, mut log) = serve(&data, &[("IPX_DEMO_ENABLED", "false")]);

    // A request whose body is half sent when the signal arrives.
    let body = r#"{"name":"drain.test"}"#;
    let mut conn = TcpStream::connect(api).unwrap();
    write!(conn, "POST /v1/zones HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}", body.len(), &body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(api).is_err(), "no new connections once draining");
    conn.write_all(&body.as_bytes()[5..]).unwrap();
    let mut answer = String::new();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight was answered: {answer}"
    );

    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(0),
        "a drained stop is a clean exit, not death by signal"
    );
    let mut rest = String::new();
    let _ = log.read_to_string(&mut rest);
    assert!(rest.contains("SIGTERM") && rest.contains("stopped"), "{rest}");
    let out = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args(["zone", "export", "drain.test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the acknowledged zone is in the store");
}

#[test]
fn a_start_that_cannot_bind_leaves_no_demo_team_or_token_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().to_string();
    let out = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--api-listen",
            &port,
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("api"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ipxapi_"),
        "no token printed for a start that failed"
    );
    let teams = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args(["team", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&teams.stdout).contains("demo"),
        "no demo team left behind"
    );
    // The next start is still the first: it imports the demo and shows its token.
    let mut child = ipx()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while out.read_line(&mut text).unwrap() > 0 && !text.contains("ipxapi_") {}
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("First start") && text.contains("ipxapi_"), "{text}");
}

#[test]
fn configuration_errors_never_echo_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "c2VjcmV0LWJ5dGVzLWZvci10aGUtY29uZmlnLXRlc3Q=";
    let cases = [
        // A syntax error on the secret's own line.
        format!("[dns]\ntsig_keys = [{{ name = \"k.\", algorithm = \"hmac-sha256\", secret = \"{secret} }}]\n"),
        // A value of the wrong type beside it.
        format!("[dns]\ntsig_keys = [{{ name = \"k.\", algorithm = 5, secret = \"{secret}\" }}]\n"),
        // An unknown key in the same table.
        format!(
            "[dns]\ntsig_keys = [{{ name = \"k.\", algorithm = \"hmac-sha256\", secret = \"{secret}\", extra = 1 }}]\n"
        ),
        // A bad algorithm.
        format!("[dns]\ntsig_keys = [{{ name = \"k.\", algorithm = \"hmac-md5\", secret = \"{secret}\" }}]\n"),
    ];
    for (i, text) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = ipx()
            .arg("--config")
            .arg(&file)
            .args(["serve", "--check"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i} should fail: {err}");
        assert!(!err.contains(&secret[..20]), "case {i} echoes the secret: {err}");
        assert!(
            err.contains("c") && err.len() > 20,
            "case {i} still says what is wrong: {err}"
        );
    }
    // Through the environment too.
    let value = format!("[{{ name = \"k.\", algorithm = 5, secret = \"{secret}\" }}]");
    let out = ipx()
        .env("IPX_DNS_TSIG_KEYS", &value)
        .args(["serve", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!err.contains(&secret[..20]), "{err}");
    let value = format!("[{{ name = \"k.\", algorithm = \"hmac-sha256\", secret = \"{secret}\" ");
    let out = ipx()
        .env("IPX_DNS_TSIG_KEYS", &value)
        .args(["serve", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!err.contains(&secret[..20]), "{err}");
}

/// UDP is served by threads of its own, several sockets sharing the port (`SO_REUSEPORT`): a
/// server dropped without `shutdown` must still stop them and close the port, or they would
/// go on answering from a dead server's zones to whoever is given the port next.
#[tokio::test]
async fn a_dropped_server_stops_answering_and_frees_its_udp_port() {
    let app = crate::helpers::spawn_app_with(|c, _| c.dns.udp_threads = 2).await;
    let addr = app.dns_addr();
    assert!(
        crate::helpers::udp_raw(
            addr,
            &crate::helpers::query("x.test.", hickory_proto::rr::RecordType::A, false)
                .to_vec()
                .unwrap()
        )
        .await
        .is_some(),
        "answered while up"
    );
    drop(app);
    let free = std::net::UdpSocket::bind(addr);
    assert!(free.is_ok(), "the port is free the moment the server is gone: {free:?}");
}
