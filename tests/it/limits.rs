//! Per-token rate limits and their headers.

use serde_json::json;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn each_class_has_its_budget_and_429_says_when_to_retry() {
    let app = spawn_app_with(|c, _| {
        c.rate_limits.read_per_minute = 5;
        c.rate_limits.write_per_minute = 3;
        c.rate_limits.provision_per_minute = 2;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let other = app.team("beta", &[]).await;
    for i in 0..5 {
        let r = app.get(&token, "/v1/zones").await;
        assert_eq!(r.status, 200, "read {i}");
        assert_eq!(r.headers["ratelimit-policy"], "\"read\";q=5;w=60, \"write\";q=3;w=60, \"provision\";q=2;w=60");
        assert!(r.headers["ratelimit"].to_str().unwrap().starts_with(&format!("\"read\";r={};", 4 - i)));
    }
    let r = app.get(&token, "/v1/zones").await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "a read comes back every 12 s: {retry}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("read"));
    // Other classes and other tokens have their own budgets.
    let zone = app.post(&token, "/v1/zones", json!({ "name": "rl.test" })).await;
    assert_eq!(zone.status, 201);
    assert_eq!(app.get(&other, "/v1/zones").await.status, 200);
    for _ in 0..2 {
        assert_eq!(app.post(&token, "/v1/sites", json!({ "domain": format!("s{}.test", uuid::Uuid::new_v4().simple()) })).await.status, 202);
    }
    let r = app.post(&token, "/v1/sites", json!({ "domain": "late.test" })).await;
    assert_eq!(r.status, 429);
    assert!(r.headers["ratelimit"].to_str().unwrap().starts_with("\"provision\";r=0;"));
    assert_eq!(app.get(&token, "/v1/sites").await.status, 429, "reads still spent");
    // Unauthenticated requests are not counted against anyone, and still get 401.
    assert_eq!(app.get("", "/v1/zones").await.status, 401);
}

#[tokio::test]
async fn whoami_shows_the_tokens_policies() {
    let app = spawn_app_with(|c, _| c.rate_limits.read_per_minute = 50).await;
    let token = app.team("acme", &[]).await;
    let r = app.get(&token, "/v1/whoami").await;
    assert_eq!(r.data()["rate_limits"]["policies"][0], json!({ "class": "read", "per_minute": 50, "burst": 50 }));
    assert_eq!(r.data()["rate_limits"]["read_remaining"], 49);
}
