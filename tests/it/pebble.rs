//! Pebble, Let's Encrypt's RFC 8555 test CA (Debian's `pebble`), for the tests that need a
//! real ACME CA. Each kind of Pebble is started once, on loopback with a throw-away TLS
//! certificate made here, and shared by every test of the binary; it dies with the test
//! process. Pebble sends its DNS-01 lookups to one DNS router, which forwards each query
//! to the server a test routed that name to (`Pebble::route`): so one Pebble serves the
//! ipx of every test, each on its own ephemeral port, and tests see what the CA was told.
//!
//! ```ignore
//! let pebble = pebble::pebble();
//! let app = spawn_app_with(|c, _| pebble.configure(c)).await;
//! let _route = pebble.route("shop.test", app.dns_addr());
//! ```

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use ipx::config::{Config, IssuerKind};

const PEBBLE: &str = "/usr/bin/pebble";
/// The External Account Binding key of the `Eab` Pebble (the example key from Pebble's docs).
pub const EAB_KID: &str = "kid-1";
pub const EAB_HMAC_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// The kinds of Pebble tests need; each is started at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Pebble's defaults: certificates valid for five years.
    Standard,
    /// Certificates valid for this many seconds: renewal within a test's time.
    ShortLived(u64),
    /// External Account Binding required (`EAB_KID`, `EAB_HMAC_KEY`).
    Eab,
}

pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// Pebble's management interface (`/roots/0` is the root of what it issues).
    pub management: String,
    /// The certificate of Pebble's TLS listener: the `ca_bundle` that reaches it.
    pub ca_bundle: PathBuf,
    /// That certificate's key: for a test's own server in front of Pebble.
    pub tls_key: PathBuf,
    log: PathBuf,
}

/// Pebble with its defaults.
pub fn pebble() -> &'static Pebble {
    pebble_of(Kind::Standard)
}

/// The Pebble of `kind`, started at the first call.
pub fn pebble_of(kind: Kind) -> &'static Pebble {
    static ALL: OnceLock<Mutex<HashMap<Kind, &'static Pebble>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(kind).or_insert_with(|| Box::leak(Box::new(start(kind))))
}

impl Pebble {
    /// Points `config` at this Pebble: ipx orders its certificates here.
    pub fn configure(&self, config: &mut Config) {
        config.acme.issuer = IssuerKind::Acme;
        config.acme.directory = self.directory.clone();
        config.acme.ca_bundle = self.ca_bundle.clone();
        config.acme.renewal_pause_secs = 0;
    }

    /// Sends Pebble's DNS lookups for `zone` and the names below it to `server`, while the
    /// returned route lives.
    pub fn route(&self, zone: &str, server: SocketAddr) -> Route {
        router().route(zone, server)
    }

    /// Pebble's own log so far: for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The root certificate (PEM) of what this Pebble issues.
    pub async fn root(&self) -> String {
        https_get(&format!("{}/roots/0", self.management), &self.ca_bundle).await
    }
}

/// Starts a Pebble from a thread that lives as long as the process: the child is killed
/// (PR_SET_PDEATHSIG) when that thread's process ends, so no Pebble outlives the tests.
fn start(kind: Kind) -> Pebble {
    assert!(
        std::path::Path::new(PEBBLE).exists(),
        "{PEBBLE} is missing: apt-get install pebble (the ACME tests need it)"
    );
    let dns = router().addr;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("pebble-{kind:?}"))
        .spawn(move || {
            let _ = tx.send(launch(kind, dns));
            loop {
                std::thread::park();
            }
        })
        .unwrap();
    rx.recv()
        .unwrap()
        .unwrap_or_else(|e| panic!("pebble ({kind:?}) did not start: {e}"))
}

/// Pebble's files live as long as it does, past the tests that started it (no test runs
/// last): each start removes the directories of Pebbles that are gone.
fn sweep_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("ipx-pebble-") {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let gone = match pid {
            // SAFETY: signal 0 only asks whether the process exists.
            Some(pid) => (unsafe { libc::kill(pid, 0) }) != 0,
            // No pid yet (starting), or from a harness that wrote none: an hour old is gone.
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600)),
        };
        if gone {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn launch(kind: Kind, dns: SocketAddr) -> Result<Pebble, String> {
    sweep_dirs();
    let dir = tempfile::Builder::new()
        .prefix("ipx-pebble-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
    let mut last = String::new();
    for _ in 0..3 {
        let (listen, manage) = (free_tcp_port(), free_tcp_port());
        let mut pebble = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{manage}"),
            "certificate": cert_path,
            "privateKey": key_path,
            "httpPort": 5002,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": kind == Kind::Eab,
        });
        match kind {
            Kind::ShortLived(secs) => pebble["certificateValidityPeriod"] = secs.into(),
            Kind::Eab => pebble["externalAccountMACKeys"] = serde_json::json!({ EAB_KID: EAB_HMAC_KEY }),
            Kind::Standard => {}
        }
        let config = dir.join("pebble.json");
        std::fs::write(&config, serde_json::json!({ "pebble": pebble }).to_string()).map_err(|e| e.to_string())?;
        let log = dir.join("pebble.log");
        let mut command = Command::new(PEBBLE);
        command
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(dns.to_string())
            // Validate at once; new authorizations every time (so every order is challenged);
            // no nonce refused for sport (a test must not fail one time in twenty).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| format!("cannot run {PEBBLE}: {e}"))?;
        let _ = std::fs::write(dir.join("pid"), child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last = format!(
                    "exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                break;
            }
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(listen) && up(manage) {
                return Ok(Pebble {
                    directory: format!("https://127.0.0.1:{listen}/dir"),
                    management: format!("https://127.0.0.1:{manage}"),
                    ca_bundle: cert_path,
                    tls_key: key_path,
                    log,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                last = "not listening after 10 s".into();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(last)
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A GET over HTTPS trusting only `root` (PEM file).
pub async fn https_get(url: &str, root: &std::path::Path) -> String {
    use http_body_util::BodyExt;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(https);
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The DNS router Pebble asks: forwards each query over UDP to the server routed for its
/// name (the longest routed suffix), answers REFUSED for names nobody routed, and keeps
/// every TXT answer it relayed.
pub struct Router {
    addr: SocketAddr,
    routes: Mutex<Vec<(String, SocketAddr, u64)>>,
    /// (name, TXT strings) of every TXT answer relayed, in order.
    seen: Mutex<Vec<(String, Vec<String>)>>,
    next_id: Mutex<u64>,
}

/// A name routed to a server; dropping it removes the route.
pub struct Route {
    router: &'static Router,
    id: u64,
    zone: String,
}

impl Route {
    /// The TXT answers relayed for names in this route's zone: (name, strings).
    pub fn txt_answers(&self) -> Vec<(String, Vec<String>)> {
        let seen = self.router.seen.lock().unwrap();
        seen.iter().filter(|(n, _)| in_zone(n, &self.zone)).cloned().collect()
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        self.router.routes.lock().unwrap().retain(|r| r.2 != self.id);
    }
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<&'static Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let router: &'static Router = Box::leak(Box::new(Router {
            addr: socket.local_addr().unwrap(),
            routes: Mutex::default(),
            seen: Mutex::default(),
            next_id: Mutex::new(0),
        }));
        std::thread::Builder::new()
            .name("pebble-dns".into())
            .spawn(move || router.serve(socket))
            .unwrap();
        router
    })
}

impl Router {
    fn route(&'static self, zone: &str, server: SocketAddr) -> Route {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            *next
        };
        self.routes.lock().unwrap().push((zone.clone(), server, id));
        Route { router: self, id, zone }
    }

    fn target(&self, name: &str) -> Option<SocketAddr> {
        let routes = self.routes.lock().unwrap();
        routes
            .iter()
            .filter(|(zone, _, _)| in_zone(name, zone))
            .max_by_key(|(zone, _, id)| (zone.len(), *id))
            .map(|r| r.1)
    }

    fn serve(&'static self, socket: UdpSocket) {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(question) = query.queries.first() else {
                continue;
            };
            let name = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
            let reply = socket.try_clone().unwrap();
            let packet = buf[..n].to_vec();
            match self.target(&name) {
                Some(server) => {
                    std::thread::spawn(move || self.forward(&packet, server, from, &reply));
                }
                None => {
                    let mut refused = query.clone();
                    refused.metadata.message_type = MessageType::Response;
                    refused.metadata.response_code = ResponseCode::Refused;
                    if let Ok(bytes) = refused.to_vec() {
                        let _ = reply.send_to(&bytes, from);
                    }
                }
            }
        }
    }

    fn forward(&self, packet: &[u8], server: SocketAddr, client: SocketAddr, reply: &UdpSocket) {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        upstream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = upstream.send_to(packet, server);
        let mut buf = [0u8; 65_535];
        let Ok(n) = upstream.recv(&mut buf) else { return };
        if let Ok(answer) = Message::from_vec(&buf[..n]) {
            for record in &answer.answers {
                if let RData::TXT(txt) = &record.data {
                    let strings = txt
                        .txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    let owner = record.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
                    self.seen.lock().unwrap().push((owner, strings));
                }
            }
        }
        let _ = reply.send_to(&buf[..n], client);
    }
}
