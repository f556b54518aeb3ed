//! The data directory against operator mistakes and damage: its modes, a database deleted
//! or replaced under the server, commands that read on a directory with no database, and
//! empty, foreign and corrupted files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::helpers::spawn_app;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn ipx(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipx"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("IPX_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ipx serve` on port 0 that is expected to stop on its own (it cannot start).
fn serve_fails(data: &Path) -> (i32, String) {
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
        .env("IPX_DEMO_ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server started on a file it should have refused");
}

#[tokio::test]
async fn the_data_directory_is_the_owners_alone_and_looser_modes_are_tightened() {
    let mut app = spawn_app().await;
    app.team("acme", &[]).await;
    let data = app.config.store.data_dir.clone();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&app.config.db_path()), 0o600);
    assert_eq!(mode(&app.config.socket_path()), 0o600);
    app.running.take().unwrap().shutdown().await;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(app.config.db_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    // The real binary, to read what it logs.
    let (code, out, err) = ipx(&data, &["team", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme"));
    assert_eq!((mode(&data), mode(&app.config.db_path())), (0o700, 0o600));
    std::fs::set_permissions(app.config.db_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipx"))
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
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    while !log.contains("serving") {
        if std::io::BufRead::read_line(&mut reader, &mut log).unwrap() == 0 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.contains("tightened"),
        "the server says it tightened the modes:\n{log}"
    );
    assert_eq!(mode(&app.config.db_path()), 0o600);
}

#[tokio::test]
async fn a_database_deleted_or_replaced_under_the_server_stops_writes_and_fails_readiness() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "gone.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "192.0.2.1").await.status, 201);
    let copy = app.dir().join("copy.redb");
    std::fs::copy(app.config.db_path(), &copy).unwrap();
    std::fs::remove_file(app.config.db_path()).unwrap();
    let r = app.record(&token, &zone, "after", "A", "192.0.2.2").await;
    assert_eq!((r.status.as_u16(), r.code()), (503, "store_unavailable"), "{}", r.body);
    for url in [app.url("/readyz"), app.metrics_url("/readyz")] {
        let ready = app.client.get(url).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["error"]["code"], "store_unavailable");
    }
    // Alive all the same: a restart would open an empty database in the deleted one's place.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let scrape = app.scrape().await;
    assert_eq!(scrape.value("ipx_ready"), 0.0);
    assert!(
        scrape.value("ipx_store_commit_failures_total") >= 1.0,
        "the refused write counts as a failed commit"
    );
    assert!(
        app.udp("after.gone.test.", RecordType::A).await.answers.is_empty(),
        "the refused write is not served"
    );
    assert_eq!(
        app.udp("www.gone.test.", RecordType::A).await.answers.len(),
        1,
        "what was acknowledged is still served"
    );
    // A file put back in its place is another file: writes stay refused.
    std::fs::rename(&copy, app.config.db_path()).unwrap();
    assert_eq!(app.record(&token, &zone, "later", "A", "192.0.2.3").await.status, 503);
}

#[test]
fn commands_that_only_read_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        &["team", "list"][..],
        &["token", "list", "--team", "x"],
        &["zone", "export", "x.test"],
        &["site", "list", "--team", "x"],
    ] {
        let (code, _, err) = ipx(&data, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains("no database"), "{args:?}: {err}");
        assert!(!data.join("ipx.redb").exists(), "{args:?} made a database");
    }
    let (code, _, err) = ipx(&data, &["team", "create", "acme"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        data.join("ipx.redb").exists(),
        "a command that writes makes one, as before"
    );
}

#[test]
fn empty_and_foreign_files_are_refused_and_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("ipx.redb");
    std::fs::write(&db, b"").unwrap();
    let (code, err) = serve_fails(&data);
    assert_eq!(code, 1);
    assert!(err.contains("empty") && !err.contains("panicked"), "{err}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "not initialised");
    let (code, _, err) = ipx(&data, &["team", "create", "acme"]);
    assert!(code == 1 && err.contains("empty"), "the CLI refuses it too: {err}");

    std::fs::write(&db, "not a database at all\n").unwrap();
    let (code, err) = serve_fails(&data);
    assert!(code == 1 && err.contains("not an ipx database"), "{err}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "not a database at all\n");

    std::fs::remove_file(&db).unwrap();
    {
        let other = redb::Database::create(&db).unwrap();
        let txn = other.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("their_table"))
            .unwrap()
            .insert("k", 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let (code, err) = serve_fails(&data);
    assert!(code == 1 && err.contains("another program"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn a_damaged_database_is_a_clear_error_not_a_panic_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(ipx(&data, &["team", "create", "acme"]).0, 0);
    let zone: String = (0..2000)
        .map(|i| format!("h{i} IN TXT \"{}\"\n", "z".repeat(100)))
        .collect();
    let file = dir.path().join("big.zone");
    std::fs::write(
        &file,
        format!("$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1.x. h.x. 1 2 3 4 5\n@ IN NS ns1.x.\n{zone}"),
    )
    .unwrap();
    let (code, _, err) = ipx(&data, &["zone", "import", file.to_str().unwrap(), "--team", "acme"]);
    assert_eq!(code, 0, "{err}");
    let db = data.join("ipx.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[4096..64 * 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let (code, err) = serve_fails(&data);
    assert_eq!(code, 1);
    assert!(err.contains("damaged") && !err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file is as it was");
    let (code, _, err) = ipx(&data, &["team", "list"]);
    assert!(
        code == 1 && err.contains("damaged") && !err.contains("panicked"),
        "{err}"
    );
}
