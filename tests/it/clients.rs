//! The tools customers already run, against the real server: nsupdate (bind9-dnsutils),
//! knsupdate (knot-dnsutils) and octoDNS (octodns + octodns-bind from PyPI), each as
//! docs/rfc2136.md tells a customer to run it. Every change is seen at once by dig, by the
//! API and by a Knot secondary that follows by IXFR, transferring with the team's own key.
//! A missing tool fails the test: CI installs them all (.ci/run).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};
use crate::interop::{free_port, serial, start_knot_with_key, wait_in_sync};
use crate::tsig_keys::make_key;
use crate::update::Key;

/// `program` on the PATH (or in /usr/sbin); fails the test, saying how to install it, when
/// it is missing.
pub fn tool(program: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is missing: {install}"))
}

/// Runs `program` with `args`, `stdin` and `env` off the runtime; whether it succeeded, and
/// what it printed (stdout, then stderr).
pub async fn run(program: PathBuf, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(&program)
            .args(&args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// What `dig +short` says `server` answers for `name` `rtype`, sorted.
async fn dig(server: std::net::SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let port = server.port().to_string();
    let at = format!("@{}", server.ip());
    let (ok, out) = run(
        tool("dig", "apt-get install bind9-dnsutils"),
        &[&at, "-p", &port, "+short", "+norec", name, rtype],
        "",
        &[],
    )
    .await;
    assert!(ok, "{out}");
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The contents the API lists for `name` `rtype` in `zone`, sorted.
async fn api_contents(app: &TestApp, token: &str, zone: &str, name: &str, rtype: &str) -> Vec<String> {
    let r = app.get(token, &format!("/v1/zones/{zone}/records?limit=1000")).await;
    let mut out: Vec<String> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|rec| rec["name"] == name.trim_end_matches('.') && rec["type"] == rtype)
        .map(|rec| rec["content"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// A change as customers make them: nsupdate or knsupdate with `-y ALG:NAME:SECRET` and a
/// script for one message to the zone `clients.test`.
async fn send(program: &str, key: &Key, app: &TestApp, extra: &[&str], body: &str) -> (bool, String) {
    let install = if program == "nsupdate" {
        "apt-get install bind9-dnsutils"
    } else {
        "apt-get install knot-dnsutils"
    };
    let y = format!("{}:{}:{}", key.algorithm, key.name, key.secret);
    let mut args = vec!["-y", y.as_str()];
    args.extend_from_slice(extra);
    let script = format!(
        "server 127.0.0.1 {}\nzone clients.test.\n{body}\nsend\n",
        app.dns_addr().port()
    );
    run(tool(program, install), &args, &script, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsupdate_and_knsupdate_changes_are_seen_at_once_by_dig_the_api_and_a_knot_secondary() {
    tool("knotd", "apt-get install knot");
    let kport = free_port();
    let app =
        spawn_app_with(|c, _| c.dns.also_notify = vec![std::net::SocketAddr::from(([127, 0, 0, 1], kport))]).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "clients.test").await;
    let key = make_key(
        &app,
        &token,
        json!({ "name": "ops", "rules": [{ "zone_id": zone }], "transfer": true }),
    )
    .await;
    let acme_rules = json!([{ "zone_id": zone, "names": ["_acme-challenge"], "types": ["TXT"] }]);
    let acme = make_key(
        &app,
        &token,
        json!({ "name": "acme", "algorithm": "hmac-sha1", "rules": acme_rules }),
    )
    .await;
    // The secondary transfers with the team's key, as a customer's own Knot would.
    let knot = start_knot_with_key(
        app.dir(),
        kport,
        Some(app.dns_addr()),
        &[("clients.test.", None)],
        Some((&format!("{}.", key.name), &key.secret)),
    );
    wait_in_sync(&app, knot.addr, "clients.test.", Duration::from_secs(15)).await;
    let serial_now = || serial(app.dns_addr(), "clients.test.");
    // Seen at once by dig and the API, and by Knot once it caught up (within a second).
    let everywhere = async |name: &str, rtype: &str| {
        let by_dig = dig(app.dns_addr(), name, rtype).await;
        assert_eq!(
            by_dig,
            api_contents(&app, &token, &zone, name, rtype).await,
            "{name} {rtype}"
        );
        wait_in_sync(&app, knot.addr, "clients.test.", Duration::from_secs(2)).await;
        assert_eq!(dig(knot.addr, name, rtype).await, by_dig, "knot: {name} {rtype}");
        by_dig
    };

    // nsupdate over UDP: two adds, one message, one serial.
    let before = serial_now().await.unwrap();
    let (ok, out) = send(
        "nsupdate",
        &key,
        &app,
        &[],
        "update add www.clients.test. 300 A 192.0.2.1\nupdate add www.clients.test. 300 TXT \"hello\"",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(serial_now().await, Some(before + 1));
    assert_eq!(everywhere("www.clients.test.", "A").await, ["192.0.2.1"]);
    assert_eq!(everywhere("www.clients.test.", "TXT").await, ["\"hello\""]);

    // knsupdate over TCP: replace the A RRset.
    let (ok, out) = send(
        "knsupdate",
        &key,
        &app,
        &["-v"],
        "update delete www.clients.test. A\nupdate add www.clients.test. 60 A 192.0.2.2",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(everywhere("www.clients.test.", "A").await, ["192.0.2.2"]);

    // nsupdate over TCP: delete one record.
    let (ok, out) = send(
        "nsupdate",
        &key,
        &app,
        &["-v"],
        "update delete www.clients.test. TXT \"hello\"",
    )
    .await;
    assert!(ok, "{out}");
    assert!(everywhere("www.clients.test.", "TXT").await.is_empty());

    // Prerequisites that hold, then ones that fail with their rcode and change nothing.
    let (ok, out) = send(
        "nsupdate",
        &key,
        &app,
        &[],
        "prereq yxrrset www.clients.test. A\nprereq nxdomain mail.clients.test.\nupdate add mail.clients.test. 300 A 192.0.2.25",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(everywhere("mail.clients.test.", "A").await, ["192.0.2.25"]);
    let before = serial_now().await;
    for (program, prereq, rcode) in [
        ("nsupdate", "prereq nxdomain www.clients.test.", "YXDOMAIN"),
        ("knsupdate", "prereq yxdomain gone.clients.test.", "NXDOMAIN"),
        ("knsupdate", "prereq nxrrset www.clients.test. A", "YXRRSET"),
        ("nsupdate", "prereq yxrrset www.clients.test. A 192.0.2.9", "NXRRSET"),
    ] {
        let body = format!("{prereq}\nupdate add nope.clients.test. 300 A 192.0.2.66");
        let (ok, out) = send(program, &key, &app, &[], &body).await;
        assert!(!ok && out.contains(rcode), "{program} {prereq}: {out}");
    }
    assert_eq!(serial_now().await, before, "failed prerequisites change nothing");
    assert!(dig(app.dns_addr(), "nope.clients.test.", "A").await.is_empty());

    // The ACME key (hmac-sha1, knsupdate) may touch _acme-challenge TXT and nothing else.
    let (ok, out) = send(
        "knsupdate",
        &acme,
        &app,
        &[],
        "update add _acme-challenge.clients.test. 60 TXT \"token\"",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(everywhere("_acme-challenge.clients.test.", "TXT").await, ["\"token\""]);
    let before = serial_now().await;
    for (program, body) in [
        ("knsupdate", "update add www.clients.test. 60 TXT \"nope\""),
        ("knsupdate", "update add _acme-challenge.clients.test. 60 A 192.0.2.66"),
        ("nsupdate", "update delete www.clients.test. A"),
    ] {
        let (ok, out) = send(program, &acme, &app, &[], body).await;
        assert!(!ok && out.contains("REFUSED"), "{program} {body}: {out}");
    }
    assert_eq!(serial_now().await, before, "refused: nothing changed");

    // A wrong secret: NOTAUTH with BADSIG, in each client's words.
    let forged = Key {
        secret: data_encoding::BASE64.encode(&[9u8; 32]),
        ..key.clone()
    };
    for program in ["nsupdate", "knsupdate"] {
        let (ok, out) = send(
            program,
            &forged,
            &app,
            &[],
            "update add x.clients.test. 60 A 192.0.2.66",
        )
        .await;
        assert!(!ok && out.contains("BADSIG"), "{program}: {out}");
    }
    // A revoked key: BADKEY from the next message on.
    assert_eq!(
        app.delete(&token, &format!("/v1/tsig-keys/{}", acme.id)).await.status,
        204
    );
    for program in ["knsupdate", "nsupdate"] {
        let (ok, out) = send(
            program,
            &acme,
            &app,
            &[],
            "update add _acme-challenge.clients.test. 60 TXT \"x\"",
        )
        .await;
        assert!(!ok && out.contains("BADKEY"), "{program}: {out}");
    }
    assert_eq!(serial_now().await, before, "nothing changed");
    assert!(app.udp("x.clients.test.", RecordType::A).await.answers.is_empty());

    wait_in_sync(&app, knot.addr, "clients.test.", Duration::from_secs(2)).await;
    let log = std::fs::read_to_string(&knot.log).unwrap();
    let ixfr = log.matches("IXFR, incoming").count();
    assert!(ixfr >= 5, "UPDATEs reach the secondary by IXFR: {ixfr}\n{log}");
    assert!(!log.contains("TSIG"), "no TSIG complaints: {log}");
}

/// octoDNS's configuration: the YAML zone in `dir/zones`, ipx as the RFC 2136 target.
fn octodns_config(dir: &std::path::Path, app: &TestApp, key: &Key) -> PathBuf {
    let config = format!(
        "providers:\n  config:\n    class: octodns.provider.yaml.YamlProvider\n    directory: {}\n    default_ttl: 300\n  ipx:\n    class: octodns_bind.Rfc2136Provider\n    host: 127.0.0.1\n    port: {}\n    key_name: {}\n    key_secret: {}\n    key_algorithm: {}\nzones:\n  octo.test.:\n    sources: [config]\n    targets: [ipx]\n",
        dir.join("zones").display(),
        app.dns_addr().port(),
        key.name,
        key.secret,
        key.algorithm
    );
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let path = dir.join("octodns.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

const OCTO_ZONE: &str = "'':
  - type: MX
    value:
      exchange: mail.octo.test.
      preference: 10
  - type: TXT
    value: v=spf1 -all
_sip._tcp:
  type: SRV
  value:
    port: 5060
    priority: 10
    target: sip.octo.test.
    weight: 60
api:
  type: CNAME
  value: www.octo.test.
mail:
  type: A
  value: 192.0.2.25
www:
  type: A
  values:
    - 192.0.2.1
    - 192.0.2.2
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octodns_syncs_a_yaml_zone_by_update_reads_it_back_by_axfr_and_then_plans_nothing() {
    let sync = tool(
        "octodns-sync",
        "pip install octodns==1.22.0 octodns-bind==1.1.0 (the versions .ci/run pins)",
    );
    let app = spawn_app_with(|_, _| {}).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "octo.test").await;
    let key = make_key(
        &app,
        &token,
        json!({ "name": "octodns", "rules": [{ "zone_id": zone }], "transfer": true }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = octodns_config(dir.path(), &app, &key);
    let zone_file = dir.path().join("zones/octo.test.yaml");
    std::fs::write(&zone_file, OCTO_ZONE).unwrap();
    let config = config.to_str().unwrap();
    let octodns = async |doit: bool| {
        let mut args = vec!["--config-file", config];
        if doit {
            args.push("--doit");
        }
        let (ok, out) = run(sync.clone(), &args, "", &[]).await;
        assert!(ok, "octodns-sync {args:?}:\n{out}");
        out
    };

    let out = octodns(true).await;
    assert!(out.contains("Creates=6"), "{out}");
    assert_eq!(
        api_contents(&app, &token, &zone, "www.octo.test", "A").await,
        ["192.0.2.1", "192.0.2.2"]
    );
    assert_eq!(
        api_contents(&app, &token, &zone, "octo.test", "MX").await,
        ["10 mail.octo.test."]
    );
    assert_eq!(
        api_contents(&app, &token, &zone, "octo.test", "TXT").await,
        ["\"v=spf1 -all\""]
    );
    assert_eq!(
        api_contents(&app, &token, &zone, "_sip._tcp.octo.test", "SRV").await,
        ["10 60 5060 sip.octo.test."]
    );
    assert_eq!(dig(app.dns_addr(), "api.octo.test.", "CNAME").await, ["www.octo.test."]);
    let out = octodns(false).await;
    assert!(
        out.contains("No changes were planned"),
        "the second run plans nothing:\n{out}"
    );

    // A change of the YAML: an update, a delete and a create, applied and then settled.
    let edited = OCTO_ZONE.replace("    - 192.0.2.2\n", "    - 192.0.2.3\n").replace(
        "mail:\n  type: A\n  value: 192.0.2.25\n",
        "new:\n  type: TXT\n  value: added by octoDNS\n",
    );
    std::fs::write(
        &zone_file,
        edited.replace("exchange: mail.octo.test.", "exchange: mx.example.net."),
    )
    .unwrap();
    let out = octodns(true).await;
    assert!(out.contains("Creates=1, Updates=2, Deletes=1"), "{out}");
    assert_eq!(
        api_contents(&app, &token, &zone, "www.octo.test", "A").await,
        ["192.0.2.1", "192.0.2.3"]
    );
    assert!(
        api_contents(&app, &token, &zone, "mail.octo.test", "A")
            .await
            .is_empty()
    );
    assert_eq!(
        dig(app.dns_addr(), "new.octo.test.", "TXT").await,
        ["\"added by octoDNS\""]
    );
    let out = octodns(false).await;
    assert!(out.contains("No changes were planned"), "{out}");
    // Each apply was one UPDATE: one event naming the key.
    let events = app.get(&token, "/v1/events?limit=1000").await;
    let updates = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "zone.updated" && e["actor"]["key_id"] == key.id.as_str())
        .count();
    assert_eq!(updates, 2, "{}", events.body);
}
