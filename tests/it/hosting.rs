//! Sites, projects, provisioning jobs and Idempotency-Key.

use std::sync::Arc;

use hickory_proto::rr::RecordType;
use ipx::config::ProvisionerKind;
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, spawn_app, spawn_app_with};

fn status(s: &Value) -> &str {
    s["status"].as_str().unwrap()
}

async fn create_site(app: &TestApp, token: &str, domain: &str) -> String {
    let r = app.post(token, "/v1/sites", json!({ "domain": domain })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.id()
}

/// A provisioner script: logs each step; fails sites named fail*.test while `fail.flag`
/// exists; takes 3 s for sites named slow*.test.
fn exec_app_config(config: &mut ipx::config::Config, dir: &std::path::Path) {
    let script = dir.join("provision.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env bash
input=$(cat)
echo "$input" >> {log}
case "$input" in
  *'"domain":"fail'*) if [ -e {flag} ]; then echo '{{"error":"disk quota exceeded on web-3"}}'; exit 1; fi ;;
  *'"domain":"slow'*) echo started >> {log}; sleep 3 ;;
esac
exit 0
"#,
            log = dir.join("steps.log").display(),
            flag = dir.join("fail.flag").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("fail.flag"), "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    config.hosting.provisioner = ProvisionerKind::Exec;
    config.hosting.exec_command = vec![script.display().to_string()];
}

#[tokio::test]
async fn a_new_site_goes_active_and_its_managed_records_are_served() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let r = app.post(&token, "/v1/sites", json!({ "domain": "Blog.Test" })).await;
    assert_eq!(r.status, 202);
    let id = r.id();
    assert_eq!(r.headers["location"], format!("/v1/sites/{id}").as_str());
    assert_eq!(r.data()["status"], "provisioning");
    assert_eq!(r.data()["domain"], "blog.test");
    assert_eq!(r.data()["php_version"], "8.3");
    assert_eq!(r.data()["ssl"], "none");
    assert_eq!(r.data()["wordpress"], "not_installed");
    let site = app.wait_site(&token, &id, |s| status(s) == "active").await;
    assert_eq!(site["last_job"]["state"], "done");
    assert_eq!(
        answers(&app.udp("blog.test.", RecordType::A).await),
        ["blog.test. A 192.0.2.80"]
    );
    assert_eq!(
        answers(&app.udp("blog.test.", RecordType::AAAA).await),
        ["blog.test. AAAA 2001:db8::80"]
    );
    assert_eq!(
        answers(&app.udp("www.blog.test.", RecordType::A).await),
        ["blog.test. A 192.0.2.80", "www.blog.test. CNAME blog.test."]
    );

    let zone = site["zone_id"].as_str().unwrap();
    let records = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    let managed: Vec<_> = records
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["managed"] == true)
        .collect();
    assert_eq!(managed.len(), 6, "SOA, 2 NS, A, AAAA, www");
    let a = managed.iter().find(|r| r["type"] == "A").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.delete(&token, &format!("/v1/zones/{zone}/records/{a}"))
            .await
            .status,
        403
    );
    // The team's own records live beside the managed ones; clashes are refused.
    assert_eq!(app.record(&token, zone, "@", "TXT", "hello").await.status, 201);
    let clash = app.record(&token, zone, "@", "A", "198.51.100.1").await;
    assert_eq!((clash.status.as_u16(), clash.code()), (422, "managed_record"));
    assert_eq!(app.record(&token, zone, "www", "A", "198.51.100.1").await.status, 422);
    // Hosting the same domain twice is a conflict, as is another team's zone.
    assert_eq!(
        app.post(&token, "/v1/sites", json!({ "domain": "blog.test" }))
            .await
            .status,
        409
    );
    let other = app.team("other", &[]).await;
    let r = app
        .post(&other, "/v1/sites", json!({ "domain": "shop.blog.test" }))
        .await;
    assert_eq!(r.status, 409, "inside another team's zone");
}

#[tokio::test]
async fn a_site_in_an_existing_zone_of_the_team_uses_it() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "corp.test").await;
    let id = create_site(&app, &token, "shop.corp.test").await;
    let site = app.wait_site(&token, &id, |s| status(s) == "active").await;
    assert_eq!(site["zone_id"], zone.as_str());
    assert_eq!(
        answers(&app.udp("shop.corp.test.", RecordType::A).await),
        ["shop.corp.test. A 192.0.2.80"]
    );
}

#[tokio::test]
async fn php_ssl_and_wordpress_move_through_their_states() {
    let app = spawn_app_with(|c, _| c.acme.issuer = ipx::config::IssuerKind::Simulated).await;
    let token = app.team("acme", &[]).await;
    let id = create_site(&app, &token, "states.test").await;
    app.wait_site(&token, &id, |s| status(s) == "active").await;
    let site = format!("/v1/sites/{id}");

    let bad = app.patch(&token, &site, json!({ "php_version": "5.6" })).await;
    assert_eq!((bad.status.as_u16(), bad.code()), (422, "invalid_site"));
    assert!(
        bad.body["error"]["fields"]["php_version"]
            .as_str()
            .unwrap()
            .contains("8.4")
    );
    let r = app.patch(&token, &site, json!({ "php_version": "8.4" })).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.data()["status"], "updating");
    let s = app.wait_site(&token, &id, |s| status(s) == "active").await;
    assert_eq!(s["php_version"], "8.4");
    assert_eq!(
        app.patch(&token, &site, json!({ "php_version": "8.4" })).await.status,
        200,
        "no change, no job"
    );

    let r = app.post(&token, &format!("{site}/ssl"), json!({})).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.data()["ssl"], "pending");
    let s = app.wait_site(&token, &id, |s| s["ssl"] == "active").await;
    assert!(s["ssl_expires_at"].as_str().unwrap().ends_with('Z'));
    let again = app.post(&token, &format!("{site}/ssl"), json!({})).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "ssl_active"));

    let r = app.post(&token, &format!("{site}/wordpress"), json!({})).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.data()["wordpress"], "installing");
    app.wait_site(&token, &id, |s| s["wordpress"] == "installed").await;
    let again = app.post(&token, &format!("{site}/wordpress"), json!({})).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "wordpress_installed"));

    for (method, path) in [
        ("DELETE", site.clone()),
        ("DELETE", format!("{site}/wordpress")),
        ("PUT", site.clone()),
    ] {
        let r = app.call(method, &token, &path, None).await;
        assert_eq!(r.status, 405, "{method} {path}: no destructive operation in the API");
    }
    assert_eq!(app.get(&token, &site).await.data()["status"], "active");
}

#[tokio::test]
async fn the_exec_provisioner_runs_each_step_and_reports_failures_with_their_reason() {
    let app = spawn_app_with(exec_app_config).await;
    let token = app.team("acme", &[]).await;
    let ok = create_site(&app, &token, "good.test").await;
    app.wait_site(&token, &ok, |s| status(s) == "active").await;
    let log = std::fs::read_to_string(app.dir().join("steps.log")).unwrap();
    assert!(
        log.contains("\"step\":\"create\"") && log.contains("good.test"),
        "{log}"
    );

    let bad = create_site(&app, &token, "fail.test").await;
    let s = app.wait_site(&token, &bad, |s| status(s) == "failed").await;
    assert_eq!(s["last_job"]["state"], "failed");
    assert_eq!(s["last_job"]["error"], "disk quota exceeded on web-3");
    assert_eq!(
        app.udp("fail.test.", RecordType::A).await.metadata.response_code,
        hickory_proto::op::ResponseCode::Refused,
        "no zone was made"
    );
    // Fixed on the platform side: asking again retries.
    std::fs::remove_file(app.dir().join("fail.flag")).unwrap();
    let r = app.post(&token, "/v1/sites", json!({ "domain": "fail.test" })).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.id(), bad, "the same site, retried");
    app.wait_site(&token, &bad, |s| status(s) == "active").await;
    assert_eq!(
        answers(&app.udp("fail.test.", RecordType::A).await),
        ["fail.test. A 192.0.2.80"]
    );
}

/// Waits (up to 4 s) until the exec script has logged that a slow step started.
async fn step_started(log: &std::path::Path) {
    for _ in 0..200 {
        if std::fs::read_to_string(log).unwrap_or_default().contains("started") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_step_shows_its_progress_and_resumes_after_a_restart() {
    // A grace period shorter than the 3 s step: the restart interrupts it.
    let mut app = spawn_app_with(|c, dir| {
        exec_app_config(c, dir);
        c.api.shutdown_grace_secs = 1;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let id = create_site(&app, &token, "slow.test").await;
    // Wait until the script is running, then restart in the middle of the step.
    let log = app.dir().join("steps.log");
    step_started(&log).await;
    assert_eq!(
        app.get(&token, &format!("/v1/sites/{id}")).await.data()["status"],
        "provisioning"
    );
    app.restart().await;
    let s = app.wait_site(&token, &id, |s| status(s) == "active").await;
    assert_eq!(s["last_job"]["state"], "done");
    let runs = std::fs::read_to_string(&log).unwrap().matches("started").count();
    assert_eq!(runs, 2, "the interrupted step ran again");
}

#[tokio::test]
async fn a_shutdown_lets_a_running_step_finish_within_the_grace_period() {
    let mut app = spawn_app_with(exec_app_config).await;
    let token = app.team("acme", &[]).await;
    let id = create_site(&app, &token, "slow2.test").await;
    let log = app.dir().join("steps.log");
    step_started(&log).await;
    let started = std::time::Instant::now();
    app.running.take().unwrap().shutdown().await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "the shutdown waited for the step"
    );
    app.running = Some(ipx::app::start(app.config.clone()).await.unwrap());
    let s = app.get(&token, &format!("/v1/sites/{id}")).await;
    assert_eq!(
        s.data()["status"],
        "active",
        "finished before the process stopped: {}",
        s.body
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().matches("started").count(),
        1,
        "and not run again"
    );
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_and_are_per_team() {
    let mut app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let post = |app: &TestApp, token: &str, key: &str, domain: &str| {
        app.client
            .post(app.url("/v1/sites"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({ "domain": domain }))
            .send()
    };
    let first = post(&app, &token, "k-1", "idem.test").await.unwrap();
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.unwrap();
    let again = post(&app, &token, "k-1", "idem.test").await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(again.headers().contains_key("location"));
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first_body,
        "the first response, replayed"
    );
    let other = post(&app, &token, "k-1", "other.test").await.unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(
        other.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );
    // Another team's identical key is its own.
    let beta = app.team("beta", &[]).await;
    assert_eq!(post(&app, &beta, "k-1", "beta.test").await.unwrap().status(), 202);
    let bad = post(&app, &token, &"x".repeat(300), "idem2.test").await.unwrap();
    assert_eq!(bad.status(), 400);
    // The stored response outlives a restart.
    app.restart().await;
    let after = post(&app, &token, "k-1", "idem.test").await.unwrap();
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    assert_eq!(
        app.get(&token, "/v1/sites").await.body["meta"]["pagination"]["total"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_retries_with_one_key_create_one_site() {
    let app = Arc::new(spawn_app().await);
    let token = app.team("acme", &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .client
                .post(app.url("/v1/sites"))
                .bearer_auth(&token)
                .header("idempotency-key", "same")
                .json(&json!({ "domain": "race.test" }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").is_some())
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            (202, _) => created += 1,
            (409, retry_after) => assert!(retry_after, "409 while the first runs carries Retry-After"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(created >= 1);
    let list = app.get(&token, "/v1/sites").await;
    assert_eq!(
        list.body["meta"]["pagination"]["total"], 1,
        "one site, whatever the race"
    );
}

#[tokio::test]
async fn projects_hold_sites_and_refuse_deletion_while_they_do() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let r = app.post(&token, "/v1/projects", json!({ "name": "Clients" })).await;
    assert_eq!(r.status, 201);
    let p1 = r.id();
    assert_eq!(r.headers["location"], format!("/v1/projects/{p1}").as_str());
    let p2 = app
        .post(&token, "/v1/projects", json!({ "name": "Internal" }))
        .await
        .id();
    assert_eq!(
        app.patch(&token, &format!("/v1/projects/{p2}"), json!({ "name": "Ops" }))
            .await
            .data()["name"],
        "Ops"
    );
    assert_eq!(
        app.post(&token, "/v1/projects", json!({ "name": "" })).await.status,
        422
    );

    let r = app
        .post(&token, "/v1/sites", json!({ "domain": "p.test", "project_id": p1 }))
        .await;
    assert_eq!(r.status, 202);
    let site = r.id();
    let bogus = app
        .post(
            &token,
            "/v1/sites",
            json!({ "domain": "q.test", "project_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(bogus.status, 422);
    let r = app.delete(&token, &format!("/v1/projects/{p1}")).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "project_not_empty"));
    let filtered = app.get(&token, &format!("/v1/sites?project_id={p1}")).await;
    assert_eq!(filtered.body["meta"]["pagination"]["total"], 1);
    let r = app
        .patch(&token, &format!("/v1/sites/{site}"), json!({ "project_id": p2 }))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["project_id"], p2.as_str());
    assert_eq!(app.delete(&token, &format!("/v1/projects/{p1}")).await.status, 204);
    assert_eq!(app.get(&token, &format!("/v1/projects/{p1}")).await.status, 404);
    let r = app
        .patch(&token, &format!("/v1/sites/{site}"), json!({ "project_id": null }))
        .await;
    assert_eq!(r.data()["project_id"], Value::Null);
    assert_eq!(
        app.get(&token, "/v1/projects").await.body["meta"]["pagination"]["total"],
        1
    );
    assert_eq!(app.get(&token, "/v1/sites?status=bogus").await.status, 400);
}

#[tokio::test]
async fn scopes_guard_sites_wordpress_and_projects() {
    let app = spawn_app().await;
    let admin = app.team("acme", &[]).await;
    let id = create_site(&app, &admin, "scoped.test").await;
    app.wait_site(&admin, &id, |s| status(s) == "active").await;
    let reader = app.team("acme", &["sites:read"]).await;
    let r = app.post(&reader, "/v1/sites", json!({ "domain": "x.test" })).await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["fields"]["scope"].as_str()),
        (403, Some("sites:write"))
    );
    assert_eq!(app.get(&reader, &format!("/v1/sites/{id}")).await.status, 200);
    let sites_writer = app.team("acme", &["sites:write"]).await;
    let r = app
        .post(&sites_writer, &format!("/v1/sites/{id}/wordpress"), json!({}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["fields"]["scope"].as_str()),
        (403, Some("wordpress:write"))
    );
    let wp = app.team("acme", &["wordpress:write"]).await;
    assert_eq!(
        app.post(&wp, &format!("/v1/sites/{id}/wordpress"), json!({}))
            .await
            .status,
        202
    );
    let r = app.get(&wp, "/v1/projects").await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["fields"]["scope"].as_str()),
        (403, Some("projects:read"))
    );
    let pr = app.team("acme", &["projects:read"]).await;
    assert_eq!(app.post(&pr, "/v1/projects", json!({ "name": "x" })).await.status, 403);
}

#[tokio::test]
async fn another_teams_site_and_project_are_404_on_every_route() {
    let app = spawn_app().await;
    let a = app.team("alpha", &[]).await;
    let b = app.team("beta", &[]).await;
    let id = create_site(&app, &a, "mine.test").await;
    app.wait_site(&a, &id, |s| status(s) == "active").await;
    let project = app.post(&a, "/v1/projects", json!({ "name": "p" })).await.id();
    let s = format!("/v1/sites/{id}");
    let p = format!("/v1/projects/{project}");
    for r in [
        app.get(&b, &s).await,
        app.patch(&b, &s, json!({ "php_version": "8.4" })).await,
        app.post(&b, &format!("{s}/ssl"), json!({})).await,
        app.get(&b, &format!("{s}/certificate")).await,
        app.post(&b, &format!("{s}/wordpress"), json!({})).await,
        app.get(&b, &p).await,
        app.patch(&b, &p, json!({ "name": "stolen" })).await,
        app.delete(&b, &p).await,
    ] {
        assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{}", r.body);
    }
    let moved = app
        .post(
            &b,
            "/v1/sites",
            json!({ "domain": "theirs.test", "project_id": project }),
        )
        .await;
    assert_eq!(moved.status, 422, "another team's project is no project");
    assert_eq!(app.get(&b, "/v1/sites").await.body["meta"]["pagination"]["total"], 0);
    assert_eq!(app.get(&a, &s).await.data()["php_version"], "8.3");
}

#[tokio::test]
async fn operators_list_and_delete_sites_with_their_managed_records() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let id = create_site(&app, &token, "gone.test").await;
    let site = app.wait_site(&token, &id, |s| status(s) == "active").await;
    let zone = site["zone_id"].as_str().unwrap().to_string();
    app.record(&token, &zone, "mail", "A", "192.0.2.9").await;
    let list = app
        .operator(ipx::admin::Command::Site(ipx::admin::SiteCmd::List {
            team: "acme".into(),
        }))
        .await
        .unwrap();
    assert!(list.contains("gone.test") && list.contains("active"));
    app.operator(ipx::admin::Command::Site(ipx::admin::SiteCmd::Delete {
        site_id: id.clone(),
    }))
    .await
    .unwrap();
    assert_eq!(app.get(&token, &format!("/v1/sites/{id}")).await.status, 404);
    assert_eq!(
        app.udp("gone.test.", RecordType::A).await.answers.len(),
        0,
        "managed records went with the site"
    );
    assert_eq!(
        answers(&app.udp("mail.gone.test.", RecordType::A).await),
        ["mail.gone.test. A 192.0.2.9"],
        "the team's own stay"
    );
}

#[tokio::test]
async fn a_create_that_clashes_with_the_teams_records_fails_and_leaves_nothing() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "clash.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "198.51.100.7").await.status, 201);
    let before = app.get(&token, &format!("/v1/zones/{zone}")).await.data()["serial"].clone();
    let id = create_site(&app, &token, "clash.test").await;
    let s = app.wait_site(&token, &id, |s| status(s) == "failed").await;
    assert!(
        s["last_job"]["error"].as_str().unwrap().contains("www.clash.test"),
        "{s}"
    );
    assert_eq!(
        app.udp("clash.test.", RecordType::A).await.answers.len(),
        0,
        "no apex A was left behind"
    );
    assert_eq!(
        app.get(&token, &format!("/v1/zones/{zone}")).await.data()["serial"],
        before,
        "the zone did not change"
    );
    // Once the team's record is gone, asking again provisions it.
    let list = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    let www = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "www.clash.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete(&token, &format!("/v1/zones/{zone}/records/{www}")).await;
    assert_eq!(
        app.post(&token, "/v1/sites", json!({ "domain": "clash.test" }))
            .await
            .status,
        202
    );
    app.wait_site(&token, &id, |s| status(s) == "active").await;
    assert_eq!(
        answers(&app.udp("clash.test.", RecordType::A).await),
        ["clash.test. A 192.0.2.80"]
    );
}
