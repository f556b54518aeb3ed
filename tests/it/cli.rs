//! The real `ipx` binary: operator commands with and without a running server, and the
//! first start of a new data directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::helpers::{answers, query, udp_query};

fn ipx(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("IPX_LOG")
        .current_dir(data.parent().unwrap())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

struct Server {
    child: Child,
    dns: SocketAddr,
    api: SocketAddr,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ipx serve` on port 0 and reads the bound addresses from its log.
fn serve(data: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipx"))
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
        .env("IPX_LOG", "info")
        .current_dir(data.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut dns, mut api) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(a) = line.split("dns listening on ").nth(1) {
            dns = a.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        if let Some(a) = line.split("api listening on http://").nth(1) {
            api = a.split_whitespace().next().map(|a| a.parse().unwrap());
        }
        // "serving" is logged after the demo banner went to stdout.
        if line.contains("serving") || Instant::now() > deadline {
            break;
        }
    }
    let mut stdout = Vec::new();
    let out = BufReader::new(child.stdout.take().unwrap());
    // The demo banner, if any, is printed before the listeners come up.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        stdout.push(line);
    }
    Server {
        child,
        dns: dns.expect("dns address logged"),
        api: api.expect("api address logged"),
        stdout,
    }
}

#[test]
fn operator_commands_work_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, _) = ipx(&data, &["team", "create", "acme"]);
    assert!(ok);
    let team_id = out.trim();
    assert!(uuid::Uuid::try_parse(team_id).is_ok(), "prints the UUID: {out:?}");
    let (ok, _, err) = ipx(&data, &["team", "create", "acme"]);
    assert!(!ok && err.contains("exists"));
    let (ok, out, _) = ipx(
        &data,
        &[
            "token", "create", "--team", team_id, "--name", "ci", "--scope", "dns:read",
        ],
    );
    assert!(ok);
    let secret = out.lines().last().unwrap();
    assert!(secret.starts_with("ipxapi_"));
    let (ok, list, _) = ipx(&data, &["token", "list", "--team", "acme"]);
    assert!(ok);
    assert!(
        list.contains("\tci\t") && !list.contains(secret),
        "never the secret: {list}"
    );
    let token_id = list.split('\t').next().unwrap();
    assert!(ipx(&data, &["token", "revoke", token_id]).0);
    assert!(ipx(&data, &["token", "list", "--team", "acme"]).1.contains("revoked"));
    let (ok, _, err) = ipx(
        &data,
        &[
            "token",
            "create",
            "--team",
            "acme",
            "--name",
            "x",
            "--scope",
            "dns:admin",
        ],
    );
    assert!(!ok && err.contains("dns:admin"));
    let (ok, _, err) = ipx(&data, &["token", "list", "--team", "nobody"]);
    assert!(!ok && err.contains("nobody"));
}

#[test]
fn zone_delete_works_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(ipx(&data, &["team", "create", "acme"]).0);
    for name in ["one.test", "two.test"] {
        let file = dir.path().join(format!("{name}.zone"));
        let text = format!(
            "$ORIGIN {name}.\n@ 3600 IN SOA ns1.{name}. h.{name}. 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
        );
        std::fs::write(&file, text).unwrap();
        assert!(ipx(&data, &["zone", "import", file.to_str().unwrap(), "--team", "acme"]).0);
    }
    let (ok, out, err) = ipx(&data, &["zone", "delete", "one.test"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("deleted zone ") && out.contains("(one.test)"), "{out}");
    let (ok, _, err) = ipx(&data, &["zone", "export", "one.test"]);
    assert!(!ok && err.contains("no zone"), "{err}");
    let (ok, _, err) = ipx(&data, &["zone", "delete", "one.test"]);
    assert!(!ok && err.contains("no zone \"one.test\""), "{err}");
    let (ok, _, err) = ipx(&data, &["zone", "delete", "not a name"]);
    assert!(!ok && err.contains("no zone"), "{err}");
    assert!(ipx(&data, &["zone", "export", "two.test"]).0, "the other zone stays");
    let (ok, _, err) = ipx(&data, &["zone", "secondaries", "two.test"]);
    assert!(!ok && err.contains("no server runs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_serve_imports_the_demo_zones_and_operator_commands_go_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = tokio::task::spawn_blocking({
        let data = data.clone();
        move || serve(&data)
    })
    .await
    .unwrap();
    let token = server
        .stdout
        .iter()
        .find(|l| l.starts_with("ipxapi_"))
        .expect("demo token printed")
        .clone();
    let m = udp_query(server.dns, &query("www.example.test.", RecordType::A, true)).await;
    assert_eq!(
        answers(&m),
        ["example.test. A 192.0.2.10", "www.example.test. CNAME example.test."]
    );
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{}/healthz", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let zones: serde_json::Value = client
        .get(format!("http://{}/v1/zones", server.api))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(zones["meta"]["pagination"]["total"], 2);

    // The server holds the database: these go through its socket.
    let d = data.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || ipx(&d, &["team", "create", "ops"]))
        .await
        .unwrap();
    assert!(ok, "{err}");
    assert!(uuid::Uuid::try_parse(out.trim()).is_ok());
    let zone_file = dir.path().join("ops.test.zone");
    std::fs::write(&zone_file, "$ORIGIN ops.test.\n@ 600 IN SOA ns1.ipx.test. h.ipx.test. 42 1 2 3 4\n@ 600 IN NS ns1.ipx.test.\nhost 600 IN A 192.0.2.77\n").unwrap();
    let d = data.clone();
    let f = zone_file.to_str().unwrap().to_string();
    let (ok, _, err) = tokio::task::spawn_blocking(move || ipx(&d, &["zone", "import", &f, "--team", "ops"]))
        .await
        .unwrap();
    assert!(ok, "{err}");
    let m = udp_query(server.dns, &query("host.ops.test.", RecordType::A, true)).await;
    assert_eq!(answers(&m), ["host.ops.test. A 192.0.2.77"]);
    let d = data.clone();
    let (ok, exported, _) = tokio::task::spawn_blocking(move || ipx(&d, &["zone", "export", "ops.test"]))
        .await
        .unwrap();
    assert!(ok);
    assert!(
        exported.contains("ops.test.\t600\tIN\tSOA\tns1.ipx.test. h.ipx.test. 42 1 2 3 4"),
        "{exported}"
    );
    assert!(
        exported.contains("host.ops.test.\t600\tIN\tA\t192.0.2.77"),
        "{exported}"
    );
    let soa = udp_query(server.dns, &query("ops.test.", RecordType::SOA, true)).await;
    assert_eq!(
        soa.answers[0].to_string().split_whitespace().nth(6),
        Some("42"),
        "the file's serial is kept"
    );
    let d = data.clone();
    let (ok, out, _) =
        tokio::task::spawn_blocking(move || ipx(&d, &["token", "create", "--team", "ops", "--name", "live"]))
            .await
            .unwrap();
    assert!(ok);
    let secret = out.lines().last().unwrap().to_string();
    let who: serde_json::Value = client
        .get(format!("http://{}/v1/whoami", server.api))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["data"]["team"]["name"], "ops");
    let token_id = who["data"]["token"]["id"].as_str().unwrap().to_string();
    let d = data.clone();
    assert!(
        tokio::task::spawn_blocking(move || ipx(&d, &["token", "revoke", &token_id]))
            .await
            .unwrap()
            .0
    );
    let who = client
        .get(format!("http://{}/v1/whoami", server.api))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 401, "revocation through the CLI takes effect at once");
}

#[test]
fn a_data_dir_made_by_the_cli_gets_no_demo_zones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(ipx(&data, &["team", "create", "acme"]).0);
    let server = serve(&data);
    assert!(
        !server.stdout.iter().any(|l| l.starts_with("ipxapi_")),
        "no demo token: {:?}",
        server.stdout
    );
}

#[test]
fn serve_check_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, _) = ipx(&data, &["serve", "--check", "--dns-listen", "127.0.0.1:9953"]);
    assert!(ok);
    assert!(out.contains("127.0.0.1:9953"));
    assert!(out.contains("127.0.0.1:8080"));
    assert!(!data.exists(), "a check creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(ipx(&data, &["team", "create", "acme"]).0);
    let (_, out, _) = ipx(&data, &["token", "create", "--team", "acme", "--name", "t"]);
    let token = out.lines().last().unwrap().to_string();
    let d = data.clone();
    let mut server = tokio::task::spawn_blocking(move || serve(&d)).await.unwrap();
    let client = reqwest::Client::new();
    let api = server.api;
    let zone: serde_json::Value = client
        .post(format!("http://{api}/v1/zones"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "crash.test" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let zone_id = zone["data"]["id"].as_str().unwrap().to_string();
    let mut writes = Vec::new();
    for i in 0..50 {
        let (client, token, zone_id) = (client.clone(), token.clone(), zone_id.clone());
        writes.push(tokio::spawn(async move {
            client
                .post(format!("http://{api}/v1/zones/{zone_id}/records"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "name": format!("n{i}"), "type": "A", "content": "192.0.2.1" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    // Kill once some writes were answered and others are still in flight: every 201 must
    // be on disk afterwards.
    while !writes.iter().take(5).all(|w| w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for (i, w) in writes.into_iter().enumerate() {
        if w.await.unwrap() == 201 {
            acknowledged.push(i);
        }
    }
    assert!(acknowledged.len() >= 5, "some writes were acknowledged before the kill");
    let d = data.clone();
    let server = tokio::task::spawn_blocking(move || serve(&d)).await.unwrap();
    for i in acknowledged {
        let m = udp_query(server.dns, &query(&format!("n{i}.crash.test."), RecordType::A, true)).await;
        assert_eq!(m.answers.len(), 1, "acknowledged write n{i} survived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_kill_dash_nine_runs_again_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let script = dir.path().join("slow.sh");
    let log = dir.path().join("runs.log");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat >/dev/null\necho run >> {}\nsleep 2\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("config.toml"), // picked up from the working directory
        format!(
            "[hosting]\nprovisioner = \"exec\"\nexec_command = [\"{}\"]\n",
            script.display()
        ),
    )
    .unwrap();
    assert!(ipx(&data, &["team", "create", "acme"]).0);
    let token = ipx(&data, &["token", "create", "--team", "acme", "--name", "t"])
        .1
        .lines()
        .last()
        .unwrap()
        .to_string();
    let d = data.clone();
    let mut server = tokio::task::spawn_blocking(move || serve(&d)).await.unwrap();
    let client = reqwest::Client::new();
    let r: serde_json::Value = client
        .post(format!("http://{}/v1/sites", server.api))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "domain": "killed.test" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["data"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("run") {
        assert!(Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let d = data.clone();
    let server = tokio::task::spawn_blocking(move || serve(&d)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s: serde_json::Value = client
            .get(format!("http://{}/v1/sites/{id}", server.api))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["data"]["status"] == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "never resumed: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        2,
        "ran once, killed, ran again"
    );
    let m = udp_query(server.dns, &query("killed.test.", RecordType::A, true)).await;
    assert_eq!(m.answers.len(), 1);
}
