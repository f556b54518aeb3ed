//! `/v1/zones`.

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn creating_a_zone_gives_201_location_and_a_served_soa_and_ns() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let r = app.post(&token, "/v1/zones", json!({ "name": "Shop.Test." })).await;
    assert_eq!(r.status, 201);
    let id = r.id();
    assert_eq!(r.headers["location"], format!("/v1/zones/{id}").as_str());
    assert_eq!(r.data()["name"], "shop.test");
    assert_eq!(r.data()["nameservers"], json!(["ns1.ipx.test.", "ns2.ipx.test."]));
    assert_eq!(
        app.get(&token, &format!("/v1/zones/{id}")).await.data()["name"],
        "shop.test"
    );
    let soa = app.udp("shop.test.", RecordType::SOA).await;
    assert!(soa.metadata.authoritative);
    assert_eq!(soa.answers.len(), 1);
    assert_eq!(app.udp("shop.test.", RecordType::NS).await.answers.len(), 2);
}

#[tokio::test]
async fn a_served_zone_name_is_409_for_another_team_and_for_zones_inside_it() {
    let app = spawn_app().await;
    let a = app.team("alpha", &[]).await;
    let b = app.team("beta", &[]).await;
    app.zone(&a, "taken.test").await;
    for name in ["taken.test", "sub.taken.test"] {
        let r = app.post(&b, "/v1/zones", json!({ "name": name })).await;
        assert_eq!(r.status, 409, "{name}");
        assert_eq!(r.code(), "zone_exists");
    }
    app.zone(&b, "deep.other.test").await;
    let r = app.post(&a, "/v1/zones", json!({ "name": "other.test" })).await;
    assert_eq!(r.status, 409, "a zone above another team's zone is refused too");
    assert_eq!(
        app.post(&a, "/v1/zones", json!({ "name": "taken.test" })).await.status,
        409
    );
    assert_eq!(app.get(&b, "/v1/zones").await.body["meta"]["pagination"]["total"], 1);
}

#[tokio::test]
async fn invalid_zone_names_are_422_with_a_field_error() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    for name in [
        "com",
        "",
        "a..test",
        "*.x.test",
        &format!("{}.test", "a".repeat(64)),
        "bad_label.test",
        "sp ace.test",
    ] {
        let r = app.post(&token, "/v1/zones", json!({ "name": name })).await;
        assert_eq!(r.status, 422, "{name:?}");
        assert_eq!(r.code(), "invalid_zone");
        assert!(r.body["error"]["fields"]["name"].is_string());
    }
    assert_eq!(
        app.get(&token, "/v1/zones").await.body["meta"]["pagination"]["total"],
        0
    );
}

#[tokio::test]
async fn zone_lists_page_in_creation_order_with_cursors() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(app.zone(&token, &format!("z{i}.test")).await);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/zones?limit=3".to_string();
    loop {
        let r = app.get(&token, &path).await;
        assert_eq!(r.body["meta"]["pagination"]["total"], 7);
        seen.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|z| z["id"].as_str().unwrap().to_string()),
        );
        match r.body["meta"]["pagination"]["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/zones?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
    for bad in [
        "/v1/zones?cursor=zzz",
        "/v1/zones?limit=0",
        "/v1/zones?limit=1001",
        "/v1/zones?limit=x",
    ] {
        let r = app.get(&token, bad).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn zones_are_created_from_a_zone_file_and_exported_as_one() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let file = "$ORIGIN filed.test.\n$TTL 600\n@ IN SOA ns.elsewhere. h.elsewhere. 99 1 2 3 4\n@ IN NS ns.elsewhere.\n\
                @ IN A 192.0.2.1\nwww IN CNAME filed.test.\n@ IN MX 10 mail\nmail IN A 192.0.2.2\n@ IN TXT \"v=spf1 -all\"\n";
    let r = app.post(&token, "/v1/zones", json!({ "zone_file": file })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["name"], "filed.test");
    assert_eq!(
        r.data()["nameservers"],
        json!(["ns1.ipx.test.", "ns2.ipx.test."]),
        "the platform's NS, not the file's"
    );
    let id = r.id();
    assert_eq!(app.udp("www.filed.test.", RecordType::A).await.answers.len(), 2);
    let e = app.get(&token, &format!("/v1/zones/{id}/export")).await;
    assert_eq!(e.status, 200);
    let text = e.data()["text"].as_str().unwrap();
    for line in [
        "www.filed.test.\t600\tIN\tCNAME\tfiled.test.",
        "filed.test.\t600\tIN\tMX\t10 mail.filed.test.",
        "\tIN\tSOA\tns1.ipx.test.",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // The export imports again, elsewhere, to the same records.
    let other = app.team("other", &[]).await;
    let again = app
        .post(
            &other,
            "/v1/zones",
            json!({ "zone_file": text.replace("filed.test", "copy.test") }),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.data()["record_count"], r.data()["record_count"]);
    for (body, field) in [
        (json!({ "zone_file": "not a zone (" }), "zone_file"),
        (json!({ "zone_file": file, "name": "other.test" }), "zone_file"),
        (
            json!({ "zone_file": "$ORIGIN x.test.\n@ 60 IN SOA a. b. 1 2 3 4 5\n@ 60 IN NS a.\n@ 60 IN HINFO \"a\" \"b\"\n" }),
            "zone_file",
        ),
        (json!({}), "name"),
    ] {
        let r = app.post(&token, "/v1/zones", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body["error"]["fields"][field].is_string());
    }
    assert_eq!(
        app.get(&token, "/v1/zones").await.body["meta"]["pagination"]["total"],
        1
    );
    let b = app.team("beta", &[]).await;
    assert_eq!(app.get(&b, &format!("/v1/zones/{id}/export")).await.status, 404);
}

#[tokio::test]
async fn per_team_caps_and_request_size_caps_are_clear_errors() {
    let app = crate::helpers::spawn_app_with(|c, _| {
        c.limits.zones_per_team = 2;
        c.limits.records_per_zone = 3; // the two managed NS and one more
        c.limits.sites_per_team = 1;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let z1 = app.zone(&token, "one.test").await;
    app.zone(&token, "two.test").await;
    let r = app.post(&token, "/v1/zones", json!({ "name": "three.test" })).await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_zones"));
    assert_eq!(app.record(&token, &z1, "a", "A", "192.0.2.1").await.status, 201);
    let r = app.record(&token, &z1, "b", "A", "192.0.2.2").await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_records"));
    let r = app
        .post(
            &token,
            &format!("/v1/zones/{z1}/records/batch"),
            json!({ "creates": [{ "name": "c", "type": "A", "content": "192.0.2.3" }] }),
        )
        .await;
    assert_eq!(r.status, 422);
    let other = app.team("other", &[]).await;
    assert_eq!(
        app.post(&other, "/v1/sites", json!({ "domain": "s1.test" }))
            .await
            .status,
        202
    );
    let r = app.post(&other, "/v1/sites", json!({ "domain": "s2.test" })).await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_sites"));
    assert_eq!(
        app.get(&token, "/v1/zones").await.body["meta"]["pagination"]["total"],
        2
    );
    let long = format!("/v1/zones?x={}", "a".repeat(9000));
    let r = app.get(&token, &long).await;
    assert_eq!((r.status.as_u16(), r.code()), (414, "uri_too_long"));
    let r = app
        .client
        .get(app.url("/v1/zones"))
        .bearer_auth(&token)
        .header("x-big", "b".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
}

#[tokio::test]
async fn public_suffixes_and_the_platforms_own_domains_cannot_be_taken() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    for name in ["co.uk", "github.io", "ipx.test", "ns1.ipx.test", "deep.below.ipx.test"] {
        let r = app.post(&token, "/v1/zones", json!({ "name": name })).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (422, "reserved_name"),
            "{name}: {}",
            r.body
        );
        assert!(r.body["error"]["fields"]["name"].as_str().unwrap().contains(name));
    }
    let file = "$ORIGIN github.io.\n@ 3600 IN SOA ns1.x. h.x. 1 2 3 4 5\n@ 3600 IN NS ns1.x.\n";
    let r = app.post(&token, "/v1/zones", json!({ "zone_file": file })).await;
    assert_eq!(r.code(), "reserved_name");
    for domain in ["co.uk", "ns2.ipx.test"] {
        let r = app.post(&token, "/v1/sites", json!({ "domain": domain })).await;
        assert_eq!((r.status.as_u16(), r.code()), (422, "reserved_name"), "{domain}");
    }
    assert_eq!(
        app.get(&token, "/v1/zones").await.body["meta"]["pagination"]["total"],
        0
    );
    assert_eq!(
        app.get(&token, "/v1/sites").await.body["meta"]["pagination"]["total"],
        0
    );
    // Below a public suffix, names are anyone's.
    assert_eq!(
        app.post(&token, "/v1/zones", json!({ "name": "acme.co.uk" }))
            .await
            .status,
        201
    );
}

/// List filters: a bad value is a 400 in the envelope that says which parameter and why, but
/// only once the token may list at all; values are percent-decoded; a repeated parameter
/// counts once, the last one.
#[tokio::test]
async fn list_filters_say_what_is_wrong_after_the_scope_check() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let dns_only = app.team("acme", &["dns:read"]).await;
    for (path, message) in [
        ("/v1/sites?status=bogus", "unknown status \"bogus\""),
        ("/v1/sites?project_id=nope", "project_id is not a UUID"),
        (
            "/v1/events?resource_type=nope",
            "resource_type is one of team, token, zone, record, project, site",
        ),
        ("/v1/events?resource_id=nope", "resource_id is not a UUID"),
    ] {
        let r = app.get(&token, path).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_filter"), "{path}");
        assert_eq!(r.body["error"]["message"], message, "{path}");
        assert_eq!(
            app.get(&dns_only, path).await.status,
            403,
            "{path}: the scope is checked first"
        );
    }
    assert_eq!(app.get(&token, "/v1/sites?status=act%69ve").await.status, 200);
    let r = app.get(&token, "/v1/zones?limit=5&limit=7").await;
    assert_eq!(
        (r.status.as_u16(), r.body["meta"]["pagination"]["limit"].as_u64()),
        (200, Some(7))
    );
}
