//! ACME clients that solve DNS-01 by RFC 2136: lego (`--dns rfc2136`) and certbot
//! (`--dns-rfc2136`) from Debian obtain a certificate from Debian's pebble, whose DNS lookups
//! reach this test's ipx (`tests/it/pebble.rs`), with a key limited to `_acme-challenge` TXT,
//! run as docs/rfc2136.md says (plus what a test CA needs: its URL and its TLS certificate).

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::clients::{run, tool};
use crate::helpers::{TestApp, spawn_app};
use crate::pebble::pebble;
use crate::tsig_keys::make_key;
use crate::update::Key;

/// A team with `zone` and a key that may only touch `_acme-challenge` TXT there.
async fn acme_key(app: &TestApp, zone: &str, algorithm: &str) -> (String, String, Key) {
    let token = app.team("acme", &[]).await;
    let zone_id = app.zone(&token, zone).await;
    let rules = json!([{ "zone_id": zone_id, "names": ["_acme-challenge"], "types": ["TXT"] }]);
    let body = json!({ "name": "acme", "algorithm": algorithm, "rules": rules });
    let key = make_key(app, &token, body).await;
    (token, zone_id, key)
}

/// The names a PEM certificate is for, as openssl lists them.
async fn names_in(cert: &std::path::Path) -> String {
    let path = cert.to_str().unwrap();
    let (ok, out) = run(
        tool("openssl", "apt-get install openssl"),
        &["x509", "-noout", "-ext", "subjectAltName", "-in", path],
        "",
        &[],
    )
    .await;
    assert!(ok, "{out}");
    out
}

/// The challenge went in and out by UPDATE (two events naming the key), and is gone.
async fn challenge_came_and_went(app: &TestApp, token: &str, key: &Key, zone: &str) {
    let events = app.get(token, "/v1/events?limit=1000").await;
    let updates = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "zone.updated" && e["actor"]["key_id"] == key.id.as_str())
        .count();
    assert_eq!(updates, 2, "added, then removed: {}", events.body);
    let name = format!("_acme-challenge.{zone}.");
    assert!(app.udp(&name, RecordType::TXT).await.answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_obtains_a_certificate_with_its_default_hmac_sha1_and_a_key_for_acme_challenge_txt() {
    let lego = tool("lego", "apt-get install lego");
    let pebble = pebble();
    let app = spawn_app().await;
    let route = pebble.route("lego.test", app.dns_addr());
    let (token, _zone, key) = acme_key(&app, "lego.test", "hmac-sha1").await;
    let dir = tempfile::tempdir().unwrap();
    let server = app.dns_addr().to_string();
    let path = dir.path().to_str().unwrap();
    let ca = pebble.ca_bundle.to_str().unwrap();
    // No RFC2136_TSIG_ALGORITHM: lego's default, hmac-sha1. --dns.disable-cp: the zone's NS
    // names (ns1.ipx.test) resolve nowhere here, so lego checks through ipx alone.
    let args = [
        "--path",
        path,
        "--server",
        &pebble.directory,
        "--email",
        "you@lego.test",
        "--accept-tos",
        "--dns",
        "rfc2136",
        "--dns.resolvers",
        &server,
        "--dns.disable-cp",
        "--domains",
        "lego.test",
        "run",
    ];
    let env = [
        ("RFC2136_NAMESERVER", server.as_str()),
        ("RFC2136_TSIG_KEY", key.name.as_str()),
        ("RFC2136_TSIG_SECRET", key.secret.as_str()),
        ("RFC2136_POLLING_INTERVAL", "1"),
        ("LEGO_CA_CERTIFICATES", ca),
    ];
    let (ok, out) = run(lego, &args, "", &env).await;
    assert!(ok, "lego:\n{out}\npebble:\n{}", pebble.log_text());
    let cert = dir.path().join("certificates/lego.test.crt");
    assert!(names_in(&cert).await.contains("DNS:lego.test"));
    assert!(
        route
            .txt_answers()
            .iter()
            .any(|(name, _)| name == "_acme-challenge.lego.test"),
        "pebble saw the challenge through ipx"
    );
    challenge_came_and_went(&app, &token, &key, "lego.test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_obtains_a_certificate_with_the_credentials_file_the_docs_give() {
    let certbot = tool("certbot", "apt-get install certbot python3-certbot-dns-rfc2136");
    let pebble = pebble();
    let app = spawn_app().await;
    let route = pebble.route("certbot.test", app.dns_addr());
    let (token, _zone, key) = acme_key(&app, "certbot.test", "hmac-sha256").await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("rfc2136.ini");
    let ini = format!(
        "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {}\ndns_rfc2136_name = {}\ndns_rfc2136_secret = {}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
        app.dns_addr().port(),
        key.name,
        key.secret
    );
    std::fs::write(&credentials, ini).unwrap();
    std::fs::set_permissions(&credentials, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let at = |sub: &str| dir.path().join(sub).to_str().unwrap().to_string();
    let (config, work, logs) = (at("config"), at("work"), at("logs"));
    let args = [
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--email",
        "you@certbot.test",
        "--server",
        &pebble.directory,
        "--config-dir",
        &config,
        "--work-dir",
        &work,
        "--logs-dir",
        &logs,
        "--dns-rfc2136",
        "--dns-rfc2136-credentials",
        credentials.to_str().unwrap(),
        "--dns-rfc2136-propagation-seconds",
        "1",
        "-d",
        "certbot.test",
    ];
    let env = [("REQUESTS_CA_BUNDLE", pebble.ca_bundle.to_str().unwrap())];
    let (ok, out) = run(certbot, &args, "", &env).await;
    let log = std::fs::read_to_string(dir.path().join("logs/letsencrypt.log")).unwrap_or_default();
    assert!(ok, "certbot:\n{out}\n{log}\npebble:\n{}", pebble.log_text());
    let cert = dir.path().join("config/live/certbot.test/fullchain.pem");
    assert!(names_in(&cert).await.contains("DNS:certbot.test"));
    assert!(
        route
            .txt_answers()
            .iter()
            .any(|(name, _)| name == "_acme-challenge.certbot.test")
    );
    challenge_came_and_went(&app, &token, &key, "certbot.test").await;
}
