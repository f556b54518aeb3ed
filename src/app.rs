//! Wires the process together: store, snapshots, DNS and API listeners, operator socket.
//! Listeners may be given port 0; the bound addresses are logged and returned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::health::Observe;
use crate::api::{self, AppState};
use crate::auth::{Authenticator, mint};
use crate::config::Config;
use crate::dns::{self, Handler, Zones};
use crate::domain::Actor;
use crate::metrics::{Metrics, Readiness};
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
    /// The metrics listener's address, when it is on.
    pub metrics_addr: Option<SocketAddr>,
    /// The demo token, when this start created the demo team.
    pub demo_token: Option<String>,
    pub store: Store,
    pub zones: Arc<Zones>,
    pub auth: Arc<Authenticator>,
    /// The key-encryption key of the store's sealed secrets.
    pub sealer: Arc<crate::seal::Sealer>,
    /// Response rate limiting, when on.
    pub rrl: Option<Arc<dns::rrl::Rrl>>,
    /// What is counted, when the metrics listener is on.
    pub metrics: Option<Arc<Metrics>>,
    pub ready: Arc<Readiness>,
    dns_udp: dns::udp::Udp,
    dns_tcp: JoinHandle<()>,
    api: JoinHandle<()>,
    admin: JoinHandle<()>,
    worker: JoinHandle<()>,
    /// The certificate renewal scheduler.
    renewer: JoinHandle<()>,
    /// The metrics listener: stopped last, so that probes see the drain.
    observer: Option<JoinHandle<()>>,
    /// Housekeeping: budgets, idempotency keys, the database file's watch, the metrics'
    /// upkeep.
    background: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    stop_observer: watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("operator socket {}: {source}", path.display())]
    Socket {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("demo import: {0}")]
    Demo(String),
    #[error("{0}")]
    Key(#[from] crate::store::UnlockError),
    #[error("{0}")]
    Acme(String),
    #[error("catalog zone: {0}")]
    Catalog(String),
}

/// Binds TCP and `udp_sockets` UDP sockets (one per UDP thread, `SO_REUSEPORT`) on one
/// port. TCP goes first and without `SO_REUSEPORT`: with port 0 the kernel may hand a
/// reuse-port UDP socket a port another process's group already has (and split its traffic
/// with it), but never a TCP port in use, and the UDP sockets then bind that port by number.
async fn bind_dns(addr: SocketAddr, udp_sockets: usize) -> Result<(Vec<std::net::UdpSocket>, TcpListener), StartError> {
    let bind_err = |what, source| StartError::Bind { what, addr, source };
    for _ in 0..20 {
        let tcp = TcpListener::bind(addr).await.map_err(|e| bind_err("dns tcp", e))?;
        let bound = tcp.local_addr().map_err(|e| bind_err("dns tcp", e))?;
        let udp: std::io::Result<Vec<_>> = (0..udp_sockets.max(1)).map(|_| dns::udp::bind(bound)).collect();
        match udp {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => return Err(bind_err("dns udp", e)),
            Err(_) => continue, // UDP taken on that port: another one
        }
    }
    Err(bind_err(
        "dns",
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "no port free for both UDP and TCP"),
    ))
}

/// Makes the catalog zone what `[dns] catalog_zone` says (made, renamed, removed, or its
/// members brought up to date with the zones), before anything else writes.
async fn sync_catalog(store: &Store, config: &Config) -> Result<(), StartError> {
    let name = config.dns.catalog().map_err(StartError::Catalog)?;
    let s = store.clone();
    let sync = tokio::task::spawn_blocking(move || {
        s.write_blocking_as(Actor::operator(), move |tx| tx.sync_catalog(name.as_ref()))
    })
    .await
    .expect("catalog task")
    .map_err(|e| StartError::Catalog(e.to_string()))?;
    if sync.added + sync.dropped > 0 {
        tracing::info!(
            added = sync.added,
            dropped = sync.dropped,
            "catalog members brought up to date"
        );
    }
    Ok(())
}

/// Imports the demo zones into a new `demo` team with a full-access token, all in one
/// transaction (so a failure leaves nothing), and returns the token's secret. `None` when
/// the store already holds a team: only a new data directory gets the demo.
fn import_demo(store: &Store) -> Result<Option<String>, String> {
    if store.read_blocking(|r| r.has_teams()).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let seeds = DEMO_ZONES
        .iter()
        .map(|(file, text)| zonefile::parse(text, None).map_err(|e| format!("{file}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut token, secret) = mint(uuid::Uuid::nil(), "demo", &[]); // argon2, off the writer
    store
        .write_blocking_as(Actor::operator(), move |tx| {
            let team = tx.create_team("demo")?;
            for seed in seeds {
                tx.create_zone(team.id, seed)?;
            }
            token.team_id = team.id;
            tx.create_token(&token)
        })
        .map_err(|e| e.to_string())?;
    Ok(Some(secret))
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let config = Arc::new(config);
    let files = crate::listener::raise_fd_limit();
    let wanted = (config.api.max_connections + config.dns.tcp_max_connections) as u64 + 256;
    if files < wanted {
        tracing::warn!(
            open_files = files,
            wanted,
            "the open-file limit is below what the connection caps allow; lower [api] max_connections or [dns] tcp_max_connections, or raise the limit"
        );
    }
    let db_path = config.db_path();
    let opening = std::time::Instant::now();
    let store = {
        let (path, cache) = (db_path.clone(), config.store.cache_mib.max(1) << 20);
        tokio::task::spawn_blocking(move || Store::open_with_cache(&path, cache))
            .await
            .expect("open task")?
    };
    tracing::info!(
        elapsed_ms = opening.elapsed().as_millis() as u64,
        "store opened and checked"
    );
    store.set_caps(config.limits);
    let sealer = {
        let (store, path) = (store.clone(), config.key_path());
        Arc::new(
            tokio::task::spawn_blocking(move || store.unlock(&path))
                .await
                .expect("unlock task")?,
        )
    };
    let issuer =
        Arc::new(crate::certificates::Issuer::new(store.clone(), sealer.clone(), &config).map_err(StartError::Acme)?);
    let metrics = config.metrics.listen.map(|_| Metrics::new());
    if let Some(m) = &metrics {
        store.set_metrics(m.clone());
    }
    let rrl = dns::rrl::Rrl::new(&config.rrl).map(Arc::new);
    let zones = Arc::new(Zones::new(Some(sealer.clone()), config.dnssec.policy()));
    let targets = config.dns.also_notify.clone();
    let notifier = (!targets.is_empty()).then(|| dns::notify::Notifier::new(zones.clone(), targets, metrics.clone()));
    let secondaries = notifier.as_ref().map(dns::notify::Notifier::secondaries);
    let watcher = notifier.clone();
    // Every socket is bound before anything is written or served: a start that cannot bind
    // leaves the store as it found it.
    let (udp, tcp) = bind_dns(config.dns.listen, config.dns.udp_threads()).await?;
    let listener = TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "api",
            addr: config.api.listen,
            source,
        })?;
    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
            what: "metrics",
            addr,
            source,
        })?),
        None => None,
    };
    let operator_socket = crate::admin::bind(&config.socket_path()).map_err(|source| StartError::Socket {
        path: config.socket_path(),
        source,
    })?;

    // Probes and scrapes are answered from here on: /readyz says what start-up waits for.
    let ready = Arc::new(Readiness::default());
    let observe = Observe {
        store: store.clone(),
        ready: ready.clone(),
        metrics: metrics.clone(),
        rrl: rrl.clone(),
        secondaries: secondaries.clone(),
        per_zone_series_limit: config.metrics.per_zone_series_limit,
        scraping: Arc::default(),
    };
    let (stop_observer, observer_stopped) = watch::channel(false);
    let (metrics_addr, observer) = match metrics_listener {
        Some(l) => {
            let addr = l.local_addr().expect("bound");
            let (limits, app) = (observer_limits(&config.api), api::health::router(observe.clone()));
            let task = tokio::spawn(async move { api::server::serve(l, app, &limits, observer_stopped).await });
            tracing::info!("metrics listening on http://{addr}");
            (Some(addr), AbortUnlessStarted(Some(task)))
        }
        None => (None, AbortUnlessStarted(None)),
    };

    let keys = Arc::new(dns::Keys::new(&config.dns.transfer_keys(), Some(sealer.clone())));
    {
        let (store, zones, keys) = (store.clone(), zones.clone(), keys.clone());
        let building = std::time::Instant::now();
        tokio::task::spawn_blocking(move || dns::attach(&store, zones, keys, notifier))
            .await
            .expect("attach task")?;
        tracing::info!(
            elapsed_ms = building.elapsed().as_millis() as u64,
            "zone snapshots built"
        );
    }
    ready.snapshots_built();
    sync_catalog(&store, &config).await?;
    let demo_token = if config.demo.enabled {
        let s = store.clone();
        tokio::task::spawn_blocking(move || import_demo(&s))
            .await
            .expect("demo task")
            .map_err(StartError::Demo)?
    } else {
        None
    };

    let dns_addr = udp[0].local_addr().expect("bound");
    let handler = Handler::new(zones.clone(), config.dns.max_udp_payload)
        .with_transfers(
            dns::Transfers {
                acl: config.dns.transfer_acl(),
                journal: store.journal(),
            },
            keys,
        )
        .with_updates(dns::Updates::new(
            store.updater(),
            config.dns.update_rate_per_key,
            config.dns.update_rate_per_team,
        ))
        .with_rrl(rrl.clone())
        .with_metrics(metrics.clone())
        .with_secondaries(secondaries.clone())
        .with_identity(dns::Identity::from_config(&config.dns));
    let (dns_udp, dns_tcp) =
        dns::serve(udp, tcp, handler, dns::tcp::Limits::from_config(&config.dns)).map_err(|source| {
            StartError::Bind {
                what: "dns udp threads",
                addr: dns_addr,
                source,
            }
        })?;
    ready.dns_serving();
    tracing::info!("dns listening on {dns_addr} (udp and tcp)");

    let auth = Arc::new(Authenticator::new(
        store.clone(),
        crate::auth::Policy::from_config(&config.auth),
    ));
    let lent = crate::admin::Server {
        store: store.clone(),
        auth: auth.clone(),
        sealer: sealer.clone(),
        secondaries: secondaries.clone(),
        dnssec: Arc::new(config.dnssec.clone()),
    };
    let admin = crate::admin::serve(operator_socket, lent).map_err(|source| StartError::Socket {
        path: config.socket_path(),
        source,
    })?;
    let api_addr = listener.local_addr().expect("bound");
    let (stop, stopped) = watch::channel(false);
    let hands = crate::hosting::Hands {
        provisioner: crate::hosting::provisioner(&config),
        issuer,
        renewals: Arc::default(),
    };
    let renewals = hands.renewals.clone();
    let (jobs, worker) = crate::hosting::start(store.clone(), hands, config.clone(), metrics.clone(), stopped.clone());
    let renewer = crate::hosting::schedule_renewals(
        store.clone(),
        jobs.clone(),
        renewals,
        Duration::from_secs(config.acme.renewal_pause_secs),
        stopped.clone(),
    );
    let rate_limits = Arc::new(api::rate_limits::RateLimits::new(&config.rate_limits));
    let mut background = vec![
        api::rate_limits::sweep(rate_limits.clone(), auth.clone()),
        api::idempotency::sweep(store.clone()),
        watch_store(store.clone()),
        dns::resigner::start(
            store.clone(),
            zones.clone(),
            config.dnssec.clone(),
            metrics.clone(),
            stopped.clone(),
        ),
    ];
    background.extend(metrics.clone().map(upkeep));
    // What each secondary serves, asked once DNS answers (it may be a secondary's primary).
    background.extend(watcher.map(|n| n.watch()));
    let reserved = Arc::new(config.dns.reserved());
    let state = AppState::new(api::Shared {
        store: store.clone(),
        auth: auth.clone(),
        config: config.clone(),
        jobs,
        rate_limits,
        reserved,
        sealer: sealer.clone(),
        observe,
        dns_addr,
    });
    let app = api::router(state);
    let api = {
        let config = config.clone();
        tokio::spawn(async move { api::server::serve(listener, app, &config.api, stopped).await })
    };
    ready.api_serving();
    tracing::info!("api listening on http://{api_addr}");
    Ok(Running {
        dns_addr,
        api_addr,
        metrics_addr,
        demo_token,
        store,
        zones,
        auth,
        sealer,
        rrl,
        metrics,
        ready,
        dns_udp,
        dns_tcp,
        api,
        admin,
        worker,
        renewer,
        observer: observer.started(),
        background,
        stop,
        stop_observer,
    })
}

/// The metrics listener's task, stopped if start-up fails after it began serving (its
/// handle on the store must not outlive a failed start).
struct AbortUnlessStarted(Option<JoinHandle<()>>);

impl AbortUnlessStarted {
    fn started(mut self) -> Option<JoinHandle<()>> {
        self.0.take()
    }
}

impl Drop for AbortUnlessStarted {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// The metrics listener's bounds: the API's timeouts, and room for a few scrapers and
/// probes rather than for the API's crowd.
fn observer_limits(api: &crate::config::ApiConfig) -> crate::config::ApiConfig {
    crate::config::ApiConfig {
        max_connections: 64,
        max_connections_per_address: 16,
        ..api.clone()
    }
}

/// Drains the histograms' samples into their buckets every few seconds, scraped or not
/// (the exporter keeps each sample until then).
fn upkeep(metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.upkeep();
        }
    })
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
    /// Drains and stops: `/readyz` turns 503 at once; the API stops accepting and finishes
    /// the requests in flight, the worker finishes its running jobs, both within the shutdown
    /// grace period (DNS keeps answering meanwhile, so what they write is served); then the
    /// metrics listener, DNS and the operator socket stop, and the store closes once every
    /// write is committed.
    pub async fn shutdown(self) {
        self.ready.stopping();
        let _ = self.stop.send(true);
        let (api, worker, renewer) = (self.api, self.worker, self.renewer);
        let _ = tokio::join!(api, worker, renewer); // each ends within the grace period
        let _ = self.stop_observer.send(true);
        if let Some(observer) = self.observer {
            let _ = observer.await;
        }
        // The DNS threads and tasks hold the journal (IXFR); stopping them closes every
        // connection too.
        let udp = self.dns_udp;
        let _ = tokio::task::spawn_blocking(move || udp.stop()).await;
        for task in [self.dns_tcp, self.admin].into_iter().chain(self.background) {
            task.abort();
            let _ = task.await; // each holds a store handle: gone before the store closes
        }
        let store = self.store;
        drop(self.zones);
        drop(self.auth);
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || store.close()),
        )
        .await;
    }
}
