//! Wires the process together: store, snapshots, DNS and API listeners, operator socket.
//! Listeners may be given port 0; the bound addresses are logged and returned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::auth::{Authenticator, mint};
use crate::config::Config;
use crate::dns::{self, Catalog, Handler};
use crate::store::Store;
use crate::zonefile;

/// The example zones imported into the `demo` team on the first start of a new data dir.
pub const DEMO_ZONES: &[(&str, &str)] = &[
    ("example.test.zone", include_str!("../zones/example.test.zone")),
    ("demo.test.zone", include_str!("../zones/demo.test.zone")),
];

/// A running server.
pub struct Running {
    pub dns_addr: SocketAddr,
    pub api_addr: SocketAddr,
    /// The demo token, when this start created the demo team.
    pub demo_token: Option<String>,
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub auth: Arc<Authenticator>,
    /// Response rate limiting, when on.
    pub rrl: Option<Arc<dns::rrl::Rrl>>,
    dns_udp: JoinHandle<()>,
    dns_tcp: JoinHandle<()>,
    api: JoinHandle<()>,
    admin: JoinHandle<()>,
    worker: JoinHandle<()>,
    /// Housekeeping: budgets, idempotency keys, the database file's watch.
    background: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{what} {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("demo import: {0}")]
    Demo(String),
}

/// Binds UDP and TCP on one port; with port 0, finds a port free for both.
async fn bind_dns(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), StartError> {
    let bind_err = |what, source| StartError::Bind { what, addr, source };
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await.map_err(|e| bind_err("dns udp", e))?;
        let port = udp.local_addr().map_err(|e| bind_err("dns udp", e))?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => return Err(bind_err("dns tcp", e)),
            Err(_) => continue,
        }
    }
    Err(bind_err("dns", std::io::Error::new(std::io::ErrorKind::AddrInUse, "no port free for both UDP and TCP")))
}

/// Imports the demo zones into a new `demo` team and returns a full-access token.
fn import_demo(store: &Store) -> Result<String, String> {
    let team = store.write_blocking(|tx| tx.create_team("demo")).map_err(|e| e.to_string())?;
    for (file, text) in DEMO_ZONES {
        let seed = zonefile::parse(text, None).map_err(|e| format!("{file}: {e}"))?;
        let id = team.id;
        store.write_blocking(move |tx| tx.create_zone(id, seed)).map_err(|e| format!("{file}: {e}"))?;
    }
    let (token, secret) = mint(team.id, "demo", &[]);
    store.write_blocking(move |tx| tx.create_token(&token)).map_err(|e| e.to_string())?;
    Ok(secret)
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let config = Arc::new(config);
    let files = crate::listener::raise_fd_limit();
    let wanted = (config.api.max_connections + config.dns.tcp_max_connections) as u64 + 256;
    if files < wanted {
        tracing::warn!(open_files = files, wanted, "the open-file limit is below what the connection caps allow; lower [api] max_connections or [dns] tcp_max_connections, or raise the limit");
    }
    let db_path = config.db_path();
    let fresh = !config.store.data_dir.join("ipx.redb").exists();
    let store = {
        let path = db_path.clone();
        tokio::task::spawn_blocking(move || Store::open(&path)).await.expect("open task")?
    };
    store.set_caps(config.limits);
    let catalog = Arc::new(Catalog::default());
    {
        let (store, catalog) = (store.clone(), catalog.clone());
        let targets = config.dns.also_notify.clone();
        let notifier = (!targets.is_empty()).then(|| dns::notify::Notifier::new(catalog.clone(), targets));
        tokio::task::spawn_blocking(move || dns::attach(&store, catalog, notifier)).await.expect("attach task")?;
    }
    let demo_token = if fresh && config.demo.enabled {
        let s = store.clone();
        Some(tokio::task::spawn_blocking(move || import_demo(&s)).await.expect("demo task").map_err(StartError::Demo)?)
    } else {
        None
    };

    let (udp, tcp) = bind_dns(config.dns.listen).await?;
    let rrl = dns::rrl::Rrl::new(&config.rrl).map(Arc::new);
    let dns_addr = udp.local_addr().expect("bound");
    let handler = Handler::new(catalog.clone(), config.dns.max_udp_payload)
        .with_transfers(
            dns::Transfers { acl: config.dns.transfer_acl(), store: store.clone() },
            dns::tsig::Keys::new(&config.dns.transfer_keys()),
        )
        .with_rrl(rrl.clone());
    let (dns_udp, dns_tcp) =
        dns::serve(udp, tcp, handler, dns::tcp::Limits::from_config(&config.dns));
    tracing::info!("dns listening on {dns_addr} (udp and tcp)");

    let auth = Arc::new(Authenticator::new(store.clone(), crate::auth::Policy::from_config(&config.auth)));
    let admin = crate::admin::listen(&config.socket_path(), store.clone(), auth.clone())
        .map_err(|source| StartError::Bind { what: "operator socket", addr: config.api.listen, source })?;

    let listener = TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| StartError::Bind { what: "api", addr: config.api.listen, source })?;
    let api_addr = listener.local_addr().expect("bound");
    let (jobs, worker) = crate::hosting::start(store.clone(), crate::hosting::provisioner(&config), config.clone());
    let limits = Arc::new(api::limits::Limits::new(&config.rate_limits));
    let background = vec![api::limits::sweep(limits.clone(), auth.clone()), api::idempotency::sweep(store.clone()), watch_store(store.clone())];
    let reserved = Arc::new(config.dns.reserved());
    let state = AppState { store: store.clone(), auth: auth.clone(), config: config.clone(), jobs, limits, reserved };
    let (stop, stopped) = watch::channel(false);
    let app = api::router(state);
    let api = {
        let config = config.clone();
        tokio::spawn(async move { api::server::serve(listener, app, &config.api, stopped).await })
    };
    tracing::info!("api listening on http://{api_addr}");
    Ok(Running { dns_addr, api_addr, demo_token, store, catalog, auth, rrl, dns_udp, dns_tcp, api, admin, worker, background, stop })
}

/// Checks every two seconds that the database file is still where the next start will
/// read it (the check logs loudly, once, when it is not).
fn watch_store(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let _ = store.health();
        }
    })
}

impl Running {
    /// Stops accepting work, lets requests in flight finish, and closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // The DNS tasks hold a store handle (IXFR); aborting them closes every connection too.
        self.dns_udp.abort();
        self.dns_tcp.abort();
        let _ = self.dns_udp.await;
        let _ = self.dns_tcp.await;
        self.admin.abort();
        let _ = self.admin.await;
        // Jobs in flight stay open in the store and run again at the next start.
        self.worker.abort();
        let _ = self.worker.await;
        for task in self.background {
            task.abort();
            let _ = task.await; // each holds a store handle: gone before the store closes
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.api).await;
        let store = self.store;
        drop(self.catalog);
        drop(self.auth);
        let _ = tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(move || store.close())).await;
    }
}
