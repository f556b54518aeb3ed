//! `/v1/tsig-keys` and `ipx tsig`: made once with their secret, never shown again, sealed at
//! rest, bounded, and out of reach of other teams and of narrower tokens.

use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, spawn_app, spawn_app_with};
use crate::update::{Key, add_txt, send_tcp, update_to};

/// Makes a key through the API; fails the test unless it is 201.
pub async fn make_key(app: &TestApp, token: &str, body: Value) -> Key {
    let r = app.post(token, "/v1/tsig-keys", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    Key::from_created(&r)
}

/// A rule for the whole of `zone`.
pub fn whole(zone: &str) -> Value {
    json!([{ "zone_id": zone }])
}

#[tokio::test]
async fn a_tsig_key_is_made_once_with_its_secret_and_snippets_and_never_shown_again() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "keys.test").await;
    let body = json!({
        "name": "Deploy",
        "rules": [{ "zone_id": zone, "names": ["_acme-challenge", "@"], "subtrees": ["dev"], "types": ["txt", "TXT"] }],
    });
    let r = app.post(&token, "/v1/tsig-keys", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.data();
    let id = d["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/v1/tsig-keys/{id}").as_str());
    let name = d["name"].as_str().unwrap();
    assert!(name.starts_with("deploy.") && name.ends_with(".tsig"), "{name}");
    assert_eq!(d["algorithm"], "hmac-sha256", "the default");
    assert_eq!(d["transfer"], false);
    assert_eq!(
        d["rules"],
        json!([{ "zone_id": zone, "names": ["_acme-challenge.keys.test", "keys.test"], "subtrees": ["dev.keys.test"], "types": ["TXT"] }])
    );
    let secret = d["secret"].as_str().unwrap();
    assert_eq!(data_encoding::BASE64.decode(secret.as_bytes()).unwrap().len(), 32);
    for client in ["nsupdate", "knsupdate", "lego", "certbot"] {
        let snippet = d["snippets"][client].as_str().unwrap();
        assert!(
            snippet.contains(name) && snippet.contains(secret),
            "{client}: {snippet}"
        );
    }
    assert!(
        d["snippets"]["nsupdate"]
            .as_str()
            .unwrap()
            .contains(&format!("server 127.0.0.1 {}", app.dns_addr().port()))
    );

    let listed = app.get(&token, "/v1/tsig-keys").await;
    assert_eq!(listed.body["meta"]["pagination"]["total"], 1);
    let one = app.get(&token, &format!("/v1/tsig-keys/{id}")).await;
    assert_eq!(one.status, 200);
    for shown in [&listed.body, &one.body] {
        let text = shown.to_string();
        assert!(!text.contains(secret) && !text.contains("snippets"), "{text}");
    }
    assert_eq!(one.data()["rules"], d["rules"]);

    // The audit log says who made it, never its secret.
    let events = app.get(&token, "/v1/events?resource_type=tsig_key").await;
    assert_eq!(events.data()[0]["action"], "tsig_key.created", "{}", events.body);
    assert!(!events.body.to_string().contains(secret));
}

#[tokio::test]
async fn bad_tsig_key_requests_name_each_field_and_make_nothing() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "keys.test").await;
    let other = app.team("other", &[]).await;
    let theirs = app.zone(&other, "theirs.test").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "name": "k", "algorithm": "hmac-md5", "rules": whole(&zone) }),
            "algorithm",
            "hmac-sha256",
        ),
        (
            json!({ "name": "k", "algorithm": "rsa", "rules": whole(&zone) }),
            "algorithm",
            "hmac-sha1",
        ),
        (json!({ "name": "a.b", "rules": whole(&zone) }), "name", "one DNS label"),
        (json!({ "name": "-k", "rules": whole(&zone) }), "name", "one DNS label"),
        (json!({ "name": "k", "rules": [] }), "rules", "1 to 100"),
        (
            json!({ "name": "k", "rules": whole(&theirs) }),
            "rules[0].zone_id",
            "no zone",
        ),
        (
            json!({ "name": "k", "rules": whole("01a25208-0000-7000-8000-000000000000") }),
            "rules[0].zone_id",
            "no zone",
        ),
        (
            json!({ "name": "k", "rules": [{ "zone_id": zone, "names": ["_acme-challenge.*"] }] }),
            "rules[0].names[0]",
            "subtrees",
        ),
        (
            json!({ "name": "k", "rules": [{ "zone_id": zone, "names": ["www.elsewhere.test."] }] }),
            "rules[0].names[0]",
            "outside the zone",
        ),
        (
            json!({ "name": "k", "rules": [{ "zone_id": zone, "types": ["SOA"] }] }),
            "rules[0].types[0]",
            "TXT",
        ),
    ];
    for (body, field, says) in cases {
        let r = app.post(&token, "/v1/tsig-keys", body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (422, "invalid_tsig_key"),
            "{body}: {}",
            r.body
        );
        let message = r.body["error"]["fields"][field].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{body}: {field} should say {says:?}: {}",
            r.body
        );
    }
    let r = app
        .post(
            &token,
            "/v1/tsig-keys",
            json!({ "name": "k", "rules": whole(&zone), "extra": 1 }),
        )
        .await;
    assert_eq!(r.status, 422, "unknown fields are refused");
    assert_eq!(
        app.get(&token, "/v1/tsig-keys").await.body["meta"]["pagination"]["total"],
        0
    );
    // A reader cannot make one; a name is taken once per team.
    let reader = app.team("acme", &["dns:read"]).await;
    let r = app
        .post(&reader, "/v1/tsig-keys", json!({ "name": "k", "rules": whole(&zone) }))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));
    make_key(&app, &token, json!({ "name": "k", "rules": whole(&zone) })).await;
    let r = app
        .post(&token, "/v1/tsig-keys", json!({ "name": "K", "rules": whole(&zone) }))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "tsig_key_exists"));
}

#[tokio::test]
async fn another_teams_keys_and_a_narrower_tokens_view_are_not_found() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let (a, b) = (app.zone(&admin, "a.test").await, app.zone(&admin, "b.test").await);
    let both = make_key(
        &app,
        &admin,
        json!({ "name": "both", "rules": [{ "zone_id": a }, { "zone_id": b }] }),
    )
    .await;
    let r = app
        .post(&admin, "/v1/tokens", json!({ "name": "narrow", "zones": [a] }))
        .await;
    let narrow = r.data()["token"].as_str().unwrap().to_string();
    // The narrow token makes keys in its zone only, sees only those, revokes only those.
    let r = app
        .post(&narrow, "/v1/tsig-keys", json!({ "name": "x", "rules": whole(&b) }))
        .await;
    assert_eq!(
        r.body["error"]["fields"]["rules[0].zone_id"]
            .as_str()
            .map(|m| m.contains("no zone")),
        Some(true)
    );
    let mine = make_key(&app, &narrow, json!({ "name": "mine", "rules": whole(&a) })).await;
    let listed = app.get(&narrow, "/v1/tsig-keys").await;
    assert_eq!(listed.body["meta"]["pagination"]["total"], 1);
    assert_eq!(listed.data()[0]["id"], mine.id.as_str());
    let wide = format!("/v1/tsig-keys/{}", both.id);
    assert_eq!(app.get(&narrow, &wide).await.status, 404);
    assert_eq!(app.delete(&narrow, &wide).await.status, 404);
    // Another team sees none of them.
    let stranger = app.team("other", &[]).await;
    assert_eq!(
        app.get(&stranger, "/v1/tsig-keys").await.body["meta"]["pagination"]["total"],
        0
    );
    for path in [
        wide.clone(),
        format!("/v1/tsig-keys/{}", mine.id),
        "/v1/tsig-keys/nope".into(),
    ] {
        assert_eq!(app.get(&stranger, &path).await.status, 404, "{path}");
        assert_eq!(app.delete(&stranger, &path).await.status, 404, "{path}");
    }
    assert_eq!(app.get(&admin, &wide).await.status, 200, "still there");
    assert_eq!(
        app.get(&admin, "/v1/tsig-keys").await.body["meta"]["pagination"]["total"],
        2
    );
}

#[tokio::test]
async fn a_team_holds_at_most_its_cap_of_keys() {
    let app = spawn_app_with(|c, _| c.limits.tsig_keys_per_team = 2).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "cap.test").await;
    let first = make_key(&app, &token, json!({ "name": "one", "rules": whole(&zone) })).await;
    make_key(&app, &token, json!({ "name": "two", "rules": whole(&zone) })).await;
    let r = app
        .post(
            &token,
            "/v1/tsig-keys",
            json!({ "name": "three", "rules": whole(&zone) }),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "too_many_tsig_keys"), "{}", r.body);
    assert_eq!(
        app.delete(&token, &format!("/v1/tsig-keys/{}", first.id)).await.status,
        204
    );
    make_key(&app, &token, json!({ "name": "three", "rules": whole(&zone) })).await;
}

#[tokio::test]
async fn an_idempotent_replay_of_a_key_create_holds_no_secret() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "idem.test").await;
    let send = || {
        app.client
            .post(app.url("/v1/tsig-keys"))
            .bearer_auth(&token)
            .header("idempotency-key", "k1")
            .json(&json!({ "name": "once", "rules": whole(&zone) }))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    assert!(first["data"]["secret"].is_string());
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    assert!(
        again["data"]["secret"].is_null() && again["data"]["snippets"].is_null(),
        "{again}"
    );
}

#[tokio::test]
async fn the_secret_is_sealed_at_rest_and_the_key_works_after_a_restart() {
    let mut app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "rest.test").await;
    let key = make_key(&app, &token, json!({ "name": "rest", "rules": whole(&zone) })).await;
    app.restart().await;
    let raw = data_encoding::BASE64.decode(key.secret.as_bytes()).unwrap();
    let db = std::fs::read(app.config.db_path()).unwrap();
    assert!(
        !db.windows(raw.len()).any(|w| w == raw.as_slice()),
        "no raw secret in the database"
    );
    assert!(
        !db.windows(key.secret.len()).any(|w| w == key.secret.as_bytes()),
        "no base64 secret either"
    );
    let mut m = update_to("rest.test.");
    add_txt(&mut m, "after.rest.test.", "restarted");
    let r = send_tcp(&app, &key.sign(m)).await;
    assert_eq!(r.metadata.response_code, hickory_proto::op::ResponseCode::NoError);
}

#[tokio::test]
async fn operators_create_list_and_revoke_keys_with_ipx_tsig() {
    use ipx::admin::{Command, TsigCmd, TsigCreate};
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    app.zone(&token, "ops.test").await;
    let create = |zones: Vec<String>, algorithm: &str| {
        Command::Tsig(TsigCmd::Create(TsigCreate {
            team: "acme".into(),
            name: "lego".into(),
            zones,
            names: vec!["_acme-challenge".into()],
            subtrees: vec![],
            types: vec!["TXT".into()],
            transfer: false,
            algorithm: algorithm.into(),
        }))
    };
    let err = app
        .operator(create(vec!["ops.test".into()], "hmac-md5"))
        .await
        .unwrap_err();
    assert!(err.contains("hmac-sha256"), "{err}");
    let err = app
        .operator(create(vec!["nope.test".into()], "hmac-sha1"))
        .await
        .unwrap_err();
    assert!(err.contains("no zone"), "{err}");
    let out = app
        .operator(create(vec!["ops.test".into()], "hmac-sha1"))
        .await
        .unwrap();
    let secret = out.lines().last().unwrap();
    assert_eq!(
        data_encoding::BASE64.decode(secret.as_bytes()).unwrap().len(),
        20,
        "{out}"
    );
    let listed = app
        .operator(Command::Tsig(TsigCmd::List { team: "acme".into() }))
        .await
        .unwrap();
    assert!(
        listed.contains("hmac-sha1") && listed.contains("ops.test") && !listed.contains(secret),
        "{listed}"
    );
    let api: Resp = app.get(&token, "/v1/tsig-keys").await;
    let name = api.data()[0]["name"].as_str().unwrap().to_string();
    let out = app
        .operator(Command::Tsig(TsigCmd::Revoke { key: name.clone() }))
        .await
        .unwrap();
    assert!(out.contains(&name), "{out}");
    assert_eq!(
        app.get(&token, "/v1/tsig-keys").await.body["meta"]["pagination"]["total"],
        0
    );
    let err = app
        .operator(Command::Tsig(TsigCmd::Revoke { key: name }))
        .await
        .unwrap_err();
    assert!(err.contains("no TSIG key"), "{err}");
}
