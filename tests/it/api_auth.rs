//! Tokens, scopes, team isolation and the error envelope.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn whoami_names_the_team_and_the_token() {
    let app = spawn_app().await;
    let token = app.team("acme", &["dns:read"]).await;
    let r = app.get(&token, "/v1/whoami").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["team"]["name"], "acme");
    assert_eq!(r.data()["token"]["name"], "test");
    assert_eq!(r.data()["token"]["scopes"], json!(["dns:read"]));
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401_with_www_authenticate() {
    let app = spawn_app().await;
    let good = app.team("acme", &[]).await;
    let mut forged = good.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    for token in [
        "",
        "nonsense",
        "ipxapi_0000000000000000000000000000000000000000000000000000000000000",
        std::str::from_utf8(&forged).unwrap(),
    ] {
        let r = app.get(token, "/v1/whoami").await;
        assert_eq!(r.status, 401, "token {token:?}");
        assert!(r.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert!(r.body["error"]["request_id"].as_str().unwrap().len() >= 16);
    }
    let r = app
        .client
        .get(app.url("/v1/whoami"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_token_without_the_scope_gets_403_naming_it() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let zone = app.zone(&admin, "acme.test").await;
    let reader = app.team("acme", &["dns:read"]).await;
    let r = app.record(&reader, &zone, "www", "A", "192.0.2.1").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "insufficient_scope");
    assert_eq!(r.body["error"]["fields"]["scope"], "dns:write");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("dns:write"));
    assert_eq!(app.get(&reader, &format!("/v1/zones/{zone}/records")).await.status, 200);
    let sites_only = app.team("acme", &["sites:read"]).await;
    let r = app.get(&sites_only, "/v1/zones").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["fields"]["scope"], "dns:read");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    assert_eq!(app.get(&token, "/v1/whoami").await.status, 200); // now cached
    let id = app.get(&token, "/v1/whoami").await.data()["token"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = app
        .operator(ipx::admin::Command::Token(ipx::admin::TokenCmd::Revoke {
            token_id: id,
        }))
        .await
        .unwrap();
    assert!(out.starts_with("revoked"));
    assert_eq!(app.get(&token, "/v1/whoami").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_teams_zone_and_records_are_404_on_every_route() {
    let app = spawn_app().await;
    let a = app.team("alpha", &[]).await;
    let b = app.team("beta", &[]).await;
    let zone = app.zone(&a, "alpha.test").await;
    let rec = app.record(&a, &zone, "www", "A", "192.0.2.1").await.id();
    let z = format!("/v1/zones/{zone}");
    let r = format!("/v1/zones/{zone}/records/{rec}");
    for resp in [
        app.get(&b, &z).await,
        app.get(&b, &format!("{z}/records")).await,
        app.record(&b, &zone, "x", "A", "192.0.2.2").await,
        app.get(&b, &r).await,
        app.patch(&b, &r, json!({ "content": "192.0.2.9" })).await,
        app.delete(&b, &r).await,
        app.get(&b, &format!("/v1/zones/{zone}/records/{zone}")).await,
    ] {
        assert_eq!(resp.status, 404, "{:?}", resp.body);
        assert_eq!(resp.code(), "not_found");
    }
    let listed = app.get(&b, "/v1/zones").await;
    assert_eq!(listed.data(), &json!([]));
    assert_eq!(listed.body["meta"]["pagination"]["total"], 0);
    // Nothing changed for its owner.
    assert_eq!(app.get(&a, &r).await.data()["content"], "192.0.2.1");
}

#[tokio::test]
async fn errors_use_the_json_envelope_everywhere() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let r = app.get(&token, "/v1/nope").await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = app.call("PUT", &token, "/v1/zones", None).await;
    assert_eq!((r.status.as_u16(), r.code()), (405, "method_not_allowed"));
    let post = |body: &'static str, ctype: &'static str| {
        app.client
            .post(app.url("/v1/zones"))
            .bearer_auth(&token)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let r = post("{\"name\": ", "application/json").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
    let r = post("name=x", "application/x-www-form-urlencoded").await.unwrap();
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let r = post("{\"name\": 5}", "application/json").await.unwrap();
    assert_eq!(r.status(), 422);
    let r = post("{\"name\": \"a.test\", \"extra\": 1}", "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "unknown fields are refused, not ignored");
    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(2 << 20));
    let r = app
        .client
        .post(app.url("/v1/zones"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(
        app.get(&token, "/v1/zones").await.body["meta"]["pagination"]["total"],
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn healthz_answers_without_auth_and_request_ids_are_echoed() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-42");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/v1/whoami", "get"),
        ("/v1/zones", "post"),
        ("/v1/zones/{zone_id}/export", "get"),
        ("/v1/zones/{zone_id}/records/batch", "post"),
        ("/v1/zones/{zone_id}/records/{record_id}", "patch"),
        ("/v1/sites/{id}/wordpress", "post"),
        ("/v1/projects/{id}", "delete"),
        ("/v1/tokens", "post"),
        ("/v1/events", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path}");
        for status in ["401", "404", "422", "429"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
        assert!(op["responses"]["401"]["headers"]["X-Request-Id"].is_object());
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}
