//! Past what SAM local offers: it has no WebSocket APIs, but `sam local start-lambda`
//! serves the Lambda Invoke API that local mode's gateway calls. This runs local mode the
//! way `cargo xtask dev --sam` does (the gateway's HTTP, WebSocket and management APIs and
//! the connector, with every function in its SAM container) and checks that an order
//! reaches a subscribed WebSocket client.

mod common;

use common::{sam_can_run, stop_sam, wait_for_port, World};
use devkit::gateway_events::{HttpEvent, WsEvent};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::client::Client;
use testkit::stack::Proc;

async fn login(http: &reqwest::Client, base: &str, (email, password): (&str, &str)) -> String {
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login answers");
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().await.expect("JSON");
    body["access_token"].as_str().expect("token").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_a_websocket_client_with_the_functions_in_sam() {
    if !sam_can_run("an_order_reaches_a_websocket_client_with_the_functions_in_sam") {
        return;
    }
    let started = Instant::now();
    let gateway_port = devkit::localpg::free_port().expect("a free port");
    let gateway_addr = format!("127.0.0.1:{gateway_port}");
    let w = World::new("dev-on-sam", Some(&format!("ws://{gateway_addr}/ws"))).await;
    let bin = samlocal::workspace().join("target").join("debug");

    let lambda_port = devkit::localpg::free_port().expect("a free port");
    let sam_cmd = samlocal::start_lambda(&w.layout, &w.env_file, lambda_port);
    let mut sam = Proc::spawn(
        "sam-start-lambda",
        tokio::process::Command::from(sam_cmd),
        &w.log_dir,
    )
    .expect("start the process");

    let mut gw = tokio::process::Command::new(bin.join("gateway"));
    gw.current_dir(samlocal::workspace())
        .env("GATEWAY_ADDR", &gateway_addr)
        .env(
            "GATEWAY_INVOKE_URL",
            format!("http://127.0.0.1:{lambda_port}"),
        )
        .env("LOG_FORMAT", "text");
    let _gateway = Proc::spawn("gateway", gw, &w.log_dir).expect("start the process");

    let mut c = tokio::process::Command::new(bin.join("connector"));
    c.current_dir(samlocal::workspace())
        .env("DATABASE_URL", &w.db.url)
        .env(
            "WEBSOCKET_MANAGEMENT_ENDPOINT",
            format!("http://{gateway_addr}"),
        )
        .env("CONNECTOR_ID", "sam")
        .env("CONNECTOR_POLL_MS", "200")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LOG_FORMAT", "text");
    let _connector = Proc::spawn("connector", c, &w.log_dir).expect("start the process");

    wait_for_port(
        lambda_port,
        Duration::from_secs(120),
        "sam local start-lambda",
        &sam.log,
    )
    .await;
    wait_for_port(
        gateway_port,
        Duration::from_secs(30),
        "the gateway",
        &w.log_dir.join("gateway.log"),
    )
    .await;

    // Start each function's container with a harmless event (refused, writes nothing), as
    // `cargo xtask dev` does, so the timed part below is not container start-up.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let warm = [
        ("ws-connect", WsEvent::connect("warm-up").to_json()),
        (
            "ws-default",
            WsEvent::message("warm-up", "$default", r#"{"action":"ping"}"#).to_json(),
        ),
        (
            "ws-disconnect",
            WsEvent::disconnect("warm-up", 1000, "warm-up").to_json(),
        ),
        ("events-ticket", HttpEvent::get("/warm-up").to_json()),
        ("payments-intent", HttpEvent::get("/warm-up").to_json()),
    ];
    for (function, event) in warm {
        let r = http
            .post(format!(
                "http://127.0.0.1:{lambda_port}/2015-03-31/functions/{function}/invocations"
            ))
            .json(&event)
            .send()
            .await
            .unwrap_or_else(|e| panic!("start-lambda answers for {function}: {e}"));
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        // A reply from the function itself (a refusal), not an emulator error.
        assert!(
            status.is_success() && body.get("errorType").is_none(),
            "{function}: {status} {body}"
        );
    }
    eprintln!(
        "stack up and warm in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let base = format!("http://{gateway_addr}");
    let admin = login(&http, &base, demo::DEMO_ADMIN).await;
    let customer = login(&http, &base, demo::DEMO_CUSTOMER).await;
    let r = http
        .post(format!("{base}/api/v1/events/ticket"))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("ticket answers");
    assert_eq!(r.status(), 201);
    let ticket: Value = r.json().await.expect("JSON");
    assert!(
        ticket["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("ws://{gateway_addr}/ws?ticket="))),
        "WEBSOCKET_URL from the env-vars file reached the function: {ticket}"
    );
    let ticket = ticket["ticket"].as_str().expect("ticket");
    let mut client = Client::connect(&format!("ws://{gateway_addr}/ws?ticket={ticket}"))
        .await
        .expect("connected through ws-connect in its container");
    client.subscribe(None).await;

    let plan = demo_plan(&w).await;
    let ordered = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/payments/intent"))
        .bearer_auth(&customer)
        .json(&json!({ "plan_id": plan, "billing_cycle": "monthly", "payment_method": "card" }))
        .send()
        .await
        .expect("intent answers");
    assert_eq!(r.status(), 201);
    let payment: Value = r.json().await.expect("JSON");
    let arrived = client
        .until(Duration::from_secs(30), |c| {
            c.raw.iter().any(|(_, e)| {
                e["data"]["payment_id"] == payment["id"] && e["event"] == "order_created"
            })
        })
        .await;
    assert!(arrived, "the admin's WebSocket never got the order");
    eprintln!(
        "order placed and delivered to the WebSocket client in {} ms",
        ordered.elapsed().as_millis()
    );
    client.close().await;
    stop_sam(&mut sam).await;
    eprintln!(
        "an_order_reaches_a_websocket_client_with_the_functions_in_sam: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// An active plan of the demo account (what the customer may order).
async fn demo_plan(w: &World) -> String {
    let row =
        w.db.client()
            .await
            .query_one(
                "SELECT p.id::text FROM plans p JOIN accounts a ON a.id = p.account_id
              WHERE a.slug = 'demo' AND p.active ORDER BY p.created_at LIMIT 1",
                &[],
            )
            .await
            .expect("a demo plan");
    row.get(0)
}
