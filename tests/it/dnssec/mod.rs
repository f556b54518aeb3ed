//! DNSSEC, asserted from outside: the API, and the tools operators and resolvers use —
//! `delv` (BIND) with the zone's key or DS as trust anchor, `unbound` as a validating
//! resolver, `ldns-verify-zone` and `kzonecheck` on the AXFR dump, a Knot secondary.

mod api;
mod lifecycle;
mod secondary;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::clients::{run, tool};
use crate::helpers::{TestApp, spawn_app_with};

/// A server whose rollover waits are a second or two, as `[dnssec]` lets tests have them.
pub async fn signed_app(tweak: impl FnOnce(&mut ipx::config::Config)) -> TestApp {
    spawn_app_with(|c, _| {
        c.dnssec.dnskey_ttl = 1;
        c.dnssec.propagation_delay_secs = 1;
        c.dnssec.parent_ds_ttl_secs = 1;
        c.dns.allow_transfer = vec!["127.0.0.1".into()];
        tweak(c);
    })
    .await
}

/// Turns signing on for `zone` and returns its DNSSEC view.
pub async fn enable(app: &TestApp, token: &str, zone: &str) -> Value {
    let r = app
        .patch(token, &format!("/v1/zones/{zone}"), json!({ "dnssec": true }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["dnssec"], true);
    dnssec(app, token, zone).await
}

pub async fn dnssec(app: &TestApp, token: &str, zone: &str) -> Value {
    let r = app.get(token, &format!("/v1/zones/{zone}/dnssec")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.data().clone()
}

/// A trust anchor for delv and unbound.
pub enum Anchor<'v> {
    /// The key itself (its DNSKEY, as the view shows it).
    Key(&'v Value),
    /// Its DS of digest type 2, as a parent would hold it.
    Ds(&'v Value),
}

/// Writes a `trust-anchors` file for `zone` (delv's format) and returns its path.
pub fn anchor_file(dir: &Path, zone: &str, anchors: &[Anchor<'_>]) -> PathBuf {
    let mut text = String::from("trust-anchors {\n");
    for a in anchors {
        let line = match a {
            Anchor::Key(key) => {
                let dnskey = key["dnskey"].as_str().unwrap();
                let (head, b64) = dnskey.rsplit_once(' ').unwrap();
                format!("  {zone}. static-key {head} \"{b64}\";\n")
            }
            Anchor::Ds(key) => {
                let ds = key["ds"][0].as_str().unwrap();
                let (head, hex) = ds.rsplit_once(' ').unwrap();
                format!("  {zone}. static-ds {head} \"{hex}\";\n")
            }
        };
        text += &line;
    }
    text += "};\n";
    let path = dir.join(format!("anchor-{zone}-{}.conf", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

/// What `delv` says of `name type` asked of `server`, trusting `anchors` for `root`.
pub async fn delv(server: SocketAddr, anchors: &Path, root: &str, name: &str, rtype: &str) -> String {
    let delv = tool("delv", "apt-get install bind9-dnsutils");
    let (server_arg, port) = (format!("@{}", server.ip()), server.port().to_string());
    let (anchors, root) = (anchors.display().to_string(), format!("+root={root}"));
    let (_, out) = run(
        delv,
        &[
            &server_arg,
            "-p",
            &port,
            "-a",
            &anchors,
            &root,
            "+nomultiline",
            name,
            rtype,
        ],
        "",
        &[],
    )
    .await;
    out
}

/// Asserts that delv validates the answer (positive or negative) fully.
pub async fn validated(server: SocketAddr, anchors: &Path, root: &str, name: &str, rtype: &str) -> String {
    let out = delv(server, anchors, root, name, rtype).await;
    assert!(
        out.contains("fully validated"),
        "{name} {rtype} is not validated:\n{out}"
    );
    out
}

/// The zone as an AXFR gives it, in presentation form (dig).
pub async fn axfr_text(server: SocketAddr, zone: &str) -> String {
    let dig = tool("dig", "apt-get install dnsutils");
    let (at, port) = (format!("@{}", server.ip()), server.port().to_string());
    let (ok, out) = run(
        dig,
        &[&at, "-p", &port, zone, "AXFR", "+nocmd", "+nostats", "+nocomments"],
        "",
        &[],
    )
    .await;
    assert!(ok && out.contains("SOA"), "AXFR of {zone} failed:\n{out}");
    out
}

/// A UDP proxy in front of a server that can break what it forwards: a resolver behind it
/// sees what an attacker on the path could make it see.
pub struct Proxy {
    pub addr: SocketAddr,
    tamper: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Forwards to `upstream`; while `tamper` is on, a bit of every RRSIG in the answer
    /// section of answers about `victim` (a name, lowercase, with its final dot) is flipped.
    pub async fn start(upstream: SocketAddr, victim: &str) -> Self {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let tamper = Arc::new(AtomicBool::new(false));
        let (flag, victim) = (tamper.clone(), victim.to_string());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, client)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let query = buf[..n].to_vec();
                let (sock, flag, victim) = (sock.clone(), flag.clone(), victim.clone());
                tokio::spawn(async move {
                    let Some(mut answer) = crate::helpers::udp_raw(upstream, &query).await else {
                        return;
                    };
                    if flag.load(Ordering::SeqCst) {
                        answer = broken(&answer, &victim);
                    }
                    let _ = sock.send_to(&answer, client).await;
                });
            }
        });
        Self { addr, tamper, task }
    }

    pub fn tamper(&self, on: bool) {
        self.tamper.store(on, Ordering::SeqCst);
    }
}

/// The message with one bit of each RRSIG's signature flipped in answers about `victim`.
fn broken(message: &[u8], victim: &str) -> Vec<u8> {
    let Ok(mut m) = Message::from_vec(message) else {
        return message.to_vec();
    };
    if !m
        .queries
        .first()
        .is_some_and(|q| q.name().to_string().eq_ignore_ascii_case(victim))
    {
        return message.to_vec();
    }
    for r in m.answers.iter_mut() {
        if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data {
            let mut bytes = sig.sig().to_vec();
            bytes[10] ^= 0x01;
            r.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(sig.input().clone(), bytes)));
        }
    }
    m.to_vec().unwrap_or_else(|_| message.to_vec())
}

/// The RRSIG records of a message's answer section.
pub fn rrsigs(m: &Message) -> Vec<&RRSIG> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// A query with the DO bit (RFC 3225) and room for signed answers.
pub fn do_query(name: &str, rtype: RecordType) -> Message {
    let mut m = crate::helpers::query(name, rtype, true);
    if let Some(e) = m.edns.as_mut() {
        e.set_dnssec_ok(true);
    }
    m
}
