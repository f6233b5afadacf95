use crate::support::*;
use serde_json::json;

async fn setup() -> (World, Actor, serde_json::Value) {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    (w, ann, plan)
}

fn request(who: &Actor, plan: &serde_json::Value, key: &str, cycle: &str) -> HttpEvent {
    HttpEvent::post("/api/v1/payments/intent")
        .bearer(&who.token)
        .idempotency_key(key)
        .json(&json!({ "plan_id": plan["id"], "billing_cycle": cycle, "payment_method": "card" }))
}

#[tokio::test]
async fn a_retry_replays_the_first_response_and_writes_nothing() {
    let (w, ann, plan) = setup().await;
    let first = w.send(request(&ann, &plan, "key-1", "monthly")).await;
    first.assert_status(201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let before = w.snapshot().await;
    let second = w.send(request(&ann, &plan, "key-1", "monthly")).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body, first.body);
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(before, w.snapshot().await);
    assert_eq!(w.db.count("payments").await, 1);
    assert_eq!(w.db.count("events").await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let (w, ann, plan) = setup().await;
    w.send(request(&ann, &plan, "key-1", "monthly"))
        .await
        .assert_status(201);
    w.refuses(
        request(&ann, &plan, "key-1", "yearly"),
        422,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_write_once() {
    let (w, ann, plan) = setup().await;
    let replies = futures::future::join_all(
        (0..8).map(|_| w.send(request(&ann, &plan, "key-race", "monthly"))),
    )
    .await;
    for r in &replies {
        r.assert_status(201);
        assert_eq!(r.body, replies[0].body);
    }
    assert_eq!(w.db.count("payments").await, 1);
    assert_eq!(w.db.count("events").await, 1);
    let replayed = replies
        .iter()
        .filter(|r| r.headers.contains_key("idempotent-replayed"))
        .count();
    assert_eq!(replayed, 7);
}

#[tokio::test]
async fn keys_expire_after_24_hours_and_are_scoped_to_the_caller() {
    let (w, ann, plan) = setup().await;
    let bob = w.customer("shop", "bob@example.com").await;
    let first = w.send(request(&ann, &plan, "key-1", "monthly")).await;
    // Another caller's identical key is another key.
    let bobs = w.send(request(&bob, &plan, "key-1", "monthly")).await;
    bobs.assert_status(201);
    assert_ne!(bobs.body["id"], first.body["id"]);
    w.db.client()
        .await
        .execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'",
            &[],
        )
        .await
        .expect("age keys");
    let later = w.send(request(&ann, &plan, "key-1", "monthly")).await;
    later.assert_status(201);
    assert_ne!(later.body["id"], first.body["id"]);
    assert_eq!(w.db.count("payments").await, 3);
}

#[tokio::test]
async fn a_failed_request_is_not_remembered() {
    let (w, ann, plan) = setup().await;
    let bad = HttpEvent::post("/api/v1/payments/intent")
        .bearer(&ann.token)
        .idempotency_key("key-1")
        .json(&json!({ "plan_id": uuid::Uuid::now_v7(), "billing_cycle": "monthly", "payment_method": "card" }));
    w.refuses(bad, 422, "validation_failed").await;
    // The key is still free for a corrected request.
    w.send(request(&ann, &plan, "key-1", "monthly"))
        .await
        .assert_status(201);
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let (w, ann, plan) = setup().await;
    for key in [
        "x".repeat(256),
        "has space".to_string(),
        "tab\tkey".to_string(),
    ] {
        w.refuses(
            request(&ann, &plan, &key, "monthly"),
            400,
            "invalid_idempotency_key",
        )
        .await;
    }
}

#[tokio::test]
async fn every_post_honours_the_key() {
    let w = world().await;
    let event = HttpEvent::post("/api/v1/accounts")
        .idempotency_key("signup-1")
        .json(
            &json!({ "name": "Shop", "admin_email": "a@shop.test", "admin_password": "Admin123!" }),
        );
    let first = w.send(event.clone()).await;
    first.assert_status(201);
    let again = w.send(event).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(w.db.count("accounts").await, 1);
}
