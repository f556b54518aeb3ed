//! The HTTPS client ACME talks through: HTTP/1.1 over rustls (ring), trusting either the
//! system's roots or the operator's `[acme] ca_bundle`, with every request bounded in time
//! and every response body in size.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Limited;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Time to connect, and time for a whole request until its headers are in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body read from the CA: directories, orders and chains are a few KiB.
const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
}

impl Http {
    /// A client trusting the roots in `ca_bundle` (PEM), or the system's when `None`.
    pub fn new(ca_bundle: Option<&Path>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        match ca_bundle {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("acme.ca_bundle {}: {e}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("acme.ca_bundle {} holds no usable certificate", path.display()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "no system root certificates found (install ca-certificates, or set acme.ca_bundle)".into(),
                    );
                }
            }
        }
        // ring, as the rest of ipx: rustls deprecates it for lacking post-quantum key
        // exchange, which only aws-lc (a C build we keep out) offers today.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }
}

impl HttpClient for Http {
    fn request(
        &self,
        req: axum::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let pending = self.client.request(req);
        Box::pin(async move {
            let response = tokio::time::timeout(REQUEST_TIMEOUT, pending)
                .await
                .map_err(|_| Error::Other("the CA did not answer within 30 s".into()))?
                .map_err(|e| Error::Other(describe(&e).into()))?;
            let (parts, body) = response.into_parts();
            Ok(BytesResponse::from(axum::http::Response::from_parts(
                parts,
                Limited::new(body, MAX_BODY),
            )))
        })
    }
}

/// A client error with its cause (hyper's own message is only "client error (Connect)").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
