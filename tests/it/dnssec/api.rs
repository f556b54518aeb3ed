//! The DNSSEC API's contract: the switch, the view, what is listed, every bad input.

use hickory_proto::rr::RecordType;
use serde_json::json;

use super::{dnssec, do_query, enable, rrsigs, signed_app};
use crate::helpers::udp_query;

#[tokio::test]
async fn turning_dnssec_on_shows_the_key_ds_and_managed_records_and_signs_answers() {
    let app = signed_app(|_| {}).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "on.test").await;
    let before = app.get(&token, &format!("/v1/zones/{zone}")).await;
    assert_eq!(before.data()["dnssec"], false);
    let view = dnssec(&app, &token, &zone).await;
    assert_eq!(
        view,
        json!({ "enabled": false, "state": "unsigned", "keys": [], "rollover": null })
    );
    let m = udp_query(app.dns_addr(), &do_query("on.test.", RecordType::SOA)).await;
    assert!(rrsigs(&m).is_empty(), "unsigned until turned on");

    let view = enable(&app, &token, &zone).await;
    assert_eq!(
        (view["enabled"].clone(), view["state"].clone()),
        (json!(true), json!("signed"))
    );
    let keys = view["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one combined signing key");
    let key = &keys[0];
    assert_eq!(
        (key["algorithm"].clone(), key["flags"].clone(), key["state"].clone()),
        (json!(13), json!(257), json!("active"))
    );
    let fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["algorithm", "created_at", "dnskey", "ds", "flags", "state", "tag"]
    );
    let tag = key["tag"].as_u64().unwrap();
    let ds: Vec<&str> = key["ds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(ds.len(), 2);
    assert!(ds[0].starts_with(&format!("{tag} 13 2 ")) && ds[0].len() == format!("{tag} 13 2 ").len() + 64);
    assert!(ds[1].starts_with(&format!("{tag} 13 4 ")) && ds[1].len() == format!("{tag} 13 4 ").len() + 96);
    assert!(ds.iter().all(|d| {
        d.split(' ')
            .nth(3)
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    }));

    // The DS is what BIND's own tool derives from the DNSKEY the zone serves.
    let dnskey = format!("on.test. 3600 IN DNSKEY {}\n", key["dnskey"].as_str().unwrap());
    for (flag, want) in [("-2", ds[0]), ("-a", ds[1])] {
        let mut args = vec![flag];
        if flag == "-a" {
            args.push("SHA-384");
        }
        args.extend(["-f", "-", "on.test"]);
        let (ok, out) = crate::clients::run(
            crate::clients::tool("dnssec-dsfromkey", "apt-get install bind9-dnsutils"),
            &args,
            &dnskey,
            &[],
        )
        .await;
        assert!(ok, "{out}");
        assert_eq!(out.trim(), format!("on.test. IN DS {want}"));
    }

    let records = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    let listed: Vec<(String, bool)> = records
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type"].as_str().unwrap().to_string(), r["managed"].as_bool().unwrap()))
        .collect();
    for t in ["DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM"] {
        assert!(
            listed.contains(&(t.to_string(), true)),
            "{t} is listed as managed: {listed:?}"
        );
    }
    assert!(
        !listed.iter().any(|(t, _)| t == "RRSIG" || t == "NSEC3"),
        "derived records are not listed"
    );
    let dnskey_id = records
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "DNSKEY")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/zones/{zone}/records/{dnskey_id}");
    assert_eq!(app.delete(&token, &path).await.code(), "managed_record");
    assert_eq!(
        app.patch(&token, &path, json!({ "ttl": 60 })).await.code(),
        "managed_record"
    );

    let m = udp_query(app.dns_addr(), &do_query("on.test.", RecordType::SOA)).await;
    assert_eq!(rrsigs(&m).len(), 1, "signed: {m:?}");
    assert!(
        m.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        "DO echoed (RFC 3225)"
    );
    let plain = udp_query(
        app.dns_addr(),
        &crate::helpers::query("on.test.", RecordType::SOA, true),
    )
    .await;
    assert!(
        rrsigs(&plain).is_empty() && plain.authorities.is_empty(),
        "without DO, answers as before"
    );

    // Again: nothing changes, the same key stays.
    let again = app
        .patch(&token, &format!("/v1/zones/{zone}"), json!({ "dnssec": true }))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(dnssec(&app, &token, &zone).await["keys"][0]["tag"], tag);
    let etag = app.get(&token, &format!("/v1/zones/{zone}/dnssec")).await.headers["etag"].clone();
    assert_eq!(etag.to_str().unwrap(), format!("\"{}\"", again.data()["serial"]));
}

#[tokio::test]
async fn bad_dnssec_requests_are_clear_errors_and_change_nothing() {
    let app = signed_app(|_| {}).await;
    let token = app.team("acme", &[]).await;
    let reader = app.team("acme", &["dns:read"]).await;
    let other = app.team("other", &[]).await;
    let zone = app.zone(&token, "bad.test").await;
    let path = format!("/v1/zones/{zone}");
    let serial = app.get(&token, &path).await.data()["serial"].clone();
    for (body, code) in [
        (json!({ "dnssec": "yes" }), "invalid_body"),
        (json!({ "dnssec": 1 }), "invalid_body"),
        (json!({ "dnssec": true, "algorithm": 8 }), "invalid_body"),
        (json!({}), "invalid_zone"),
        (json!({ "dnssec": null }), "invalid_zone"),
    ] {
        let r = app.patch(&token, &path, body.clone()).await;
        assert_eq!((r.status.as_u16(), r.code()), (422, code), "{body}: {}", r.body);
    }
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({ "dnssec": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412, "a stale If-Match");
    assert_eq!(
        app.patch(&reader, &path, json!({ "dnssec": true })).await.code(),
        "insufficient_scope"
    );
    assert_eq!(
        app.patch(&other, &path, json!({ "dnssec": true })).await.status,
        404,
        "another team's zone"
    );
    assert_eq!(app.get(&other, &format!("{path}/dnssec")).await.status, 404);
    assert_eq!(
        app.post(&other, &format!("{path}/dnssec/rollover"), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.post(&other, &format!("{path}/dnssec/ds-seen"), json!({}))
            .await
            .status,
        404
    );
    for action in ["rollover", "ds-seen"] {
        let r = app.post(&token, &format!("{path}/dnssec/{action}"), json!({})).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (409, "dnssec_off"),
            "{action} of an unsigned zone"
        );
    }
    assert_eq!(app.get(&token, "/v1/zones/not-a-uuid/dnssec").await.status, 404);
    let now = app.get(&token, &path).await;
    assert_eq!(
        (now.data()["serial"].clone(), now.data()["dnssec"].clone()),
        (serial, json!(false)),
        "nothing changed"
    );
    assert_eq!(dnssec(&app, &token, &zone).await["state"], "unsigned");

    enable(&app, &token, &zone).await;
    let r = app.post(&token, &format!("{path}/dnssec/rollover"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = app.post(&token, &format!("{path}/dnssec/rollover"), json!({})).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "rollover_in_progress"));
    let r = app.post(&token, &format!("{path}/dnssec/ds-seen"), json!({})).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "not_waiting_for_ds"),
        "the new key's DS is not asked for yet"
    );
    let r = app.patch(&token, &path, json!({ "dnssec": false })).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "rollover_in_progress"),
        "turning off waits for the rollover"
    );
}
