//! A signed zone's life, asserted from outside (DNS and API): a key rollover through every
//! state, turning off through CDS/CDNSKEY DELETE, the operator's commands, a restart, and
//! private keys that are never in the clear.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use super::{Anchor, anchor_file, dnssec, do_query, enable, rrsigs, signed_app, validated};
use crate::helpers::{TestApp, answers, udp_query};

/// The zone's answer to `rtype` at its apex, as `type rdata` lines.
async fn apex(app: &TestApp, zone: &str, rtype: RecordType) -> Vec<String> {
    answers(&udp_query(app.dns_addr(), &crate::helpers::query(zone, rtype, true)).await)
}

/// Polls the DNSSEC view until `done` holds (15 s at most).
async fn wait_view(app: &TestApp, token: &str, zone: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = dnssec(app, token, zone).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never got there: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rollover_walks_every_state_and_the_zone_validates_throughout() {
    // A zone of short TTLs: the rollover waits for them, a second or two each.
    let app = signed_app(|c| {
        c.dnssec.resign_interval_secs = 1;
        (c.zones.soa_ttl, c.zones.ns_ttl, c.zones.minimum) = (2, 2, 2);
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "roll.test").await;
    let www = json!({ "name": "www", "type": "A", "content": "192.0.2.1", "ttl": 2 });
    assert_eq!(
        app.post(&token, &format!("/v1/zones/{zone}/records"), www).await.status,
        201
    );
    let start = enable(&app, &token, &zone).await;
    let old = start["keys"][0].clone();
    let old_tag = old["tag"].as_u64().unwrap();
    let (dns, dir) = (app.dns_addr(), app.dir().to_path_buf());
    let old_ds = anchor_file(&dir, "roll.test", &[Anchor::Ds(&old)]);
    let both_valid = |anchors: std::path::PathBuf| async move {
        validated(dns, &anchors, "roll.test", "www.roll.test", "A").await;
        validated(dns, &anchors, "roll.test", "nope.roll.test", "A").await;
    };
    // A validating resolver that keeps what it learns (the DNSKEY set for its TTL) and trusts
    // the old DS throughout, as resolvers do until the parent's DS changes.
    let unbound = super::validate::start_unbound(&dir, "roll.test", old["ds"][0].as_str().unwrap(), dns);
    let resolver_validates = |n: u32| {
        let addr = unbound.addr;
        async move {
            for name in ["www.roll.test.".to_string(), format!("nope{n}.roll.test.")] {
                let m = super::validate::resolve(addr, &name, RecordType::A).await;
                assert!(m.metadata.authentic_data, "unbound validates {name}\n{m:?}");
            }
        }
    };
    resolver_validates(0).await;
    // The parent confirms the first DS: signed becomes secure.
    let r = app
        .post(&token, &format!("/v1/zones/{zone}/dnssec/ds-seen"), json!({}))
        .await;
    assert_eq!((r.status.as_u16(), r.data()["state"].clone()), (200, json!("secure")));

    let r = app
        .post(&token, &format!("/v1/zones/{zone}/dnssec/rollover"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let roll = &r.data()["rollover"];
    assert_eq!(
        (roll["state"].clone(), roll["waiting_for"].clone()),
        (json!("publish"), json!("time"))
    );
    assert!(roll["next_step_at"].is_string());
    let new_tag = roll["new_key"].as_u64().unwrap();
    assert_eq!(roll["old_key"].as_u64(), Some(old_tag));
    let published = apex(&app, "roll.test.", RecordType::DNSKEY).await;
    assert_eq!(published.len(), 2, "both keys in the DNSKEY set: {published:?}");
    let cds = apex(&app, "roll.test.", RecordType::CDS).await;
    assert!(
        cds[0].contains(&format!("CDS {old_tag} 13 2")),
        "the old key's CDS still: {cds:?}"
    );
    both_valid(old_ds.clone()).await;
    resolver_validates(1).await;

    // Ready: the new key signs the zone; its CDS asks the parent for its DS.
    let ready = wait_view(&app, &token, &zone, |v| v["rollover"]["state"] == "ready").await;
    assert_eq!(ready["rollover"]["waiting_for"], "ds_seen");
    assert_eq!(ready["rollover"]["next_step_at"], Value::Null);
    let new = ready["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["tag"].as_u64() == Some(new_tag))
        .unwrap()
        .clone();
    assert_eq!(new["state"], "active");
    let m = udp_query(dns, &do_query("www.roll.test.", RecordType::A)).await;
    let signers: Vec<u16> = rrsigs(&m).iter().map(|s| s.input().key_tag).collect();
    assert_eq!(
        signers,
        [new_tag as u16],
        "the zone's data is signed by the new key alone"
    );
    let cds = apex(&app, "roll.test.", RecordType::CDS).await;
    assert!(
        cds.len() == 1 && cds[0].contains(&format!("CDS {new_tag} 13 2")),
        "{cds:?}"
    );
    both_valid(old_ds.clone()).await; // resolvers holding the old DS
    resolver_validates(2).await;
    let new_ds = anchor_file(&dir, "roll.test", &[Anchor::Ds(&new)]);
    both_valid(new_ds.clone()).await; // and parents that already switched

    // The parent has the new DS: the old key retires once caches forget it, then leaves.
    let r = app
        .post(&token, &format!("/v1/zones/{zone}/dnssec/ds-seen"), json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["rollover"]["state"], "retire");
    assert_eq!(r.data()["rollover"]["waiting_for"], "time");
    both_valid(new_ds.clone()).await;
    let done = wait_view(&app, &token, &zone, |v| v["rollover"].is_null()).await;
    let tags: Vec<u64> = done["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["tag"].as_u64().unwrap())
        .collect();
    assert_eq!(tags, [new_tag]);
    assert_eq!(done["state"], "secure");
    assert_eq!(apex(&app, "roll.test.", RecordType::DNSKEY).await.len(), 1);
    both_valid(new_ds).await;
    let out = super::delv(dns, &old_ds, "roll.test", "www.roll.test", "A").await;
    assert!(
        !out.contains("fully validated"),
        "the old DS no longer leads anywhere:\n{out}"
    );
    let events = app.get(&token, "/v1/events?limit=100").await;
    let actions: Vec<&str> = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("zone.dnssec"))
        .collect();
    for a in [
        "zone.dnssec_enabled",
        "zone.dnssec_rollover_started",
        "zone.dnssec_rollover_ready",
        "zone.dnssec_ds_seen",
        "zone.dnssec_rollover_done",
    ] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_off_publishes_cds_delete_and_stays_signed_until_the_ds_is_gone() {
    let app = signed_app(|c| {
        c.dnssec.resign_interval_secs = 1;
        c.dnssec.parent_ds_ttl_secs = 3;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "off.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    let view = enable(&app, &token, &zone).await;
    let anchors = anchor_file(app.dir(), "off.test", &[Anchor::Ds(&view["keys"][0])]);
    let path = format!("/v1/zones/{zone}");
    let r = app.patch(&token, &path, json!({ "dnssec": false })).await;
    assert_eq!((r.status.as_u16(), r.data()["dnssec"].clone()), (200, json!(false)));
    let v = dnssec(&app, &token, &zone).await;
    assert_eq!(
        (v["enabled"].clone(), v["state"].clone()),
        (json!(false), json!("disabling"))
    );
    assert_eq!(
        apex(&app, "off.test.", RecordType::CDS).await,
        ["off.test. CDS 0 0 0 00"]
    );
    let cdnskey = apex(&app, "off.test.", RecordType::CDNSKEY).await;
    assert!(
        cdnskey.len() == 1 && cdnskey[0].starts_with("off.test. CDNSKEY 0 3 0"),
        "{cdnskey:?}"
    );
    // Still signed: resolvers holding the DS keep validating.
    validated(app.dns_addr(), &anchors, "off.test", "www.off.test", "A").await;
    validated(app.dns_addr(), &anchors, "off.test", "off.test", "CDS").await;
    // Turning it back on cancels, with the same key.
    let r = app.patch(&token, &path, json!({ "dnssec": true })).await;
    assert_eq!(r.data()["dnssec"], true);
    let v = dnssec(&app, &token, &zone).await;
    assert_eq!(
        (v["state"].clone(), v["keys"][0]["tag"].clone()),
        (json!("signed"), view["keys"][0]["tag"].clone())
    );
    assert!(apex(&app, "off.test.", RecordType::CDS).await[0].contains(" 13 2 "));
    // Off again, and the parent's DS is confirmed gone: still signed while resolvers may
    // cache the DS (its TTL and the propagation delay, 4 s here), then unsigned.
    app.patch(&token, &path, json!({ "dnssec": false })).await;
    let r = app.post(&token, &format!("{path}/dnssec/ds-seen"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["state"], "disabling");
    assert!(r.data()["unsigned_at"].is_string(), "{}", r.body);
    validated(app.dns_addr(), &anchors, "off.test", "www.off.test", "A").await;
    let mut v = dnssec(&app, &token, &zone).await;
    for _ in 0..100 {
        if v["state"] == "unsigned" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        v = dnssec(&app, &token, &zone).await;
    }
    assert_eq!(
        v,
        json!({ "enabled": false, "state": "unsigned", "keys": [], "rollover": null })
    );
    let m = udp_query(app.dns_addr(), &do_query("www.off.test.", RecordType::A)).await;
    assert!(rrsigs(&m).is_empty() && m.answers.len() == 1, "served unsigned: {m:?}");
    assert!(apex(&app, "off.test.", RecordType::DNSKEY).await.is_empty());
    let records = app.get(&token, &format!("{path}/records")).await;
    assert!(
        records
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !["DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM"].contains(&r["type"].as_str().unwrap()))
    );
    let axfr = super::axfr_text(app.dns_addr(), "off.test").await;
    assert!(!axfr.contains("RRSIG") && !axfr.contains("NSEC3"), "{axfr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_zone_comes_back_the_same_after_a_restart_and_its_key_is_never_in_the_clear() {
    let mut app = signed_app(|_| {}).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "kept.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    let view = enable(&app, &token, &zone).await;
    let before = super::axfr_text(app.dns_addr(), "kept.test").await;
    app.restart().await;
    let after = super::axfr_text(app.dns_addr(), "kept.test").await;
    let sorted = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with(';') && !l.is_empty())
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&before), sorted(&after), "the very same signatures and chain");
    let anchors = anchor_file(app.dir(), "kept.test", &[Anchor::Key(&view["keys"][0])]);
    validated(app.dns_addr(), &anchors, "kept.test", "www.kept.test", "A").await;
    let r = app.record(&token, &zone, "after", "A", "192.0.2.2").await;
    assert_eq!(r.status, 201);
    validated(app.dns_addr(), &anchors, "kept.test", "after.kept.test", "A").await;

    // The private key, opened with the key file, is nowhere in the database, the API's
    // answers or the zone's export.
    let data = app.config.store.data_dir.clone();
    let key_path = app.config.key_path();
    app.running.take().unwrap().shutdown().await;
    let store = ipx::store::Store::open(&data.join("ipx.redb")).unwrap();
    let sealer = store.unlock(&key_path).unwrap();
    let zone_id: uuid::Uuid = zone.parse().unwrap();
    let keys = store.read_blocking(|r| r.dnssec_keys(zone_id)).unwrap();
    let pkcs8 = sealer
        .open(&ipx::domain::dnssec_key_context(keys[0].id), &keys[0].private)
        .unwrap();
    store.close();
    let secret = pkcs8.expose();
    let db = std::fs::read(data.join("ipx.redb")).unwrap();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // The private scalar sits in the PKCS#8 document: look for the whole and for its base64.
    assert!(!contains(&db, secret), "the key is not in the database in the clear");
    assert!(!contains(&db, &secret[36..68]), "nor its private scalar");
    assert!(!contains(&db, data_encoding::BASE64.encode(secret).as_bytes()));
    assert!(!contains(&db, data_encoding::BASE64.encode(&secret[36..68]).as_bytes()));
    app.running = Some(ipx::app::start(app.config.clone()).await.unwrap());
    for path in [
        format!("/v1/zones/{zone}/dnssec"),
        format!("/v1/zones/{zone}/export"),
        format!("/v1/zones/{zone}/records"),
    ] {
        let body = app.get(&token, &path).await.body.to_string();
        assert!(
            !body.contains(&data_encoding::BASE64.encode(secret)) && !body.contains("private"),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_turn_signing_on_show_it_and_turn_it_off_with_the_cli() {
    let app = signed_app(|c| c.dnssec.resign_interval_secs = 1).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "cli.test").await;
    use ipx::admin::{Command, DnssecCmd, ZoneCmd};
    let run = |cmd: DnssecCmd| app.operator(Command::Zone(ZoneCmd::Dnssec(cmd)));
    let out = run(DnssecCmd::Enable {
        zone: "cli.test".into(),
    })
    .await
    .unwrap();
    assert!(out.contains("signed"), "{out}");
    let out = run(DnssecCmd::Show { zone: zone.clone() }).await.unwrap();
    let v = dnssec(&app, &token, &zone).await;
    let ds = v["keys"][0]["ds"][0].as_str().unwrap();
    assert!(
        out.contains(&format!("cli.test. IN DS {ds}")),
        "the DS a registrar takes:\n{out}"
    );
    assert!(out.contains("state signed"), "{out}");
    let out = run(DnssecCmd::Disable {
        zone: "cli.test".into(),
        ds_gone: false,
    })
    .await
    .unwrap();
    assert!(out.contains("disabling"), "{out}");
    let out = run(DnssecCmd::Disable {
        zone: "cli.test".into(),
        ds_gone: true,
    })
    .await
    .unwrap();
    assert!(out.contains("served unsigned from"), "{out}");
    let mut state = dnssec(&app, &token, &zone).await["state"].clone();
    for _ in 0..100 {
        if state == "unsigned" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = dnssec(&app, &token, &zone).await["state"].clone();
    }
    assert_eq!(state, "unsigned", "once caches forget the DS (2 s here)");
    let err = run(DnssecCmd::Show {
        zone: "nope.test".into(),
    })
    .await
    .unwrap_err();
    assert!(err.contains("no zone"), "{err}");
}
