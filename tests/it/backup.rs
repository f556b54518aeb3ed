//! `ipx backup` and `ipx restore` with the real binary: a backup taken while writes keep
//! being acknowledged restores every write acknowledged before it began, and a restore
//! refuses what it must (a data directory holding a database, a damaged or foreign file).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::helpers::{TestApp, query, spawn_app, test_config, udp_query};

/// Runs the binary; (success, stdout, stderr).
fn ipx(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn ipx_async(data: PathBuf, args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || ipx(&data, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

/// A zone of `n` A records, imported through the operator socket: something for a backup to
/// take a while over.
async fn bulk(app: &TestApp, name: &str, n: usize) {
    let mut text = format!(
        "$ORIGIN {name}.\n$TTL 300\n@ SOA ns1.ipx.test. hostmaster.ipx.test. 1 7200 3600 1209600 300\n@ NS ns1.ipx.test.\n"
    );
    for i in 0..n {
        text.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250 + 1));
    }
    app.operator(ipx::admin::Command::Zone(ipx::admin::ZoneCmd::Import {
        file: PathBuf::new(),
        team: "acme".into(),
        text: Some(text),
    }))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_backup_taken_during_a_burst_of_writes_restores_every_write_acknowledged_before_it() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "burst.test").await;
    bulk(&app, "bulk.test", 20_000).await;

    // Four clients write as fast as they are answered, each noting when each write was
    // acknowledged.
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/zones/{zone}/records")),
            token.clone(),
        );
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{w}-{i}");
                let body = json!({ "name": name, "type": "A", "content": "192.0.2.9", "ttl": 60 });
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201);
                acked.lock().unwrap().push((name, Instant::now()));
                i += 1;
            }
        }));
    }
    let count = || acked.lock().unwrap().len();
    while count() < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let file = app.dir().join("backups/ipx.backup");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let began = Instant::now();
    let (ok, out, err) = ipx_async(
        app.config.store.data_dir.clone(),
        vec!["backup".into(), file.display().to_string()],
    )
    .await;
    let ended = Instant::now();
    assert!(ok, "{err}");
    assert!(out.contains("and verified"), "{out}");
    let at_end = count();
    while count() < at_end + 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before: Vec<&String> = acked.iter().filter(|(_, at)| *at < began).map(|(n, _)| n).collect();
    let during = acked.iter().filter(|(_, at)| (began..ended).contains(at)).count();
    assert!(during > 0, "writes were acknowledged while the backup ran");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // Restore into a new data directory, with the key file put back apart.
    let restored = app.dir().join("restored");
    let (ok, out, err) = ipx(&restored, &["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("verified"), "{out}");
    assert!(
        out.contains("key file"),
        "the restore says the key file is needed: {out}"
    );
    std::fs::copy(app.config.key_path(), restored.join("key")).unwrap();
    let mut config = test_config(app.dir());
    config.store.data_dir = restored.clone();
    let server = ipx::app::start(config)
        .await
        .expect("the restored data directory serves");

    for name in &before {
        let m = udp_query(
            server.dns_addr,
            &query(&format!("{name}.burst.test."), RecordType::A, true),
        )
        .await;
        assert_eq!(
            m.answers.len(),
            1,
            "{name}, acknowledged before the backup began, is answered"
        );
    }
    // The restored store is one moment of the old one: what it lists, DNS answers, and the
    // token (its hash was backed up) still works.
    let client = reqwest::Client::new();
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("http://{}/v1/zones/{zone}/records?limit=1000{cursor}", server.api_addr);
        let page: serde_json::Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for r in page["data"].as_array().unwrap() {
            listed.push(r["name"].as_str().unwrap().to_string());
        }
        match page["meta"]["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let written: Vec<String> = listed.iter().filter(|n| n.starts_with('w')).cloned().collect();
    assert!(written.len() >= before.len());
    assert!(
        written.len() <= before.len() + during,
        "nothing acknowledged after the backup ended is in it"
    );
    for name in &written {
        let m = udp_query(server.dns_addr, &query(&format!("{name}."), RecordType::A, true)).await;
        assert_eq!(m.answers.len(), 1, "{name}");
    }
    let bulk = udp_query(server.dns_addr, &query("h19999.bulk.test.", RecordType::A, true)).await;
    assert_eq!(bulk.answers.len(), 1);
    server.shutdown().await;
}

/// A backup of a fresh store made without a server; returns (data dir, backup file).
fn offline_backup(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    assert!(ipx(&data, &["team", "create", "acme"]).0);
    let file = dir.join("ipx.backup");
    let (ok, out, err) = ipx(&data, &["backup", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 teams"), "{out}");
    (data, file)
}

#[test]
fn restore_refuses_a_data_directory_that_already_holds_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = offline_backup(dir.path());
    let before = std::fs::read(data.join("ipx.redb")).unwrap();
    let (ok, _, err) = ipx(&data, &["restore", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("already holds a database"), "{err}");
    assert_eq!(std::fs::read(data.join("ipx.redb")).unwrap(), before, "untouched");
    // An empty database file counts too: a restore never replaces any.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("ipx.redb"), b"").unwrap();
    let (ok, _, err) = ipx(&other, &["restore", file.to_str().unwrap()]);
    assert!(!ok && err.contains("already holds a database"), "{err}");
}

#[test]
fn restore_refuses_a_damaged_truncated_or_foreign_file_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = offline_backup(dir.path());
    let good = std::fs::read(&file).unwrap();
    let foreign = dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<'_, &str, &str> = redb::TableDefinition::new("their_stuff");
        txn.open_table(def).unwrap().insert("k", "v").unwrap();
        txn.commit().unwrap();
    }
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    for b in &mut flipped[middle..middle + 64] {
        *b ^= 0xA5;
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped", flipped, "is damaged"),
        ("truncated", good[..good.len() / 3].to_vec(), "is damaged"),
        ("empty", Vec::new(), "not an ipx backup"),
        ("text", b"just some text\n".to_vec(), "not an ipx backup"),
        ("foreign", std::fs::read(&foreign).unwrap(), "another program"),
    ];
    for (name, bytes, says) in cases {
        let bad = dir.path().join(name);
        std::fs::write(&bad, &bytes).unwrap();
        let target = dir.path().join(format!("restore-{name}"));
        let (ok, out, err) = ipx(&target, &["restore", bad.to_str().unwrap()]);
        assert!(!ok, "{name} restored: {out}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!target.exists(), "{name}: nothing left behind");
        assert_eq!(std::fs::read(&bad).unwrap(), bytes, "{name}: the file is never changed");
    }
    let (ok, _, err) = ipx(&dir.path().join("r"), &["restore", "/nonexistent/backup"]);
    assert!(!ok && err.contains("/nonexistent/backup"), "{err}");
}

#[test]
fn a_backup_without_a_server_reads_the_database_and_never_makes_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = offline_backup(dir.path());
    let restored = dir.path().join("restored");
    let (ok, out, err) = ipx(&restored, &["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 teams"), "{out}");
    let (ok, teams, _) = ipx(&restored, &["team", "list"]);
    assert!(ok && teams.contains("acme"), "{teams}");
    assert_eq!(
        std::fs::metadata(&restored).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(restored.join("ipx.redb"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // No database, no backup, and none made.
    let empty = dir.path().join("none");
    let (ok, _, err) = ipx(&empty, &["backup", dir.path().join("x").to_str().unwrap()]);
    assert!(!ok && err.contains("no database"), "{err}");
    assert!(!empty.exists());
    assert!(!dir.path().join("x").exists());
}

#[test]
fn a_failed_backup_leaves_the_previous_one_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = offline_backup(dir.path());
    let previous = std::fs::read(&file).unwrap();
    std::fs::rename(data.join("ipx.redb"), dir.path().join("moved.redb")).unwrap();
    let (ok, _, _) = ipx(&data, &["backup", file.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(std::fs::read(&file).unwrap(), previous);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (ok, _, err) = ipx(&dir.path().join("moved"), &["backup", "/nonexistent/dir/file"]);
    assert!(!ok, "{err}");
}

#[tokio::test]
async fn a_backup_holds_no_secret_in_the_clear() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "secret.test").await;
    let key = app
        .post(
            &token,
            "/v1/tsig-keys",
            json!({ "name": "deploy", "algorithm": "hmac-sha256", "rules": [{ "zone_id": zone }] }),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let tsig = key.data()["secret"].as_str().unwrap().to_string();
    let file = app.dir().join("ipx.backup");
    let (ok, _, err) = ipx_async(
        app.config.store.data_dir.clone(),
        vec!["backup".into(), file.display().to_string()],
    )
    .await;
    assert!(ok, "{err}");
    let bytes = std::fs::read(&file).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(token.as_bytes()), "the token's secret is not in the backup");
    assert!(!contains(&token.as_bytes()["ipxapi_".len()..][..16]));
    let key = std::fs::read_to_string(app.config.key_path()).unwrap();
    let encoded = key
        .lines()
        .find_map(|l| l.strip_prefix("ipx-kek-v1"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !contains(encoded.as_bytes()),
        "the key-encryption key stays out of the backup"
    );
    assert!(
        !contains(tsig.as_bytes()),
        "the TSIG secret is not in the backup, as text"
    );
    let raw = data_encoding::BASE64.decode(tsig.as_bytes()).unwrap();
    assert!(!contains(&raw), "nor as bytes");
    assert!(
        contains(b"acme") && contains(b"deploy"),
        "the backup does hold the store"
    );
}
