//! Guessing tokens as an attacker does: wrong secrets for a known id, unknown ids, revoked
//! and expired tokens, floods of them at once. Each costs at most one bounded hash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

/// A well-formed secret for the same id as `token`, with another random part.
fn wrong_secret_for(token: &str, n: usize) -> String {
    let id = ipx::auth::parse_secret(token).unwrap();
    let random: String = format!("{n:0>32}").chars().rev().collect();
    ipx::auth::format_secret(id, &random)
}

fn hashes(app: &TestApp) -> u64 {
    app.running.as_ref().unwrap().auth.hashes()
}

async fn token_id(app: &TestApp, token: &str) -> String {
    app.get(token, "/v1/whoami").await.data()["token"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn wrong_secrets_for_a_live_id_hash_once_each_then_get_429_while_the_real_token_works() {
    let app = spawn_app_with(|c, _| c.auth.failures_per_minute_per_token = 3).await;
    let token = app.team("acme", &[]).await;
    assert_eq!(app.get(&token, "/v1/whoami").await.status, 200); // verified once, now cached
    let before = hashes(&app);
    for n in 0..3 {
        let r = app.get(&wrong_secret_for(&token, n), "/v1/zones").await;
        assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_token"));
    }
    assert_eq!(hashes(&app) - before, 3, "one hash per failed request, not two");
    let r = app.get(&wrong_secret_for(&token, 9), "/v1/zones").await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "auth_throttled"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(hashes(&app) - before, 3, "a throttled attempt hashes nothing");
    assert_eq!(
        app.get(&token, "/v1/whoami").await.status,
        200,
        "the real token is not locked out"
    );
}

#[tokio::test]
async fn health_checks_never_verify_tokens() {
    let app = spawn_app_with(|c, _| c.auth.failures_per_minute_per_token = 2).await;
    let token = app.team("acme", &[]).await;
    let before = hashes(&app);
    for n in 0..10 {
        let r = app
            .client
            .get(app.url("/healthz"))
            .bearer_auth(wrong_secret_for(&token, n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(hashes(&app), before);
}

#[tokio::test]
async fn revoked_expired_and_unknown_ids_cost_no_hash_and_take_as_long_as_a_wrong_secret() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let revoked = app.post(&admin, "/v1/tokens", json!({ "name": "gone" })).await.data()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let id = token_id(&app, &revoked).await;
    assert_eq!(app.delete(&admin, &format!("/v1/tokens/{id}")).await.status, 204);
    let expired = app
        .post(&admin, "/v1/tokens", json!({ "name": "short", "expires_in": 1 }))
        .await
        .data()["token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = ipx::auth::format_secret(uuid::Uuid::new_v4(), &"a".repeat(32));

    let timed = |secret: String| {
        let app = &app;
        async move {
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                assert_eq!(app.get(&secret, "/v1/zones").await.status, 401);
                times.push(t.elapsed());
            }
            times.sort();
            times[2]
        }
    };
    let live = timed(wrong_secret_for(&admin, 1)).await;
    let before = hashes(&app);
    let (r, e, u) = (timed(revoked).await, timed(expired).await, timed(unknown).await);
    assert_eq!(hashes(&app), before, "nothing but a live id is hashed");
    for (what, t) in [("revoked", r), ("expired", e), ("unknown", u)] {
        let ratio = t.as_secs_f64() / live.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{what} took {t:?}, a wrong secret for a live id {live:?}: a timing oracle"
        );
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hashes_waits_for_a_few_slots_and_the_rest_get_503_fast() {
    let app = Arc::new(spawn_app_with(|c, _| c.auth.max_concurrent_hashes = 1).await);
    let mut tokens = Vec::new();
    for i in 0..24 {
        tokens.push(app.team(&format!("t{i}"), &[]).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let (app, secret) = (app.clone(), wrong_secret_for(token, n));
        tasks.push(tokio::spawn(async move {
            let r = app.get(&secret, "/v1/zones").await;
            (r.status.as_u16(), r.headers.get("retry-after").is_some())
        }));
    }
    let (mut refused, mut busy) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (401, _) => refused += 1,
            (503, true) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "24 hashes at once with one slot: some must be told to come back ({refused} refused)"
    );
    assert!(
        (1..=1 + 4 + 2).contains(&refused),
        "one slot, four waiters: {refused} hashed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nobody waits long: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_have_a_budget_per_address() {
    let app = spawn_app_with(|c, _| c.rate_limits.unauthenticated_per_minute = 4).await;
    let token = app.team("acme", &[]).await;
    for _ in 0..4 {
        assert_eq!(app.get("", "/v1/zones").await.status, 401);
    }
    let r = app.get("", "/v1/zones").await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(
        app.get("nonsense", "/v1/nope").await.status,
        429,
        "every route, any bad token"
    );
    assert_eq!(
        app.get(&token, "/v1/zones").await.status,
        200,
        "tokens have their own budget"
    );
}
