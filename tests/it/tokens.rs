//! Self-service tokens: subsets only, zone restrictions, expiry, revocation.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_token_mints_a_narrower_token_whose_secret_is_shown_once() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let r = app
        .post(&admin, "/v1/tokens", json!({ "name": "ci", "scopes": ["dns:read"] }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.data()["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ipxapi_"));
    assert!(r.data()["hint"].as_str().unwrap().starts_with("ipxapi_…"));
    let who = app.get(&secret, "/v1/whoami").await;
    assert_eq!(who.data()["token"]["scopes"], json!(["dns:read"]));
    let list = app.get(&admin, "/v1/tokens").await;
    assert_eq!(list.status, 200);
    let text = list.body.to_string();
    assert!(!text.contains(&secret[7..]), "listings never show a secret");
    assert_eq!(list.body["meta"]["pagination"]["total"], 2);
    // A dns:read token can neither mint (no tokens:write) nor widen.
    let r = app.post(&secret, "/v1/tokens", json!({ "name": "x" })).await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["fields"]["scope"].as_str()),
        (403, Some("tokens:write"))
    );
    let minter = app
        .post(
            &admin,
            "/v1/tokens",
            json!({ "name": "m", "scopes": ["dns:read", "tokens:write"] }),
        )
        .await
        .data()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(&minter, "/v1/tokens", json!({ "name": "w", "scopes": ["dns:write"] }))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));
    assert_eq!(r.body["error"]["fields"]["scope"], "dns:write");
    assert_eq!(
        app.post(&minter, "/v1/tokens", json!({ "name": "r", "scopes": ["dns:read"] }))
            .await
            .status,
        201
    );
    for body in [
        json!({ "name": "" }),
        json!({ "name": "a", "scopes": ["dns:admin"] }),
        json!({ "name": "a", "expires_in": 0 }),
        json!({ "name": "a", "scopes": [] }),
    ] {
        assert_eq!(app.post(&admin, "/v1/tokens", body.clone()).await.status, 422, "{body}");
    }
}

#[tokio::test]
async fn a_zone_restricted_token_reaches_its_zones_only() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let mine = app.zone(&admin, "mine.test").await;
    let other = app.zone(&admin, "other.test").await;
    let r = app
        .post(
            &admin,
            "/v1/tokens",
            json!({ "name": "acme-dns", "scopes": ["dns:write", "tokens:write"], "zones": [mine] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let acme = r.data()["token"].as_str().unwrap().to_string();
    assert_eq!(
        app.record(&acme, &mine, "_acme-challenge", "TXT", "proof").await.status,
        201
    );
    for path in [
        format!("/v1/zones/{other}"),
        format!("/v1/zones/{other}/records"),
        format!("/v1/zones/{other}/export"),
    ] {
        assert_eq!(app.get(&acme, &path).await.status, 404, "{path}");
    }
    assert_eq!(app.record(&acme, &other, "x", "TXT", "no").await.status, 404);
    let listed = app.get(&acme, "/v1/zones").await;
    assert_eq!(listed.body["meta"]["pagination"]["total"], 1);
    assert_eq!(listed.data()[0]["id"], mine.as_str());
    let r = app.post(&acme, "/v1/zones", json!({ "name": "new.test" })).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "zone_restricted"));
    assert_eq!(
        app.post(&acme, "/v1/tokens", json!({ "name": "wider", "zones": [other] }))
            .await
            .status,
        404
    );
    let narrower = app.post(&acme, "/v1/tokens", json!({ "name": "same" })).await;
    assert_eq!(
        narrower.data()["zones"],
        json!([mine]),
        "a restricted token mints restricted tokens"
    );
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_401() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let short = app
        .post(&admin, "/v1/tokens", json!({ "name": "short", "expires_in": 3 }))
        .await;
    let secret = short.data()["token"].as_str().unwrap().to_string();
    assert!(short.data()["expires_at"].is_string());
    // Three seconds: the first use hashes the secret, which a loaded machine (CI, the whole
    // suite at once) can take most of a second to get to.
    assert_eq!(app.get(&secret, "/v1/whoami").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        app.get(&secret, "/v1/whoami").await.status,
        401,
        "expired, even when cached"
    );
    let t = app.post(&admin, "/v1/tokens", json!({ "name": "gone" })).await;
    let (id, secret) = (t.id(), t.data()["token"].as_str().unwrap().to_string());
    assert_eq!(app.get(&secret, "/v1/whoami").await.status, 200);
    let beta = app.team("beta", &[]).await;
    assert_eq!(
        app.delete(&beta, &format!("/v1/tokens/{id}")).await.status,
        404,
        "another team's token"
    );
    assert_eq!(app.delete(&admin, &format!("/v1/tokens/{id}")).await.status, 204);
    assert_eq!(app.get(&secret, "/v1/whoami").await.status, 401);
    let listed = app.get(&admin, "/v1/tokens").await.body.to_string();
    assert!(listed.contains("revoked_at\":\"20"));
}

#[tokio::test]
async fn changes_through_the_api_and_the_cli_are_in_the_audit_log() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let zone = app.zone(&admin, "audit.test").await;
    let r = app
        .client
        .post(app.url(&format!("/v1/zones/{zone}/records")))
        .bearer_auth(&admin)
        .header("x-request-id", "req-42")
        .json(&json!({ "name": "www", "type": "A", "content": "192.0.2.1" }))
        .send()
        .await
        .unwrap();
    let record: serde_json::Value = r.json().await.unwrap();
    let rid = record["data"]["id"].as_str().unwrap().to_string();
    app.delete(&admin, &format!("/v1/zones/{zone}/records/{rid}")).await;
    app.operator(ipx::admin::Command::Token(ipx::admin::TokenCmd::Create {
        team: "acme".into(),
        name: "by-cli".into(),
        scopes: vec![],
    }))
    .await
    .unwrap();
    let who = app.get(&admin, "/v1/whoami").await.data()["token"]["id"].clone();
    let events = app.get(&admin, &format!("/v1/events?resource_id={rid}")).await;
    assert_eq!(events.status, 200);
    let list = events.data().as_array().unwrap();
    assert_eq!(
        list.iter().map(|e| e["action"].as_str().unwrap()).collect::<Vec<_>>(),
        ["record.created", "record.deleted"]
    );
    assert_eq!(list[0]["actor"]["token_id"], who);
    assert_eq!(list[0]["actor"]["request_id"], "req-42");
    assert_eq!(list[0]["summary"], "www.audit.test A 192.0.2.1");
    let tokens = app.get(&admin, "/v1/events?resource_type=token").await;
    let cli = tokens
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["summary"].as_str().unwrap().starts_with("by-cli"))
        .expect("the CLI's token");
    assert_eq!(cli["actor"]["kind"], "operator");
    // Another team sees none of it; a dns-only token cannot read it.
    let beta = app.team("beta", &[]).await;
    assert!(
        app.get(&beta, "/v1/events?resource_type=record")
            .await
            .data()
            .as_array()
            .unwrap()
            .is_empty()
    );
    let dns = app.team("acme", &["dns:write"]).await;
    assert_eq!(app.get(&dns, "/v1/events").await.status, 403);
    assert_eq!(app.get(&admin, "/v1/events?resource_type=bogus").await.status, 400);
}

#[tokio::test]
async fn the_operators_token_list_says_which_tokens_have_expired() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let short = app
        .post(&admin, "/v1/tokens", json!({ "name": "short", "expires_in": 1 }))
        .await;
    assert_eq!(short.status, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let list = app
        .operator(ipx::admin::Command::Token(ipx::admin::TokenCmd::List {
            team: "acme".into(),
        }))
        .await
        .unwrap();
    let line = list.lines().find(|l| l.contains("\tshort\t")).unwrap();
    assert!(line.ends_with("\texpired"), "{line}");
    assert!(
        list.lines()
            .find(|l| l.contains("\ttest\t"))
            .unwrap()
            .ends_with("\tactive")
    );
}
