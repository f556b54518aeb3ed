//! Observability: `/metrics` counts exactly the traffic sent, labels stay bounded whatever a
//! client sends, `/healthz` and `/readyz` say what a load balancer needs, and every API
//! request logs one line that carries its ids and never a secret.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::helpers::{Scrape, query, spawn_app, spawn_app_with, tcp_query, udp_query, udp_raw};

const UDP_A_NOERROR: &str = "ipx_dns_responses_total{proto=\"udp\",type=\"A\",rcode=\"NOERROR\"}";

/// Every series of `after` minus `before`, for the series named.
fn moved(before: &Scrape, after: &Scrape, series: &str) -> f64 {
    after.value(series) - before.value(series)
}

#[tokio::test]
async fn dns_counters_move_by_exactly_the_queries_sent() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "count.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "192.0.2.1").await.status, 201);
    let before = app.scrape().await;
    for _ in 0..7 {
        assert_eq!(app.udp("www.count.test.", RecordType::A).await.answers.len(), 1);
    }
    for _ in 0..3 {
        let m = app.udp("nope.count.test.", RecordType::AAAA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    for _ in 0..2 {
        let m = app.tcp("elsewhere.example.", RecordType::MX).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }
    // A type with no series of its own, and a message that does not parse.
    let _ = udp_query(
        app.dns_addr(),
        &query("www.count.test.", RecordType::Unknown(4242), true),
    )
    .await;
    let _ = udp_raw(app.dns_addr(), &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]).await;
    let after = app.scrape().await;

    assert_eq!(moved(&before, &after, UDP_A_NOERROR), 7.0);
    assert_eq!(
        moved(&before, &after, "ipx_dns_requests_total{proto=\"udp\",type=\"A\"}"),
        7.0
    );
    let nx = "ipx_dns_responses_total{proto=\"udp\",type=\"AAAA\",rcode=\"NXDOMAIN\"}";
    assert_eq!(moved(&before, &after, nx), 3.0);
    let refused = "ipx_dns_responses_total{proto=\"tcp\",type=\"MX\",rcode=\"REFUSED\"}";
    assert_eq!(moved(&before, &after, refused), 2.0);
    let other = "ipx_dns_requests_total{proto=\"udp\",type=\"other\"}";
    assert_eq!(moved(&before, &after, other), 2.0);
    let formerr = "ipx_dns_responses_total{proto=\"udp\",type=\"other\",rcode=\"FORMERR\"}";
    assert_eq!(moved(&before, &after, formerr), 1.0, "the message that does not parse");
    let udp_count = "ipx_dns_request_duration_seconds_count{proto=\"udp\"}";
    let udp_total: f64 = ["A", "AAAA", "other"]
        .iter()
        .map(|t| {
            moved(
                &before,
                &after,
                &format!("ipx_dns_requests_total{{proto=\"udp\",type=\"{t}\"}}"),
            )
        })
        .sum();
    assert_eq!(moved(&before, &after, udp_count), udp_total, "every answer is timed");
    assert_eq!(
        moved(&before, &after, "ipx_dns_request_duration_seconds_count{proto=\"tcp\"}"),
        2.0
    );
    let fast = "ipx_dns_request_duration_seconds_bucket{proto=\"udp\",le=\"1\"}";
    assert_eq!(moved(&before, &after, fast), udp_total, "all under a second");
}

#[tokio::test]
async fn api_counters_use_route_templates_and_move_by_exactly_the_requests_sent() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "api.test").await;
    let before = app.scrape().await;
    for _ in 0..4 {
        assert_eq!(app.get(&token, "/v1/zones").await.status, 200);
    }
    assert_eq!(app.get(&token, &format!("/v1/zones/{zone}")).await.status, 200);
    let missing = uuid::Uuid::new_v4();
    assert_eq!(app.get(&token, &format!("/v1/zones/{missing}")).await.status, 404);
    assert_eq!(app.get("", "/v1/zones").await.status, 401);
    assert_eq!(app.get(&token, "/v1/no/such/route").await.status, 404);
    let after = app.scrape().await;

    let series = |route: &str, status: u16| {
        format!("ipx_api_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}}")
    };
    assert_eq!(moved(&before, &after, &series("/v1/zones", 200)), 4.0);
    assert_eq!(moved(&before, &after, &series("/v1/zones", 401)), 1.0);
    assert_eq!(moved(&before, &after, &series("/v1/zones/{zone_id}", 200)), 1.0);
    assert_eq!(moved(&before, &after, &series("/v1/zones/{zone_id}", 404)), 1.0);
    assert_eq!(moved(&before, &after, &series("unmatched", 404)), 1.0);
    let timed = "ipx_api_request_duration_seconds_count{method=\"GET\",route=\"/v1/zones\"}";
    assert_eq!(moved(&before, &after, timed), 5.0);
    assert!(!after.0.contains(&missing.to_string()), "no id ever becomes a label");
}

#[tokio::test]
async fn commits_publishes_and_what_the_store_holds_are_measured() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "store.test").await;
    let before = app.scrape().await;
    for i in 0..5 {
        assert_eq!(
            app.record(&token, &zone, &format!("h{i}"), "A", "192.0.2.1")
                .await
                .status,
            201
        );
    }
    let after = app.scrape().await;
    let commits = moved(&before, &after, "ipx_store_commit_duration_seconds_count");
    assert!((1.0..=5.0).contains(&commits), "{commits} commits for 5 writes");
    assert_eq!(
        moved(&before, &after, "ipx_store_commit_writes_sum"),
        5.0,
        "every write sits in exactly one commit"
    );
    assert_eq!(
        moved(&before, &after, "ipx_dns_snapshot_publish_duration_seconds_count"),
        commits
    );
    assert_eq!(after.value("ipx_store_commit_failures_total"), 0.0);
    assert_eq!(after.value("ipx_zones"), 1.0);
    assert_eq!(after.value("ipx_records"), 7.0, "two apex NS and the five A");
    assert_eq!(after.value("ipx_teams"), 1.0);
    let serial = app.get(&token, &format!("/v1/zones/{zone}")).await.data()["serial"]
        .as_f64()
        .unwrap();
    assert_eq!(after.value("ipx_zone_serial{zone=\"store.test\"}"), serial);
    assert_eq!(after.value("ipx_zone_records{zone=\"store.test\"}"), 7.0);
    assert_eq!(after.value("ipx_ready"), 1.0);
    assert!(after.value("process_resident_memory_bytes") > 0.0);
    assert!(after.value("process_cpu_seconds_total") > 0.0);
}

#[tokio::test]
async fn provisioning_jobs_are_counted_as_they_end_and_shown_while_open() {
    let app = spawn_app_with(|c, dir| {
        let script = dir.join("provision.sh");
        let started = dir.join("started");
        std::fs::write(
            &script,
            format!(
                "#!/usr/bin/env bash\ninput=$(cat)\ncase \"$input\" in\n  *'\"domain\":\"fail'*) echo '{{\"error\":\"no\"}}'; exit 1 ;;\n  *'\"domain\":\"slow'*) touch {}; sleep 2 ;;\nesac\nexit 0\n",
                started.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        c.hosting.provisioner = ipx::config::ProvisionerKind::Exec;
        c.hosting.exec_command = vec![script.display().to_string()];
    })
    .await;
    let token = app.team("acme", &[]).await;
    let site = |domain: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let r = app.post(token, "/v1/sites", json!({ "domain": domain })).await;
            assert_eq!(r.status, 202, "{}", r.body);
            r.id()
        }
    };
    let good = site("good.test").await;
    app.wait_site(&token, &good, |s| s["status"] == "active").await;
    let bad = site("fail.test").await;
    app.wait_site(&token, &bad, |s| s["status"] == "failed").await;
    let slow = site("slow.test").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.dir().join("started").exists() {
        assert!(Instant::now() < deadline, "the slow step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = app.scrape().await;
    assert_eq!(s.value("ipx_jobs_finished_total{step=\"create\",state=\"done\"}"), 1.0);
    assert_eq!(
        s.value("ipx_jobs_finished_total{step=\"create\",state=\"failed\"}"),
        1.0
    );
    assert_eq!(s.value("ipx_jobs_open{step=\"create\",state=\"running\"}"), 1.0);
    assert!(s.0.contains("\nipx_jobs_oldest_open_age_seconds "));
    app.wait_site(&token, &slow, |s| s["status"] == "active").await;
    let s = app.scrape().await;
    assert_eq!(s.value("ipx_jobs_finished_total{step=\"create\",state=\"done\"}"), 2.0);
    assert_eq!(s.series("ipx_jobs_open"), 0);
    assert_eq!(s.value("ipx_jobs_oldest_open_age_seconds"), 0.0);
}

#[tokio::test]
async fn per_zone_series_stop_past_the_configured_number_of_zones() {
    let app = spawn_app_with(|c, _| c.metrics.per_zone_series_limit = 2).await;
    let token = app.team("acme", &[]).await;
    for name in ["a.test", "b.test"] {
        app.zone(&token, name).await;
    }
    assert_eq!(app.scrape().await.series("ipx_zone_serial"), 2);
    app.zone(&token, "c.test").await;
    let s = app.scrape().await;
    assert_eq!(s.series("ipx_zone_serial"), 0, "past the limit, totals only");
    assert_eq!(s.value("ipx_zones"), 3.0);
}

#[tokio::test]
async fn hostile_queries_and_paths_cannot_make_new_series() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let flood = |round: u16| {
        let (app, token) = (&app, &token);
        async move {
            for i in round * 100..round * 100 + 50 {
                let q = query("x.example.", RecordType::Unknown(1000 + i), false);
                let _ = udp_raw(app.dns_addr(), &q.to_vec().unwrap()).await;
                let r = app.get(token, &format!("/v1/zones/{i}/records/x{i}y")).await;
                assert_eq!(r.status, 404);
                let r = app
                    .get(token, &format!("/{i}/{}", "z".repeat(usize::from(i % 97))))
                    .await;
                assert_eq!(r.status, 404);
                let r = app.call("PROPFIND", token, &format!("/v1/zones?{i}"), None).await;
                assert_eq!(r.status, 405);
            }
        }
    };
    flood(1).await;
    let first = app.scrape().await;
    flood(2).await;
    let second = app.scrape().await;
    let series = |s: &Scrape| s.0.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        series(&first),
        series(&second),
        "a second flood of new names adds no series"
    );
    assert!(!second.0.contains("zzz") && !second.0.contains("PROPFIND") && !second.0.contains("1042"));
    assert_eq!(
        second.value("ipx_dns_requests_total{proto=\"udp\",type=\"other\"}"),
        100.0
    );
}

#[tokio::test]
async fn rrl_and_zone_transfer_outcomes_are_counted() {
    let app = spawn_app_with(|c, _| {
        c.rrl.enabled = true;
        c.rrl.responses_per_second = 2;
        c.rrl.slip = 2;
        c.dns.allow_transfer = vec!["127.0.0.2".into()];
    })
    .await;
    let token = app.team("acme", &[]).await;
    app.zone(&token, "xfr.test").await;
    let before = app.scrape().await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut q = query("xfr.test.", RecordType::SOA, true);
    for i in 0..10 {
        q.metadata.id = i;
        sock.send_to(&q.to_vec().unwrap(), app.dns_addr()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From an address allowed to transfer, and from one that is not.
    let allowed = crate::helpers::connect_from("127.0.0.2", app.dns_addr()).await;
    let records = axfr(allowed, "xfr.test.").await;
    assert!(records >= 3, "SOA, NS…, SOA");
    let refused = tcp_query(app.dns_addr(), &query("xfr.test.", RecordType::AXFR, false)).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let after = app.scrape().await;
    let (slipped, dropped) = app.running.as_ref().unwrap().rrl.as_ref().unwrap().counts();
    assert!(
        slipped + dropped >= 7,
        "past 2 a second: {slipped} slipped, {dropped} dropped"
    );
    assert_eq!(after.value("ipx_dns_rrl_slipped_total"), slipped as f64);
    assert_eq!(after.value("ipx_dns_rrl_dropped_total"), dropped as f64);
    let unanswered = "ipx_dns_responses_total{proto=\"udp\",type=\"SOA\",rcode=\"none\"}";
    assert_eq!(
        moved(&before, &after, unanswered),
        dropped as f64,
        "a dropped answer is a request left unanswered"
    );
    assert_eq!(
        after.value("ipx_dns_transfers_total{type=\"AXFR\",outcome=\"complete\"}"),
        1.0
    );
    assert_eq!(
        after.value("ipx_dns_transfers_total{type=\"AXFR\",outcome=\"refused\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_secondary_counts_as_behind_from_a_change_until_it_transfers_the_new_serial() {
    // The secondary: a socket that hears NOTIFY (and does not answer), transferring from
    // the same address.
    let secondary = tokio::net::UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let notify_at = secondary.local_addr().unwrap();
    let app = spawn_app_with(|c, _| {
        c.dns.also_notify = vec![notify_at];
        c.dns.allow_transfer = vec!["127.0.0.0/8".into()];
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "sec.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "192.0.2.1").await.status, 201);
    let behind = format!("ipx_dns_secondary_zones_behind{{secondary=\"{notify_at}\"}}");
    let lag = format!("ipx_dns_secondary_lag_seconds{{secondary=\"{notify_at}\"}}");
    let (behind, lag) = (behind.as_str(), lag.as_str());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = app.scrape().await;
    assert_eq!(s.value(behind), 1.0);
    assert!(s.value(lag) > 0.0);
    // Another address transferring does not count for it.
    axfr(
        crate::helpers::connect_from("127.0.0.4", app.dns_addr()).await,
        "sec.test.",
    )
    .await;
    assert_eq!(app.scrape().await.value(behind), 1.0);
    axfr(
        crate::helpers::connect_from("127.0.0.3", app.dns_addr()).await,
        "sec.test.",
    )
    .await;
    let s = app.scrape().await;
    assert_eq!((s.value(behind), s.value(lag)), (0.0, 0.0), "current again");
    assert!(s.value("ipx_dns_transfers_total{type=\"AXFR\",outcome=\"complete\"}") >= 2.0);
    drop(secondary);
}

/// Runs an AXFR on `stream` and returns the records received.
async fn axfr(mut stream: tokio::net::TcpStream, zone: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bytes = query(zone, RecordType::AXFR, false).to_vec().unwrap();
    stream.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut records = 0;
    let mut soas = 0;
    while soas < 2 {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await.unwrap();
        let m = hickory_proto::op::Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        records += m.answers.len();
        soas += m.answers.iter().filter(|r| r.record_type() == RecordType::SOA).count();
    }
    records
}

#[tokio::test]
async fn healthz_and_readyz_answer_on_both_listeners_without_a_token() {
    let app = spawn_app().await;
    for base in [app.url(""), app.metrics_url("")] {
        for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
            let r = app.client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{base}{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["data"]["status"], status);
        }
    }
    // The metrics listener serves nothing else, and /metrics is not on the API's.
    let r = app.client.get(app.metrics_url("/v1/zones")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = app.client.post(app.metrics_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(app.get("", "/metrics").await.status, 404);
}

#[tokio::test]
async fn with_an_empty_address_there_is_no_metrics_listener_and_readyz_still_answers() {
    let app = spawn_app_with(|c, _| c.metrics.listen = None).await;
    assert!(app.running.as_ref().unwrap().metrics_addr.is_none());
    assert!(app.running.as_ref().unwrap().metrics.is_none());
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn readyz_turns_503_as_soon_as_the_server_drains() {
    let mut app = spawn_app().await;
    let url = app.metrics_url("/readyz");
    let running = app.running.take().unwrap();
    running.ready.stopping();
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "stopping");
    running.shutdown().await;
}

/// A data directory holding one zone of `records` A records, made offline with the CLI.
fn big_store(dir: &std::path::Path, records: usize) -> std::path::PathBuf {
    let data = dir.join("data");
    let zone = dir.join("big.test.zone");
    let mut text = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300\n@ NS ns1.ipx.test.\n",
    );
    for i in 0..records {
        text.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250 + 1));
    }
    std::fs::write(&zone, text).unwrap();
    let ipx = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    ipx(&["team", "create", "big"]);
    ipx(&["zone", "import", zone.to_str().unwrap(), "--team", "big"]);
    data
}

/// `ipx serve` on port 0, its stderr read line by line by a thread.
struct Served {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(data: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipx"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--dns-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("IPX_DEMO_ENABLED", "false")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line holding `what`, within 60 s.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    }

    fn address(&self, listener: &str) -> String {
        let line = self.wait_for(&format!("{listener} listening on "));
        let at = line.split(&format!("{listener} listening on ")).nth(1).unwrap();
        let at = at.trim_start_matches("http://");
        at[..at.find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(at.len())].to_string()
    }
}

#[tokio::test]
async fn readyz_is_503_until_the_snapshots_are_built() {
    let dir = tempfile::tempdir().unwrap();
    let data = big_store(dir.path(), 60_000);
    let server = Served::start(&data, &[]);
    let metrics = server.address("metrics");
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("http://{metrics}{path}"));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["fields"]["waiting_for"][0], "snapshots");
    assert_eq!(get("/healthz").await.0, 200, "alive while it loads");
    server.address("api");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_api_request_logs_one_json_line_with_its_ids_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create", "--team", "acme", "--name", "ci"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "no such team yet");
    for args in [
        &["team", "create", "acme"][..],
        &["token", "create", "--team", "acme", "--name", "ci"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        if args[0] == "token" {
            std::fs::write(
                dir.path().join("token"),
                String::from_utf8(out.stdout).unwrap().lines().last().unwrap(),
            )
            .unwrap();
        }
    }
    let token = std::fs::read_to_string(dir.path().join("token"))
        .unwrap()
        .trim()
        .to_string();
    let server = Served::start(&data, &[("IPX_LOG_FORMAT", "json")]);
    let api = server.address("api");
    let whoami = serde_json::from_str::<Value>(&server.wait_for("\"serving\"")).unwrap();
    assert_eq!(whoami["level"], "INFO", "every line is a JSON object");
    let client = reqwest::Client::new();
    let url = format!("http://{api}/v1/zones");
    let sent = |request: reqwest::RequestBuilder| async move {
        let r = request.send().await.unwrap();
        r.headers()["x-request-id"].to_str().unwrap().to_string()
    };
    let listed = sent(client.get(&url).bearer_auth(&token)).await;
    let body = json!({ "name": "logged.test" }).to_string();
    let create = client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json");
    let created = sent(create.header("x-request-id", "mine-42").body(body.clone())).await;
    assert_eq!(created, "mine-42");
    let refused = sent(client.get(&url).bearer_auth("ipxapi_wrong")).await;
    let long = sent(
        client
            .get(format!("http://{api}/v1/{}", "a".repeat(6000)))
            .bearer_auth(&token),
    )
    .await;
    // The database file leaves its path: the next write is refused and says why in the log,
    // in a line that carries the request's id.
    std::fs::rename(data.join("ipx.redb"), dir.path().join("moved.redb")).unwrap();
    let lost = json!({ "name": "lost.test" }).to_string();
    let failed = sent(
        client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(lost),
    )
    .await;

    let mut lines = Vec::new();
    while let Ok(line) = server.lines.recv_timeout(Duration::from_millis(1500)) {
        lines.push(line);
    }
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = |id: &str| -> Vec<&Value> {
        parsed
            .iter()
            .filter(|v| v["target"] == "ipx::access" && v["request_id"] == id)
            .collect()
    };
    let principal = parsed
        .iter()
        .find(|v| v["request_id"] == listed.as_str())
        .expect("the list's line");
    for (id, route, status, method) in [
        (&listed, "/v1/zones", 200, "GET"),
        (&created, "/v1/zones", 201, "POST"),
        (&refused, "/v1/zones", 401, "GET"),
        (&failed, "/v1/zones", 503, "POST"),
    ] {
        let found = access(id);
        assert_eq!(found.len(), 1, "one line per request: {found:?}");
        let line = found[0];
        assert_eq!(
            (line["route"].as_str(), line["status"].as_u64(), line["method"].as_str()),
            (Some(route), Some(status), Some(method))
        );
        assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
        assert!(line["bytes"].as_u64().unwrap() > 0);
        assert_eq!(line["client"], "127.0.0.1");
    }
    let long = access(&long);
    assert_eq!((long.len(), long[0]["status"].as_u64()), (1, Some(404)));
    assert!(
        long[0]["path"].as_str().unwrap().chars().count() <= 257,
        "a long path is cut in the log"
    );
    let token_id = principal["token_id"].as_str().expect("the token's id");
    assert!(uuid::Uuid::try_parse(token_id).is_ok());
    assert!(uuid::Uuid::try_parse(principal["team_id"].as_str().unwrap()).is_ok());
    assert!(access(&refused)[0].get("token_id").is_none(), "no principal, no id");
    assert_eq!(access(&created)[0]["request_bytes"].as_u64(), Some(body.len() as u64));
    let caused: Vec<&Value> = parsed
        .iter()
        .filter(|v| v["span"]["request_id"] == failed.as_str())
        .collect();
    assert!(
        caused.iter().any(|v| v["level"] == "ERROR"),
        "the refusal's error line carries the request id: {lines:#?}"
    );
    let secret = token.as_str();
    assert!(
        !lines.iter().any(|l| l.contains(secret)),
        "the token never reaches the log"
    );
    assert!(!lines.iter().any(|l| l.contains(&secret["ipxapi_".len()..][..12])));
}
