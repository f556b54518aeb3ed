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
        assert_eq!(
            r.headers["ratelimit-policy"],
            "\"read\";q=5;w=60, \"write\";q=3;w=60, \"provision\";q=2;w=60"
        );
        assert!(
            r.headers["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with(&format!("\"read\";r={};", 4 - i))
        );
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
        assert_eq!(
            app.post(
                &token,
                "/v1/sites",
                json!({ "domain": format!("s{}.test", uuid::Uuid::new_v4().simple()) })
            )
            .await
            .status,
            202
        );
    }
    let r = app.post(&token, "/v1/sites", json!({ "domain": "late.test" })).await;
    assert_eq!(r.status, 429);
    assert!(
        r.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"provision\";r=0;")
    );
    assert_eq!(app.get(&token, "/v1/sites").await.status, 429, "reads still spent");
    // Unauthenticated requests are not counted against anyone, and still get 401.
    assert_eq!(app.get("", "/v1/zones").await.status, 401);
}

#[tokio::test]
async fn whoami_shows_the_tokens_policies() {
    let app = spawn_app_with(|c, _| c.rate_limits.read_per_minute = 50).await;
    let token = app.team("acme", &[]).await;
    let r = app.get(&token, "/v1/whoami").await;
    assert_eq!(
        r.data()["rate_limits"]["policies"][0],
        json!({ "class": "read", "per_minute": 50, "burst": 50 })
    );
    assert_eq!(r.data()["rate_limits"]["read_remaining"], 49);
}

#[tokio::test]
async fn a_teams_tokens_share_one_budget() {
    let app = spawn_app_with(|c, _| c.rate_limits.write_per_minute = 4).await;
    let tokens = [
        app.team("acme", &[]).await,
        app.team("acme", &[]).await,
        app.team("acme", &[]).await,
    ];
    let zone = app.zone(&tokens[0], "shared.test").await; // one write
    for (i, token) in tokens.iter().cycle().take(3).enumerate() {
        assert_eq!(
            app.record(token, &zone, &format!("h{i}"), "A", "192.0.2.1")
                .await
                .status,
            201
        );
    }
    let r = app.record(&tokens[2], &zone, "late", "A", "192.0.2.1").await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (429, "rate_limited"),
        "more tokens do not mean more budget"
    );
    assert!(r.body["error"]["message"].as_str().unwrap().contains("account"));
    let beta = app.team("beta", &[]).await;
    assert_eq!(
        app.post(&beta, "/v1/zones", json!({ "name": "beta.test" }))
            .await
            .status,
        201,
        "another team has its own"
    );
}

#[tokio::test]
async fn a_team_holds_a_bounded_number_of_tokens_and_records() {
    let app = spawn_app_with(|c, _| {
        c.limits.tokens_per_team = 3;
        c.limits.records_per_team = 10;
    })
    .await;
    let admin = app.team("acme", &[]).await;
    let a = app.post(&admin, "/v1/tokens", json!({ "name": "a" })).await;
    assert_eq!(app.post(&admin, "/v1/tokens", json!({ "name": "b" })).await.status, 201);
    let r = app.post(&admin, "/v1/tokens", json!({ "name": "c" })).await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_tokens"));
    assert_eq!(app.delete(&admin, &format!("/v1/tokens/{}", a.id())).await.status, 204);
    assert_eq!(
        app.post(&admin, "/v1/tokens", json!({ "name": "c" })).await.status,
        201,
        "revoking frees a place"
    );

    // Each zone starts with its two managed NS records; records count across zones.
    let one = app.zone(&admin, "one.test").await;
    let two = app.zone(&admin, "two.test").await;
    for i in 0..6 {
        let zone = if i % 2 == 0 { &one } else { &two };
        assert_eq!(
            app.record(&admin, zone, &format!("h{i}"), "A", "192.0.2.1")
                .await
                .status,
            201
        );
    }
    let r = app.record(&admin, &two, "over", "A", "192.0.2.1").await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_records"), "{}", r.body);
    let r = app.post(&admin, "/v1/zones", json!({ "name": "three.test" })).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (422, "too_many_records"),
        "a new zone's NS records count too"
    );
    let batch = json!({ "creates": [{ "name": "x", "type": "A", "content": "192.0.2.9" }] });
    let r = app.post(&admin, &format!("/v1/zones/{one}/records/batch"), batch).await;
    assert_eq!(r.status, 422);
    let listed = app.get(&admin, &format!("/v1/zones/{one}/records")).await;
    assert_eq!(
        listed.body["meta"]["pagination"]["total"], 6,
        "SOA, 2 NS, 3 A: nothing more was written"
    );
    // Deleting makes room again.
    let rec = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "A")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.delete(&admin, &format!("/v1/zones/{one}/records/{rec}"))
            .await
            .status,
        204
    );
    assert_eq!(app.record(&admin, &two, "over", "A", "192.0.2.1").await.status, 201);
}
