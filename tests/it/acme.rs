//! "Turn SSL on" against a real ACME CA (Pebble): DNS-01 answered from ipx's own zones, the
//! certificate verified against the CA's root, failures with the CA's reason, resumption
//! after a restart, secondaries waited for, renewal by the scheduler, the exec provisioner's
//! install step, and keys that never show in the clear.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, spawn_app_with};
use crate::idempotency::post_with_key;
use crate::interop::{free_port, knotd, start_knot};
use crate::pebble::{EAB_HMAC_KEY, EAB_KID, Kind, pebble, pebble_of};

/// Creates a site and waits until it is active; returns its id.
pub async fn active_site(app: &TestApp, token: &str, domain: &str) -> String {
    let r = app.post(token, "/v1/sites", json!({ "domain": domain })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.id();
    app.wait_site(token, &id, |s| s["status"] == "active").await;
    id
}

/// Polls the site until `done` holds, for up to `limit`.
pub async fn wait_for(app: &TestApp, token: &str, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let site = app.get(token, &format!("/v1/sites/{id}")).await.data().clone();
        if done(&site) {
            return site;
        }
        assert!(Instant::now() < deadline, "the site never got there: {site}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks for SSL and waits until it is no longer pending.
pub async fn turn_ssl_on(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.post(token, &format!("/v1/sites/{id}/ssl"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.data()["ssl"], "pending");
    wait_for(app, token, id, Duration::from_secs(30), |s| s["ssl"] != "pending").await
}

/// Verifies `chain_pem` for `name` against `root_pem`, as a TLS client would.
fn verify(chain_pem: &str, root_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let chain: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let name = ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .map(drop)
}

/// The TXT strings ipx serves at `name`.
async fn txt_at(app: &TestApp, name: &str) -> Vec<String> {
    answers(&app.udp(name, RecordType::TXT).await)
}

#[tokio::test]
async fn turning_ssl_on_obtains_a_certificate_that_verifies_against_the_cas_root() {
    let pebble = pebble();
    let app = spawn_app_with(|c, _| pebble.configure(c)).await;
    let route = pebble.route("shop.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "shop.test").await;

    let started = Instant::now();
    let site = turn_ssl_on(&app, &token, &id).await;
    let took = started.elapsed();
    assert_eq!(site["ssl"], "active", "{site}\n{}", pebble.log_text());
    assert_eq!(site["last_job"]["step"], "ssl");
    assert_eq!(site["last_job"]["state"], "done");
    assert!(site["ssl_renewal_error"].is_null());

    let cert = app.get(&token, &format!("/v1/sites/{id}/certificate")).await;
    assert_eq!(cert.status, 200, "{}", cert.body);
    let cert = cert.data();
    assert_eq!(cert["sans"], json!(["shop.test", "www.shop.test"]));
    assert_eq!(
        cert["not_after"], site["ssl_expires_at"],
        "the site's expiry is the certificate's"
    );
    assert!(
        cert["issuer"].as_str().unwrap().contains("Pebble Intermediate CA"),
        "{cert}"
    );
    assert_eq!(cert["key_type"], "ecdsa-p256");
    assert_eq!(cert["issuer_directory"], pebble.directory.as_str());
    assert_eq!(cert["fingerprint_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(cert["renewal"]["state"], "scheduled");
    assert!(cert["renewal"]["next_at"].as_str().unwrap() < cert["not_after"].as_str().unwrap());
    let root = pebble.root().await;
    let chain = cert["chain_pem"].as_str().unwrap();
    verify(chain, &root, "shop.test").expect("the chain verifies against Pebble's root");
    verify(chain, &root, "www.shop.test").expect("and covers www");
    assert!(verify(chain, &root, "other.test").is_err(), "and nothing else");
    assert!(!cert.to_string().contains("PRIVATE KEY"), "never the key");
    eprintln!(
        "issued {} (serial {}, subject {:?}, SANs {}) in {took:?}",
        cert["issuer"], cert["serial"], cert["subject"], cert["sans"]
    );

    // The CA looked the challenges up in ipx's DNS; they are gone now.
    let seen = route.txt_answers();
    for name in ["_acme-challenge.shop.test", "_acme-challenge.www.shop.test"] {
        assert!(
            seen.iter().any(|(n, v)| n == name && v.len() == 1 && v[0].len() == 43),
            "the CA saw {name}: {seen:?}"
        );
        assert!(txt_at(&app, name).await.is_empty(), "{name} is gone");
    }
    let events = app.get(&token, "/v1/events?limit=1000").await;
    let events = events.data().as_array().unwrap();
    let of = |action: &str, about: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action && e["summary"].as_str().unwrap().contains(about))
            .count()
    };
    assert_eq!(of("record.created", "_acme-challenge"), 2, "through the store, audited");
    assert_eq!(of("record.deleted", "_acme-challenge"), 2);
    assert_eq!(of("certificate.issued", "shop.test"), 1);
    assert!(
        events
            .iter()
            .filter(|e| e["summary"].as_str().unwrap().contains("_acme-challenge"))
            .all(|e| e["actor"]["kind"] == "system")
    );

    let again = app.post(&token, &format!("/v1/sites/{id}/ssl"), json!({})).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "ssl_active"));
}

#[tokio::test]
async fn a_ca_that_cannot_validate_fails_with_its_reason_and_asking_again_retries() {
    let pebble = pebble();
    let app = spawn_app_with(|c, _| pebble.configure(c)).await;
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "unrouted.test").await;

    // Nobody routed unrouted.test: the CA's DNS lookups are refused.
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "failed", "{site}");
    assert!(site["ssl_expires_at"].is_null(), "no certificate is claimed");
    let error = site["last_job"]["error"].as_str().unwrap();
    assert!(error.starts_with("the CA refused: "), "{error}");
    assert!(
        error.contains("urn:ietf:params:acme:error:"),
        "the problem's type: {error}"
    );
    assert!(error.contains("TXT"), "the CA's own detail: {error}");
    let none = app.get(&token, &format!("/v1/sites/{id}/certificate")).await;
    assert_eq!((none.status.as_u16(), none.code()), (404, "no_certificate"));
    assert!(
        txt_at(&app, "_acme-challenge.unrouted.test.").await.is_empty(),
        "cleaned up"
    );

    let _route = pebble.route("unrouted.test", app.dns_addr());
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "active", "asking again retries: {site}");
    assert_eq!(
        app.get(&token, &format!("/v1/sites/{id}/certificate")).await.status,
        200
    );
}

#[tokio::test]
async fn without_a_reachable_ca_ssl_fails_with_a_clear_reason_and_no_certificate() {
    // The tests' default: a directory on a loopback port nothing listens on.
    let app = spawn_app_with(|_, _| {}).await;
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "offline.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "failed");
    assert!(site["ssl_expires_at"].is_null());
    let error = site["last_job"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot reach the ACME CA at https://127.0.0.1:1/"),
        "{error}"
    );
    let none = app.get(&token, &format!("/v1/sites/{id}/certificate")).await;
    assert_eq!((none.status.as_u16(), none.code()), (404, "no_certificate"));
}

#[tokio::test]
async fn a_site_that_keeps_failing_waits_before_it_may_ask_again() {
    let app = spawn_app_with(|_, _| {}).await; // no reachable CA: every attempt fails
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "stubborn.test").await;
    assert_eq!(turn_ssl_on(&app, &token, &id).await["ssl"], "failed");
    assert_eq!(
        turn_ssl_on(&app, &token, &id).await["ssl"],
        "failed",
        "once more at once: fixing the cause takes no wait"
    );
    let r = app.post(&token, &format!("/v1/sites/{id}/ssl"), json!({})).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "ssl_retry_later"), "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("ask again after"));
    assert_eq!(
        app.get(&token, &format!("/v1/sites/{id}")).await.data()["ssl"],
        "failed",
        "unchanged"
    );
}

/// A UDP port that takes queries and never answers: a secondary that is down.
fn silent_secondary() -> (std::net::UdpSocket, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

#[tokio::test]
async fn a_restart_in_the_middle_of_an_order_resumes_the_same_order_and_completes() {
    let pebble = pebble();
    let (_down, secondary) = silent_secondary();
    let mut app = spawn_app_with(|c, _| {
        pebble.configure(c);
        // The order waits for a secondary that never answers: the restart finds it pending.
        c.dns.also_notify = vec![secondary];
        c.acme.propagation_timeout_secs = 120;
        c.api.shutdown_grace_secs = 1;
    })
    .await;
    let route = pebble.route("resume.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "resume.test").await;
    let r = app.post(&token, &format!("/v1/sites/{id}/ssl"), json!({})).await;
    assert_eq!(r.status, 202);

    // While the order is pending its challenge records are in DNS.
    let deadline = Instant::now() + Duration::from_secs(15);
    let published = loop {
        let apex = txt_at(&app, "_acme-challenge.resume.test.").await;
        let www = txt_at(&app, "_acme-challenge.www.resume.test.").await;
        if !apex.is_empty() && !www.is_empty() {
            break apex;
        }
        assert!(Instant::now() < deadline, "the challenge records were never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        app.get(&token, &format!("/v1/sites/{id}")).await.data()["ssl"],
        "pending"
    );
    assert!(route.txt_answers().is_empty(), "the CA was not told yet");

    app.config.dns.also_notify.clear(); // the secondary is gone for good
    app.restart().await;
    drop(route);
    let route = pebble.route("resume.test", app.dns_addr()); // DNS is on a new port
    let site = wait_for(&app, &token, &id, Duration::from_secs(30), |s| s["ssl"] != "pending").await;
    assert_eq!(site["ssl"], "active", "{site}");
    let value = published[0].rsplit(' ').next().unwrap().trim_matches('"').to_string();
    assert!(
        route
            .txt_answers()
            .iter()
            .any(|(n, v)| n == "_acme-challenge.resume.test" && v.as_slice() == [value.as_str()]),
        "the CA validated the challenge published before the restart ({value}): the same order, resumed"
    );
    assert!(txt_at(&app, "_acme-challenge.resume.test.").await.is_empty());
}

#[tokio::test]
async fn a_cname_of_the_teams_at_acme_challenge_fails_the_step_with_that_reason() {
    let pebble = pebble();
    let app = spawn_app_with(|c, _| pebble.configure(c)).await;
    let _route = pebble.route("delegated.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "delegated.test").await;
    let r = app
        .record(&token, &zone, "_acme-challenge", "CNAME", "acme.elsewhere.example.")
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = active_site(&app, &token, "delegated.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "failed");
    let error = site["last_job"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot publish the DNS-01 challenge records: ") && error.contains("CNAME"),
        "{error}"
    );
    assert!(
        txt_at(&app, "_acme-challenge.www.delegated.test.").await.is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_ca_bundle_that_cannot_be_read_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(dir.path());
    config.acme.ca_bundle = dir.path().join("missing.pem");
    let err = ipx::app::start(config).await.err().expect("refused").to_string();
    assert!(err.contains("acme.ca_bundle") && err.contains("missing.pem"), "{err}");
    let other = tempfile::tempdir().unwrap();
    let empty = other.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let mut config = crate::helpers::test_config(other.path());
    config.acme.ca_bundle = empty;
    let err = ipx::app::start(config).await.err().expect("refused").to_string();
    assert!(err.contains("no usable certificate"), "{err}");
}

#[tokio::test]
async fn a_secondary_that_never_serves_the_challenge_fails_the_order_before_the_ca_is_asked() {
    let pebble = pebble();
    let (_down, secondary) = silent_secondary();
    let app = spawn_app_with(|c, _| {
        pebble.configure(c);
        c.dns.also_notify = vec![secondary];
        c.acme.propagation_timeout_secs = 1;
    })
    .await;
    let route = pebble.route("lagging.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "lagging.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "failed");
    let error = site["last_job"]["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "the secondary {secondary} did not answer for lagging.test within 1 s; the challenge records are in serial {}",
            error.rsplit(' ').next().unwrap()
        )
    );
    assert!(route.txt_answers().is_empty(), "the CA was never asked to validate");
    assert!(
        txt_at(&app, "_acme-challenge.lagging.test.").await.is_empty(),
        "cleaned up"
    );
}

#[tokio::test]
async fn the_ca_validates_against_a_knot_secondary_that_ipx_waited_for() {
    if knotd().is_none() {
        return;
    }
    let pebble = pebble();
    let kport = free_port();
    let app = spawn_app_with(|c, _| {
        pebble.configure(c);
        c.dns.allow_transfer = vec!["127.0.0.1".into()];
        c.dns.also_notify = vec![SocketAddr::from(([127, 0, 0, 1], kport))];
    })
    .await;
    let token = app.team("acme", &[]).await;
    app.zone(&token, "secondary.test").await;
    let knot = start_knot(app.dir(), kport, Some(app.dns_addr()), &[("secondary.test.", None)]);
    // The CA asks the secondary, never ipx: it can only succeed if ipx waited for Knot.
    let route = pebble.route("secondary.test", knot.addr);
    let id = active_site(&app, &token, "secondary.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(
        site["ssl"],
        "active",
        "{site}\n{}",
        std::fs::read_to_string(&knot.log).unwrap_or_default()
    );
    assert!(
        route
            .txt_answers()
            .iter()
            .any(|(n, _)| n == "_acme-challenge.www.secondary.test")
    );
}

/// An exec provisioner that keeps what it is given (`steps.log`, one JSON per line) and
/// fails `install_certificate` while `install.fail` exists, quoting the key it was given.
fn keeping_provisioner(config: &mut ipx::config::Config, dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("provision.sh");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env bash\ninput=$(cat)\nprintf '%s\\n' \"$input\" >> {log}\n\
             case \"$input\" in\n  *'\"step\":\"install_certificate\"'*) if [ -e {flag} ]; then printf '%s' \"$input\" | grep -o '\"private_key_pem\":\"[^\"]*\"' >&2; exit 1; fi ;;\nesac\nexit 0\n",
            log = dir.join("steps.log").display(),
            flag = dir.join("install.fail").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    config.hosting.provisioner = ipx::config::ProvisionerKind::Exec;
    config.hosting.exec_command = vec![script.display().to_string()];
}

fn steps(app: &TestApp) -> Vec<Value> {
    std::fs::read_to_string(app.dir().join("steps.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every byte sequence a key could be stored as: its PEM body lines, its DER, base64 of it.
fn key_forms(key_pem: &str) -> Vec<Vec<u8>> {
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let der = der.secret_der().to_vec();
    let mut forms: Vec<Vec<u8>> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(|l| l.as_bytes()[..l.len().min(40)].to_vec())
        .collect();
    forms.push(der[der.len() - 40..].to_vec());
    forms.push(data_encoding::BASE64.encode(&der).as_bytes()[8..48].to_vec());
    forms.push(data_encoding::BASE64URL_NOPAD.encode(&der).as_bytes()[8..48].to_vec());
    forms
}

fn holds_any(haystack: &[u8], needles: &[Vec<u8>]) -> bool {
    needles
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == n.as_slice()))
}

#[tokio::test]
async fn the_exec_provisioner_gets_chain_and_key_which_are_nowhere_else_in_the_clear() {
    let pebble = pebble();
    let mut app = spawn_app_with(|c, dir| {
        pebble.configure(c);
        keeping_provisioner(c, dir);
    })
    .await;
    let _route = pebble.route("keys.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "keys.test").await;

    // First try: the install fails, and its script echoes its input (the key) to stderr.
    std::fs::write(app.dir().join("install.fail"), "").unwrap();
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "failed");
    let error = site["last_job"]["error"].as_str().unwrap();
    assert!(error.contains("quoted the private key, so it is not shown"), "{error}");
    let first = steps(&app);
    let installs: Vec<&Value> = first.iter().filter(|s| s["step"] == "install_certificate").collect();
    assert_eq!(installs.len(), 1);
    let key_pem = installs[0]["certificate"]["private_key_pem"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    // Asking again installs the certificate already obtained: no second order.
    std::fs::remove_file(app.dir().join("install.fail")).unwrap();
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "active", "{site}");
    let all = steps(&app);
    let order: Vec<&str> = all.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        ["create", "ssl", "install_certificate", "ssl", "install_certificate"],
        "the platform's ssl step, then the install, each time"
    );
    let install = &all[4];
    let cert = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    assert_eq!(install["certificate"]["chain_pem"], cert["chain_pem"]);
    assert_eq!(install["certificate"]["serial"], cert["serial"]);
    assert_eq!(
        install["certificate"]["private_key_pem"],
        key_pem.as_str(),
        "the same certificate and key"
    );
    assert_eq!(install["site"]["id"], id.as_str());
    // The key is the certificate's.
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    let chain = cert["chain_pem"].as_str().unwrap();
    let leaf = CertificateDer::from_pem_slice(chain.as_bytes()).unwrap();
    assert!(
        leaf.windows(key.public_key_raw().len())
            .any(|w| w == key.public_key_raw()),
        "the key matches the certificate"
    );

    // Never in an API response...
    let forms = key_forms(&key_pem);
    for path in [
        format!("/v1/sites/{id}"),
        format!("/v1/sites/{id}/certificate"),
        "/v1/events?limit=1000".to_string(),
        "/v1/sites".to_string(),
    ] {
        let r = app.get(&token, &path).await;
        assert!(
            !holds_any(r.body.to_string().as_bytes(), &forms),
            "{path} shows the key"
        );
    }
    // ...nor in the database, nor anywhere in the data directory.
    let data = app.config.store.data_dir.clone();
    let db_path = app.config.db_path();
    let key_path = app.config.key_path();
    app.running.take().unwrap().shutdown().await;
    for file in std::fs::read_dir(&data).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !holds_any(&bytes, &forms),
                "{} holds the certificate key",
                path.display()
            );
        }
    }
    // The ACME account's key is sealed as well: open it the way ipx does and look for it.
    let store = ipx::store::Store::open(&db_path).unwrap();
    let row = store
        .read_blocking(|r| r.acme_account(&pebble.directory))
        .unwrap()
        .expect("the account is stored");
    let fingerprint = store.read_blocking(|r| r.kek_fingerprint()).unwrap();
    let sealer = ipx::seal::Sealer::unlock(&key_path, fingerprint.as_deref()).unwrap();
    let opened = sealer
        .open(&ipx::domain::account_context(&pebble.directory), &row.credentials)
        .unwrap();
    let credentials: Value = serde_json::from_slice(opened.expose()).unwrap();
    let account_der = data_encoding::BASE64URL_NOPAD
        .decode(credentials["key_pkcs8"].as_str().unwrap().as_bytes())
        .unwrap();
    store.close();
    let account_forms = vec![
        account_der[account_der.len() - 40..].to_vec(),
        credentials["key_pkcs8"].as_str().unwrap().as_bytes()[8..48].to_vec(),
        data_encoding::BASE64.encode(&account_der).as_bytes()[8..48].to_vec(),
    ];
    let db = std::fs::read(&db_path).unwrap();
    assert!(
        !holds_any(&db, &account_forms),
        "the account key is sealed in the database"
    );
}

#[tokio::test]
async fn a_short_lived_certificate_is_renewed_by_the_scheduler_and_a_failed_renewal_shows_while_it_serves() {
    let pebble = pebble_of(Kind::ShortLived(20));
    let app = spawn_app_with(|c, _| pebble.configure(c)).await;
    let route = pebble.route("renew.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "renew.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "active", "{site}");
    let first = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();

    // The CA cannot reach ipx: the renewal fails, and the site says so while its
    // certificate still serves.
    drop(route);
    let failing = wait_for(&app, &token, &id, Duration::from_secs(25), |s| {
        !s["ssl_renewal_error"].is_null()
    })
    .await;
    assert_eq!(
        failing["ssl"], "active",
        "the old certificate is still valid: {failing}"
    );
    assert_eq!(failing["ssl_expires_at"], first["not_after"]);
    assert_eq!(failing["last_job"]["step"], "ssl_renewal");
    assert_eq!(failing["last_job"]["state"], "failed");
    assert!(
        failing["ssl_renewal_error"]
            .as_str()
            .unwrap()
            .starts_with("the CA refused: ")
    );
    let cert = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    assert_eq!(cert["serial"], first["serial"]);
    assert!(cert["renewal"]["failures"].as_u64().unwrap() >= 1);
    assert!(cert["renewal"]["last_error"].is_string());

    // The scheduler tries again on its own, and with the CA reaching ipx again, renews.
    let _route = pebble.route("renew.test", app.dns_addr());
    let renewed = wait_for(&app, &token, &id, Duration::from_secs(20), |s| {
        s["ssl_expires_at"] != first["not_after"] && s["last_job"]["state"] == "done"
    })
    .await;
    assert_eq!(renewed["ssl"], "active");
    assert!(renewed["ssl_renewal_error"].is_null(), "cleared: {renewed}");
    assert_eq!(renewed["last_job"]["step"], "ssl_renewal");
    let cert = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    assert_ne!(cert["serial"], first["serial"]);
    assert_eq!(cert["not_after"], renewed["ssl_expires_at"]);
    assert_eq!(cert["renewal"]["failures"], 0);
    verify(
        cert["chain_pem"].as_str().unwrap(),
        &pebble.root().await,
        "www.renew.test",
    )
    .unwrap();
    let events = app.get(&token, "/v1/events?limit=1000").await;
    let renewals = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "certificate.renewed")
        .count();
    assert!(renewals >= 1);
}

#[tokio::test]
async fn an_account_is_made_with_external_account_binding_when_the_ca_asks_for_one() {
    let pebble = pebble_of(Kind::Eab);
    let without = spawn_app_with(|c, _| pebble.configure(c)).await;
    let _r1 = pebble.route("no-eab.test", without.dns_addr());
    let token = without.team("acme", &[]).await;
    let id = active_site(&without, &token, "no-eab.test").await;
    let site = turn_ssl_on(&without, &token, &id).await;
    assert_eq!(site["ssl"], "failed");
    let error = site["last_job"]["error"].as_str().unwrap();
    assert!(
        error.contains("urn:ietf:params:acme:error:"),
        "the CA's reason: {error}"
    );

    let with = spawn_app_with(|c, _| {
        pebble.configure(c);
        c.acme.eab_kid = EAB_KID.into();
        c.acme.eab_hmac_key = EAB_HMAC_KEY.into();
        c.acme.contact = "hostmaster@eab.test".into();
    })
    .await;
    let _r2 = pebble.route("eab.test", with.dns_addr());
    let token = with.team("acme", &[]).await;
    let id = active_site(&with, &token, "eab.test").await;
    let site = turn_ssl_on(&with, &token, &id).await;
    assert_eq!(site["ssl"], "active", "{site}");
}

#[tokio::test]
async fn a_certificate_is_its_teams_alone_and_needs_sites_read() {
    let app = spawn_app_with(|c, _| c.acme.issuer = ipx::config::IssuerKind::Simulated).await;
    let alpha = app.team("alpha", &[]).await;
    let beta = app.team("beta", &[]).await;
    let dns_only = app.team("alpha", &["dns:read"]).await;
    let id = active_site(&app, &alpha, "mine.test").await;
    assert_eq!(turn_ssl_on(&app, &alpha, &id).await["ssl"], "active");
    let path = format!("/v1/sites/{id}/certificate");
    assert_eq!(app.get(&alpha, &path).await.status, 200);
    let other = app.get(&beta, &path).await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (404, "not_found"),
        "another team's: not found"
    );
    let scope = app.get(&dns_only, &path).await;
    assert_eq!((scope.status.as_u16(), scope.code()), (403, "insufficient_scope"));
    assert_eq!(app.get("", &path).await.status, 401);
    let bad = app.get(&alpha, "/v1/sites/not-a-uuid/certificate").await;
    assert_eq!(bad.status, 404);
    let missing = app
        .get(&alpha, &format!("/v1/sites/{}/certificate", uuid::Uuid::nil()))
        .await;
    assert_eq!((missing.status.as_u16(), missing.code()), (404, "not_found"));
}

#[tokio::test]
async fn the_simulated_issuer_makes_a_real_self_signed_certificate_that_says_what_it_is() {
    let app = spawn_app_with(|c, _| c.acme.issuer = ipx::config::IssuerKind::Simulated).await;
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "demo-ssl.test").await;
    // Asked with an Idempotency-Key, twice: one job, the first answer replayed.
    let path = format!("/v1/sites/{id}/ssl");
    let (status, first, replayed) = post_with_key(&app, &token, &path, "ssl-1", json!({})).await;
    assert_eq!((status, replayed), (202, false));
    let (status, again, replayed) = post_with_key(&app, &token, &path, "ssl-1", json!({})).await;
    assert_eq!((status, replayed), (202, true));
    assert_eq!(again, first);
    let site = wait_for(&app, &token, &id, Duration::from_secs(15), |s| s["ssl"] != "pending").await;
    assert_eq!(site["ssl"], "active");
    let events = app.get(&token, "/v1/events?limit=1000").await;
    let asked = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "site.ssl_requested")
        .count();
    assert_eq!(asked, 1, "one request, one job");
    let cert = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    assert_eq!(cert["issuer_directory"], "simulated");
    assert_eq!(cert["issuer"], "CN=ipx simulated issuer (not trusted)");
    assert_eq!(cert["sans"], json!(["demo-ssl.test", "www.demo-ssl.test"]));
    assert_eq!(cert["not_after"], site["ssl_expires_at"]);
    let pebble_root = pebble().root().await;
    assert!(verify(cert["chain_pem"].as_str().unwrap(), &pebble_root, "demo-ssl.test").is_err());
}
