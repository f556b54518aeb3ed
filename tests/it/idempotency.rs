//! Idempotency-Key as an attacker uses it: keys belong to one token, replays are authorized
//! like the request itself, and no stored response holds a secret.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

pub async fn post_with_key(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> (u16, Value, bool) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

#[tokio::test]
async fn a_low_privilege_token_cannot_replay_or_poison_another_tokens_key() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let reader = app.team("acme", &["dns:read"]).await;
    let body = json!({ "name": "deploy" });
    let (status, minted, _) = post_with_key(&app, &admin, "/v1/tokens", "k-1", body.clone()).await;
    assert_eq!(status, 201);
    let secret = minted["data"]["token"].as_str().unwrap().to_string();

    // Same key, same body, same team: the reader gets its own 403, not the admin's 201.
    let (status, stolen, replayed) = post_with_key(&app, &reader, "/v1/tokens", "k-1", body.clone()).await;
    assert_eq!((status, replayed), (403, false), "{stolen}");
    assert!(!stolen.to_string().contains(&secret[7..]));
    // A different body is not 422 for it either: nothing tells it the key exists.
    let (status, _, _) = post_with_key(&app, &reader, "/v1/tokens", "k-1", json!({ "name": "other" })).await;
    assert_eq!(status, 403);

    // The reader tries a key first: its 403 is not what the admin later gets.
    let (status, _, _) = post_with_key(&app, &reader, "/v1/sites", "k-2", json!({ "domain": "poison.test" })).await;
    assert_eq!(status, 403);
    let (status, _, replayed) =
        post_with_key(&app, &admin, "/v1/sites", "k-2", json!({ "domain": "poison.test" })).await;
    assert_eq!((status, replayed), (202, false));

    // Another token of the same team with the same scopes has its own keys too.
    let twin = app.team("acme", &[]).await;
    let (status, fresh, replayed) = post_with_key(&app, &twin, "/v1/tokens", "k-1", body.clone()).await;
    assert_eq!((status, replayed), (201, false));
    assert_ne!(fresh["data"]["id"], minted["data"]["id"]);
}

#[tokio::test]
async fn a_replayed_token_create_never_shows_the_secret_and_redb_never_holds_it() {
    let mut app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let body = json!({ "name": "ci", "scopes": ["dns:read"] });
    let (status, first, _) = post_with_key(&app, &admin, "/v1/tokens", "mint-1", body.clone()).await;
    assert_eq!(status, 201);
    let secret = first["data"]["token"].as_str().unwrap().to_string();
    let (status, again, replayed) = post_with_key(&app, &admin, "/v1/tokens", "mint-1", body.clone()).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(
        again["data"]["id"], first["data"]["id"],
        "the same token, not a second one"
    );
    assert!(again["data"]["token"].is_null(), "the secret is shown once: {again}");
    assert_eq!(
        app.get(&admin, "/v1/tokens").await.body["meta"]["pagination"]["total"],
        2
    );
    // The secret still works, and nowhere in the database file is it written.
    assert_eq!(app.get(&secret, "/v1/whoami").await.status, 200);
    app.running.take().unwrap().shutdown().await;
    let db = std::fs::read(app.config.db_path()).unwrap();
    let needle = &secret.as_bytes()[7..];
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "the secret is in ipx.redb"
    );
}

#[test]
fn expired_keys_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = ipx::store::Store::open(&dir.path().join("ipx.redb")).unwrap();
    let token = uuid::Uuid::new_v4();
    let now = ipx::domain::unix_now();
    store
        .write_blocking_as(ipx::domain::Actor::system(), move |tx| {
            tx.begin_idempotent(token, "POST /v1/x\nk", "f")
        })
        .unwrap();
    store
        .write_blocking_as(ipx::domain::Actor::system(), move |tx| {
            tx.finish_idempotent(token, "POST /v1/x\nk", Some(201), "{}".into(), None, None)
        })
        .unwrap();
    assert_eq!(
        store
            .write_blocking_as(ipx::domain::Actor::system(), move |tx| tx.sweep_idempotent(now))
            .unwrap(),
        0,
        "young keys stay"
    );
    let later = now + ipx::store::IDEMPOTENCY_TTL_SECS + 5; // the key may have been made a second after `now`
    assert_eq!(
        store
            .write_blocking_as(ipx::domain::Actor::system(), move |tx| tx.sweep_idempotent(later))
            .unwrap(),
        1
    );
    let again = store
        .write_blocking_as(ipx::domain::Actor::system(), move |tx| {
            tx.begin_idempotent(token, "POST /v1/x\nk", "other")
        })
        .unwrap();
    assert!(
        matches!(again, ipx::store::Idem::Proceed),
        "a swept key is free again: {again:?}"
    );
    store.close();
}

/// Keys are stored as the method and the path under `/v1` (`POST /zones`), as they always
/// were: a client retrying across an upgrade gets its replay, not a second zone.
#[tokio::test]
async fn keys_keep_the_form_they_were_stored_in() {
    let mut app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let token_id: uuid::Uuid = app.get(&token, "/v1/whoami").await.data()["token"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, _, _) = post_with_key(&app, &token, "/v1/zones", "k-up", json!({ "name": "up.test" })).await;
    assert_eq!(status, 201);
    app.running.take().unwrap().shutdown().await;
    let store = ipx::store::Store::open(&app.config.db_path()).unwrap();
    let found = store
        .write_as(ipx::domain::Actor::system(), move |tx| {
            tx.begin_idempotent(token_id, "POST /zones\nk-up", "another body")
        })
        .await
        .unwrap();
    assert!(matches!(found, ipx::store::Idem::Mismatch), "{found:?}");
}
