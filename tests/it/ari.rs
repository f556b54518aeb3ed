//! ACME Renewal Information (RFC 9773). Debian's Pebble does not offer it, so a small HTTPS
//! front serves Pebble's directory with a `renewalInfo` URL added, and answers it with the
//! window the test chooses; every other request goes to Pebble itself (the directory's URLs
//! point there).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipx::domain::Timestamp;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::acme::{active_site, turn_ssl_on, wait_for};
use crate::helpers::spawn_app_with;
use crate::pebble::{Pebble, https_get, pebble};

/// The front: its directory URL, and the certificate ids ipx asked the window of.
struct AriFront {
    directory: String,
    asked: Arc<Mutex<Vec<String>>>,
}

/// Serves Pebble's directory with `renewalInfo`; the first certificate asked about gets
/// `window`, later ones a window a year away (what a CA says of a fresh certificate).
async fn ari_front(pebble: &Pebble, window: (Timestamp, Timestamp)) -> AriFront {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let mut directory: serde_json::Value =
        serde_json::from_str(&https_get(&pebble.directory, &pebble.ca_bundle).await).unwrap();
    directory["renewalInfo"] = json!(format!("{base}/renewal-info"));
    let directory = directory.to_string();
    let cert = CertificateDer::from_pem_file(&pebble.ca_bundle).unwrap();
    let key = PrivateKeyDer::from_pem_file(&pebble.tls_key).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, directory, seen) = (acceptor.clone(), directory.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                let (status, body) = if path == "/dir" {
                    ("200 OK", directory)
                } else if let Some(id) = path.strip_prefix("/renewal-info/") {
                    let mut seen = seen.lock().unwrap();
                    seen.push(id.to_string());
                    let (start, end) = if seen[0] == id {
                        window
                    } else {
                        let year = 365 * 86_400_000;
                        (
                            Timestamp::now().plus_millis(year),
                            Timestamp::now().plus_millis(year + 86_400_000),
                        )
                    };
                    let body = json!({ "suggestedWindow": { "start": start.to_string(), "end": end.to_string() } });
                    ("200 OK", body.to_string())
                } else {
                    ("404 Not Found", String::new())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nRetry-After: 21600\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    AriFront {
        directory: format!("{base}/dir"),
        asked,
    }
}

#[tokio::test]
async fn a_certificate_is_renewed_inside_the_window_the_ca_suggests() {
    let pebble = pebble();
    // Pebble's certificates last five years: only the CA's window can make this one due now.
    let start = Timestamp::now().plus_millis(3000);
    let end = start.plus_millis(1000);
    let front = ari_front(pebble, (start, end)).await;
    let app = spawn_app_with(|c, _| {
        pebble.configure(c);
        c.acme.directory = front.directory.clone();
    })
    .await;
    let _route = pebble.route("ari.test", app.dns_addr());
    let token = app.team("acme", &[]).await;
    let id = active_site(&app, &token, "ari.test").await;
    let site = turn_ssl_on(&app, &token, &id).await;
    assert_eq!(site["ssl"], "active", "{site}");
    let first = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    let renewal = &first["renewal"];
    assert_eq!(renewal["window_start"], start.to_string().as_str());
    assert_eq!(renewal["window_end"], end.to_string().as_str());
    let next = renewal["next_at"].as_str().unwrap();
    assert!(next >= renewal["window_start"].as_str().unwrap() && next <= renewal["window_end"].as_str().unwrap());
    let asked = front.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains('.'), "an RFC 9773 id, AKI.serial: {}", asked[0]);

    let renewed = wait_for(&app, &token, &id, Duration::from_secs(20), |s| {
        s["ssl_expires_at"] != first["not_after"] && s["last_job"]["state"] == "done"
    })
    .await;
    assert_eq!(renewed["last_job"]["step"], "ssl_renewal");
    let second = app
        .get(&token, &format!("/v1/sites/{id}/certificate"))
        .await
        .data()
        .clone();
    assert_ne!(second["serial"], first["serial"]);
    let renewed_at = second["issued_at"].as_str().unwrap();
    assert!(
        renewed_at >= start.to_string().as_str(),
        "not before the window: {renewed_at}"
    );
    assert!(
        second["renewal"]["next_at"].as_str().unwrap()
            > Timestamp::now().plus_millis(300 * 86_400_000).to_string().as_str(),
        "the new certificate's window is a year away: {second}"
    );
}
