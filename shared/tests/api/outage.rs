//! A database that goes away mid-request is the server's trouble (503), never the caller's
//! (4xx): the edge maps errors by their kind, whatever step they happen in.

use crate::support::*;
use devkit::faults::{Mode, Proxy};
use devkit::testdb::test_config;
use shared::api::App;
use std::net::SocketAddr;

/// An `App` whose database sessions pass through a proxy the test can break.
async fn app_behind_proxy(w: &World) -> (App, Proxy) {
    let config: tokio_postgres::Config = w.db.url.parse().expect("test database URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test database must be reached over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let proxy = Proxy::start(upstream).await.expect("proxy");
    let via_proxy =
        w.db.url
            .replacen(&format!("{host}:{port}"), &proxy.addr().to_string(), 1);
    assert_ne!(via_proxy, w.db.url, "the URL names {host}:{port}");
    (App::new(test_config(&via_proxy)).expect("app"), proxy)
}

#[tokio::test]
async fn a_database_outage_during_a_list_is_a_503_not_a_400() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let payment = w.intent(&ann, &plan, "card").await;
    let invoice = w.invoice(&admin, &ann).await;
    let lists = [
        ("/api/v1/payments", payment["id"].clone()),
        ("/api/v1/invoices", invoice["id"].clone()),
        ("/api/v1/customers", serde_json::json!(ann.id)),
    ];
    let (app, proxy) = app_behind_proxy(&w).await;
    let list = |path: &str, after: &serde_json::Value| {
        HttpEvent::get(path)
            .bearer(&admin.token)
            .query("starting_after", after.as_str().unwrap_or_default())
    };
    for (path, after) in &lists {
        // The pool now holds a session that looks healthy.
        send_to(&app, list(path, after)).await.assert_status(200);
        proxy.set(Mode::ResetOnSend);
        // The first statement on that session (the `starting_after` lookup) fails.
        let reply = send_to(&app, list(path, after)).await;
        reply.assert_error(503, "database_unavailable");
        proxy.set(Mode::Pass);
        // New sessions work again: nothing was wrong with the request.
        let mut healed = send_to(&app, list(path, after)).await;
        if healed.status == 503 {
            // The pool may hand out the session the outage broke once more.
            healed = send_to(&app, list(path, after)).await;
        }
        healed.assert_status(200);
    }
}
