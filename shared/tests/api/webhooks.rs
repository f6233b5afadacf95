use crate::support::*;
use devkit::testdb::WEBHOOK_SECRET;
use serde_json::json;
use shared::billing::webhooks::sign;

fn delivery(body: &serde_json::Value, at: i64, secret: &str) -> HttpEvent {
    let raw = body.to_string();
    HttpEvent::post("/api/v1/payments/webhook")
        .raw_body(&raw)
        .header("content-type", "application/json")
        .header(
            "billwire-signature",
            sign(secret.as_bytes(), at, raw.as_bytes()),
        )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn pending_payment(w: &World) -> serde_json::Value {
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    w.intent(&ann, &plan, "card").await
}

#[tokio::test]
async fn a_signed_success_confirms_the_payment_once() {
    let w = world().await;
    let p = pending_payment(&w).await;
    let body = json!({ "id": "evt_1", "type": "payment_intent.succeeded", "data": { "object": { "id": p["id"] } } });
    let reply = w.send(delivery(&body, now(), WEBHOOK_SECRET)).await;
    reply.assert_status(200);
    assert_eq!(reply.body["payment"]["status"], "succeeded");
    assert_eq!(reply.body["duplicate"], false);
    let kinds: Vec<String> =
        w.db.client()
            .await
            .query("SELECT type FROM events ORDER BY id", &[])
            .await
            .expect("events")
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(kinds, vec!["order_created", "payment_received"]);

    // The provider redelivers: nothing changes.
    let before = w.snapshot().await;
    let again = w.send(delivery(&body, now(), WEBHOOK_SECRET)).await;
    again.assert_status(200);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["payment"]["status"], "succeeded");
    assert_eq!(before, w.snapshot().await);

    // Another delivery of the same outcome (a new event id) is idempotent too.
    let other = json!({ "id": "evt_2", "type": "payment_intent.succeeded", "data": { "object": { "id": p["id"] } } });
    let reply = w.send(delivery(&other, now(), WEBHOOK_SECRET)).await;
    reply.assert_status(200);
    assert_eq!(w.db.count("events").await, 2);

    // A contradicting verdict for a settled payment is a conflict and changes nothing.
    let failed = json!({ "id": "evt_3", "type": "payment_intent.payment_failed", "data": { "object": { "id": p["id"] } } });
    w.refuses(
        delivery(&failed, now(), WEBHOOK_SECRET),
        409,
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn a_signed_failure_fails_the_payment() {
    let w = world().await;
    let p = pending_payment(&w).await;
    let body = json!({
        "id": "evt_9", "type": "payment_intent.payment_failed",
        "data": { "object": { "id": p["id"], "last_payment_error": { "code": "expired_card", "message": "Your card has expired." } } }
    });
    let reply = w.send(delivery(&body, now(), WEBHOOK_SECRET)).await;
    reply.assert_status(200);
    assert_eq!(reply.body["payment"]["status"], "failed");
    assert_eq!(reply.body["payment"]["failure_code"], "expired_card");
    let kind: String =
        w.db.client()
            .await
            .query_one("SELECT type FROM events ORDER BY id DESC LIMIT 1", &[])
            .await
            .expect("event")
            .get(0);
    assert_eq!(kind, "order_updated");
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused() {
    let w = world().await;
    let p = pending_payment(&w).await;
    let body = json!({ "id": "evt_1", "type": "payment_intent.succeeded", "data": { "object": { "id": p["id"] } } });
    let raw = body.to_string();
    let good = sign(WEBHOOK_SECRET.as_bytes(), now(), raw.as_bytes());
    let cases = vec![
        HttpEvent::post("/api/v1/payments/webhook").json(&body),
        delivery(&body, now(), "whsec_someone_else_entirely"),
        // Well past the 300 s tolerance either way: the exact boundary is a unit test with a
        // fixed clock, since a wall-clock second can tick between signing and checking.
        delivery(&body, now() - 400, WEBHOOK_SECRET),
        delivery(&body, now() + 400, WEBHOOK_SECRET),
        HttpEvent::post("/api/v1/payments/webhook")
            .raw_body(&raw.replace("evt_1", "evt_2"))
            .header("content-type", "application/json")
            .header("billwire-signature", &good),
        HttpEvent::post("/api/v1/payments/webhook")
            .raw_body(&raw)
            .header("content-type", "application/json")
            .header("billwire-signature", good.replace("v1=", "v0=")),
        HttpEvent::post("/api/v1/payments/webhook")
            .raw_body(&raw)
            .header("content-type", "application/json")
            .header("billwire-signature", "garbage"),
    ];
    for event in cases {
        w.refuses(event, 400, "invalid_signature").await;
    }
}

#[tokio::test]
async fn webhook_bodies_are_validated_after_the_signature() {
    let w = world().await;
    let p = pending_payment(&w).await;
    let unknown = json!({ "id": "evt_1", "type": "payment_intent.succeeded", "data": { "object": { "id": uuid::Uuid::now_v7() } } });
    w.refuses(delivery(&unknown, now(), WEBHOOK_SECRET), 404, "not_found")
        .await;
    for body in [
        json!({ "type": "payment_intent.succeeded", "data": { "object": { "id": p["id"] } } }),
        json!({ "id": "evt_1", "type": "payment_intent.succeeded", "data": { "object": { "id": "nope" } } }),
        json!({ "id": "evt_1", "type": "payment_intent.succeeded" }),
    ] {
        w.refuses(
            delivery(&body, now(), WEBHOOK_SECRET),
            400,
            "invalid_request",
        )
        .await;
    }
    let empty_id = json!({ "id": "", "type": "payment_intent.succeeded", "data": { "object": { "id": p["id"] } } });
    w.refuses(
        delivery(&empty_id, now(), WEBHOOK_SECRET),
        422,
        "validation_failed",
    )
    .await;

    // Event types we do not handle are acknowledged, so the provider stops retrying.
    let before = w.snapshot().await;
    let other = json!({ "id": "evt_5", "type": "customer.created", "data": { "object": { "id": p["id"] } } });
    let reply = w.send(delivery(&other, now(), WEBHOOK_SECRET)).await;
    reply.assert_status(200);
    assert_eq!(reply.body["handled"], false);
    assert_eq!(before, w.snapshot().await);
}
