//! SAM local, for real: the functions in containers under the SAM CLI's Lambda emulator
//! (`sam local invoke` with the checked-in example events, `sam local start-api` with real
//! HTTP requests), against a fresh database with the demo data. Needs Docker and the SAM
//! CLI; see `common::sam_can_run` for what happens without them.

mod common;

use common::{reply, sam_can_run, stop_sam, wait_for_port, World};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `sam local invoke <function> --event functions/<function>/events/example.json`: the
/// function's reply.
async fn invoke(w: &World, function: &str) -> Value {
    let event = samlocal::workspace()
        .join("functions")
        .join(function)
        .join("events/example.json");
    let mut cmd = samlocal::sam("invoke", &w.layout, &w.env_file);
    cmd.arg(function).arg("--event").arg(&event);
    let started = Instant::now();
    let out = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .output()
        .await
        .expect("sam runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(w.log_dir.join(format!("{function}.log")), stderr.as_bytes()).ok();
    assert!(
        out.status.success(),
        "sam local invoke {function}:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reply = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .unwrap_or_else(|| {
            panic!("sam local invoke {function}: no JSON reply in {stdout:?}\n{stderr}")
        });
    eprintln!(
        "sam local invoke {function}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_in_events_run_under_sam_local_invoke() {
    if !sam_can_run("checked_in_events_run_under_sam_local_invoke") {
        return;
    }
    let started = Instant::now();
    let w = World::new("invoke", None).await;
    eprintln!("prepared in {:.1} s", started.elapsed().as_secs_f64());

    // The demo customer logs in (auth-login's example carries the password).
    let (status, login) = reply(&invoke(&w, "auth-login").await);
    assert_eq!(status, 200, "{login}");
    assert!(
        login["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{login}"
    );

    // The other examples carry a token for the same customer, signed with local mode's secret.
    let (status, me) = reply(&invoke(&w, "auth-me").await);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], demo::DEMO_CUSTOMER.0, "{me}");

    let (status, plans) = reply(&invoke(&w, "plans-list").await);
    assert_eq!(status, 200, "{plans}");
    assert!(
        plans["data"].as_array().is_some_and(|p| !p.is_empty()),
        "{plans}"
    );

    let before: i64 = w.db.count("events").await;
    let (status, payment) = reply(&invoke(&w, "payments-intent").await);
    assert_eq!(status, 201, "{payment}");
    let payment_id = payment["id"].as_str().expect("payment id").to_string();
    // Exactly one event, order_created, for the customer, written with the payment.
    let events = w.events_of(&payment_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "order_created");
    assert_eq!(
        events[0].1.map(|u| u.to_string()).as_deref(),
        me["id"].as_str(),
        "the event names the customer"
    );
    assert_eq!(w.db.count("events").await, before + 1);

    let (status, log) = reply(&invoke(&w, "events-list").await);
    assert_eq!(status, 200, "{log}");
    assert!(
        log["data"]
            .as_array()
            .into_iter()
            .flatten()
            .any(
                |e| e["data"]["payment_id"] == payment_id.as_str() && e["event"] == "order_created"
            ),
        "the payment's event is not in GET /events: {log}"
    );
    eprintln!(
        "checked_in_events_run_under_sam_local_invoke: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_api_serves_real_http_requests() {
    if !sam_can_run("start_api_serves_real_http_requests") {
        return;
    }
    let started = Instant::now();
    let w = World::new("start-api", None).await;
    let port = devkit::localpg::free_port().expect("a free port");
    let mut cmd = samlocal::sam("start-api", &w.layout, &w.env_file);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--warm-containers", "LAZY", "--no-watch"]);
    let mut sam = testkit::stack::Proc::spawn(
        "sam-start-api",
        tokio::process::Command::from(cmd),
        &w.log_dir,
    )
    .expect("start the process");
    wait_for_port(
        port,
        Duration::from_secs(120),
        "sam local start-api",
        &sam.log,
    )
    .await;
    let base = format!("http://127.0.0.1:{port}/api/v1");
    // A function's first request starts its container.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");

    let (email, password) = demo::DEMO_CUSTOMER;
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login answers");
    assert_eq!(r.status(), 200);
    let login: Value = r.json().await.expect("JSON");
    let token = login["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();

    let r = http
        .get(format!("{base}/plans"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("plans answer");
    assert_eq!(r.status(), 200);
    let plans: Value = r.json().await.expect("JSON");
    let plan = plans["data"][0]["id"].as_str().expect("a plan").to_string();

    let r = http
        .post(format!("{base}/payments/intent"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "sam-start-api-1")
        .json(&json!({ "plan_id": plan, "billing_cycle": "monthly", "payment_method": "card" }))
        .send()
        .await
        .expect("intent answers");
    assert_eq!(r.status(), 201);
    let payment: Value = r.json().await.expect("JSON");
    let payment_id = payment["id"].as_str().expect("payment id").to_string();
    assert_eq!(w.events_of(&payment_id).await.len(), 1);

    // The same key again: replayed through API Gateway's emulation, nothing new written.
    let r = http
        .post(format!("{base}/payments/intent"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "sam-start-api-1")
        .json(&json!({ "plan_id": plan, "billing_cycle": "monthly", "payment_method": "card" }))
        .send()
        .await
        .expect("replay answers");
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(w.events_of(&payment_id).await.len(), 1);

    let r = http
        .get(format!("{base}/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("events answer");
    assert_eq!(r.status(), 200);
    let log: Value = r.json().await.expect("JSON");
    assert!(
        log["data"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["data"]["payment_id"] == payment_id.as_str()),
        "the payment's event is not in GET /events: {log}"
    );

    stop_sam(&mut sam).await;
    eprintln!(
        "start_api_serves_real_http_requests: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
