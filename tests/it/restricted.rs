//! A zone-restricted token, used as a hostile tenant's script would use it: it reaches
//! only its zones' records, sites and events, and never a token wider than itself.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn active_site(app: &TestApp, token: &str, domain: &str) -> Value {
    let r = app.post(token, "/v1/sites", json!({ "domain": domain })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.id();
    app.wait_site(token, &id, |s| s["status"] == "active").await
}

#[tokio::test]
async fn a_zone_restricted_token_reaches_only_the_sites_tokens_and_events_of_its_zones() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let mine = active_site(&app, &admin, "mine.test").await;
    let theirs = active_site(&app, &admin, "theirs.test").await;
    let (mine_id, theirs_id) = (mine["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());
    let zone = mine["zone_id"].as_str().unwrap();
    let r = app
        .post(&admin, "/v1/tokens", json!({ "name": "narrow", "zones": [zone] }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let narrow = r.data()["token"].as_str().unwrap().to_string();

    // Sites: only the one in its zone, everywhere.
    let listed = app.get(&narrow, "/v1/sites").await;
    assert_eq!(listed.body["meta"]["pagination"]["total"], 1);
    assert_eq!(listed.data()[0]["id"], mine_id);
    assert_eq!(app.get(&narrow, &format!("/v1/sites/{mine_id}")).await.status, 200);
    let outside = format!("/v1/sites/{theirs_id}");
    for r in [
        app.get(&narrow, &outside).await,
        app.patch(&narrow, &outside, json!({ "php_version": "8.4" })).await,
        app.post(&narrow, &format!("{outside}/ssl"), json!({})).await,
        app.get(&narrow, &format!("{outside}/certificate")).await,
        app.post(&narrow, &format!("{outside}/wordpress"), json!({})).await,
    ] {
        assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{}", r.body);
    }
    assert_eq!(
        app.get(&admin, &outside).await.data()["php_version"],
        theirs["php_version"],
        "nothing changed"
    );
    assert_eq!(
        app.post(&narrow, "/v1/projects", json!({ "name": "p" })).await.code(),
        "zone_restricted"
    );

    // Tokens: it sees and revokes only tokens within its zones, never the admin.
    let admin_id = app.get(&admin, "/v1/whoami").await.data()["token"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tokens = app.get(&narrow, "/v1/tokens").await;
    assert_eq!(tokens.status, 200);
    assert!(
        tokens
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["zones"] == json!([zone])),
        "{}",
        tokens.body
    );
    assert_eq!(app.delete(&narrow, &format!("/v1/tokens/{admin_id}")).await.status, 404);
    assert_eq!(
        app.get(&admin, "/v1/whoami").await.status,
        200,
        "the admin token still works"
    );
    let child = app.post(&narrow, "/v1/tokens", json!({ "name": "child" })).await;
    assert_eq!(child.data()["zones"], json!([zone]), "it mints only within its zones");
    assert_eq!(
        app.delete(&narrow, &format!("/v1/tokens/{}", child.id())).await.status,
        204
    );

    // Events: only those made in its zone.
    let events = app.get(&narrow, "/v1/events").await;
    assert_eq!(events.status, 200);
    let list = events.data().as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|e| e["zone_id"] == zone), "{}", events.body);
    let all = app.get(&admin, "/v1/events").await;
    assert!(all.data().as_array().unwrap().len() > list.len());
}

#[tokio::test]
async fn a_tokens_zone_list_is_deduplicated_and_bounded() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let zone = app.zone(&admin, "dup.test").await;
    let r = app
        .post(
            &admin,
            "/v1/tokens",
            json!({ "name": "dups", "zones": vec![zone.clone(); 500] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["zones"], json!([zone]));
    let r = app
        .post(
            &admin,
            "/v1/tokens",
            json!({ "name": "many", "zones": vec![zone.clone(); 20_000] }),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "invalid_token_request"));
    let r = app
        .post(&admin, "/v1/tokens", json!({ "name": "none", "zones": [] }))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        app.get(&admin, "/v1/tokens").await.body["meta"]["pagination"]["total"],
        2,
        "only the good one was made"
    );
}
