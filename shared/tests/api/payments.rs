use crate::support::*;
use serde_json::json;

async fn last_event(w: &World) -> (String, serde_json::Value, Option<uuid::Uuid>) {
    let row =
        w.db.client()
            .await
            .query_one(
                "SELECT type, data, user_id FROM events ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .expect("an event");
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn an_intent_takes_the_plans_price_and_records_order_created() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let reply = w
        .send(
            HttpEvent::post("/api/v1/payments/intent")
                .bearer(&ann.token)
                .json(&json!({ "plan_id": plan["id"], "billing_cycle": "yearly", "payment_method": "card" })),
        )
        .await;
    reply.assert_status(201);
    let p = &reply.body;
    assert_eq!(p["status"], "requires_confirmation");
    assert_eq!(p["amount"], 19000);
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["plan_name"], "Pro");
    assert_eq!(p["billing_cycle"], "yearly");
    assert_eq!(p["customer"]["id"], ann.id.to_string());

    let (kind, data, user) = last_event(&w).await;
    assert_eq!(kind, "order_created");
    assert_eq!(user, Some(ann.id));
    assert_eq!(data["payment_id"], p["id"]);
    assert_eq!(data["amount"], 19000);
    assert_eq!(data["currency"], "USD");
    assert_eq!(data["plan_name"], "Pro");
    assert_eq!(data["billing_cycle"], "yearly");
    assert_eq!(data["customer"]["email"], "ann@example.com");
    assert_eq!(w.db.count("events").await, 1);
}

#[tokio::test]
async fn confirming_with_a_good_card_succeeds_and_records_payment_received() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let p = w.intent(&ann, &plan, "pm_card_visa").await;
    let reply = w.confirm(&ann, &p).await;
    reply.assert_status(200);
    assert_eq!(reply.body["status"], "succeeded");
    let (kind, data, _) = last_event(&w).await;
    assert_eq!(kind, "payment_received");
    assert_eq!(data["payment_id"], p["id"]);
    assert_eq!(data["amount"], 1900);
    assert_eq!(data["currency"], "USD");
    assert_eq!(data["customer"]["id"], ann.id.to_string());

    // A second confirmation is a conflict and changes nothing.
    w.refuses(
        HttpEvent::post("/api/v1/payments/{id}/confirm")
            .param("id", p["id"].as_str().unwrap_or_default())
            .bearer(&ann.token),
        409,
        "invalid_state",
    )
    .await;
}

#[tokio::test]
async fn a_declining_test_card_fails_the_payment_and_records_order_updated() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let p = w.intent(&ann, &plan, "card").await;
    // Switching to the declining method at confirmation, as Stripe allows.
    let reply = w
        .send(
            HttpEvent::post("/api/v1/payments/{id}/confirm")
                .param("id", p["id"].as_str().unwrap_or_default())
                .bearer(&ann.token)
                .json(&json!({ "payment_method": "pm_card_chargeDeclined" })),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["status"], "failed");
    assert_eq!(reply.body["failure_code"], "card_declined");
    assert_eq!(reply.body["payment_method"], "pm_card_chargeDeclined");
    let (kind, data, _) = last_event(&w).await;
    assert_eq!(kind, "order_updated");
    assert_eq!(data["id"], p["id"]);
    assert_eq!(data["kind"], "payment");
    assert_eq!(data["status"], "failed");
    assert_eq!(data["previous_status"], "requires_confirmation");
}

#[tokio::test]
async fn admins_refund_succeeded_payments_only() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let pending = w.intent(&ann, &plan, "card").await;
    let refund_of = |p: &serde_json::Value| {
        HttpEvent::post("/api/v1/payments/{id}/refund")
            .param("id", p["id"].as_str().unwrap_or_default())
            .bearer(&admin.token)
    };
    w.refuses(refund_of(&pending), 409, "invalid_state").await;
    w.confirm(&ann, &pending).await.assert_status(200);
    let reply = w.send(refund_of(&pending)).await;
    reply.assert_status(200);
    assert_eq!(reply.body["status"], "refunded");
    let (kind, data, _) = last_event(&w).await;
    assert_eq!(kind, "order_updated");
    assert_eq!(data["status"], "refunded");
    assert_eq!(data["previous_status"], "succeeded");
    w.refuses(refund_of(&pending), 409, "invalid_state").await;
}

#[tokio::test]
async fn intent_input_is_validated() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let other = w.merchant("other").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let bob = w.customer("shop", "bob@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let foreign_plan = w.plan(&other, "Foreign").await;
    let retired = w.plan(&admin, "Retired").await;
    w.send(
        HttpEvent::patch("/api/v1/plans/{id}")
            .param("id", retired["id"].as_str().unwrap_or_default())
            .bearer(&admin.token)
            .json(&json!({ "active": false })),
    )
    .await
    .assert_status(200);
    let ok = json!({ "plan_id": plan["id"], "billing_cycle": "monthly", "payment_method": "card" });
    let with = |who: &Actor, k: &str, v: serde_json::Value| {
        let mut body = ok.clone();
        body[k] = v;
        HttpEvent::post("/api/v1/payments/intent")
            .bearer(&who.token)
            .json(&body)
    };
    let cases = vec![
        (
            with(&ann, "plan_id", json!(uuid::Uuid::now_v7())),
            422,
            "validation_failed",
        ),
        (
            with(&ann, "plan_id", foreign_plan["id"].clone()),
            422,
            "validation_failed",
        ),
        (
            with(&ann, "plan_id", retired["id"].clone()),
            422,
            "validation_failed",
        ),
        (
            with(&ann, "plan_id", json!("not-a-uuid")),
            400,
            "invalid_request",
        ),
        (
            with(&ann, "billing_cycle", json!("weekly")),
            400,
            "invalid_request",
        ),
        (
            with(&ann, "payment_method", json!("bitcoin")),
            422,
            "validation_failed",
        ),
        (
            with(&ann, "payment_method", json!("")),
            422,
            "validation_failed",
        ),
        (with(&ann, "amount", json!(1)), 400, "invalid_request"),
        (with(&ann, "customer_id", json!(bob.id)), 403, "forbidden"),
        (
            with(&admin, "customer_id", json!(null)),
            422,
            "validation_failed",
        ),
        (
            with(&admin, "customer_id", json!(admin.id)),
            422,
            "validation_failed",
        ),
        (
            with(&other, "customer_id", json!(ann.id)),
            422,
            "validation_failed",
        ),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
    // An admin may create an intent for one of the account's customers.
    let reply = w.send(with(&admin, "customer_id", json!(bob.id))).await;
    reply.assert_status(201);
    assert_eq!(reply.body["customer"]["id"], bob.id.to_string());
}

#[tokio::test]
async fn confirm_and_refund_input_is_validated() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let other = w.merchant("other").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let bob = w.customer("shop", "bob@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let p = w.intent(&ann, &plan, "card").await;
    let id = p["id"].as_str().unwrap_or_default().to_string();
    let confirm_as = |who: &Actor, id: &str| {
        HttpEvent::post("/api/v1/payments/{id}/confirm")
            .param("id", id)
            .bearer(&who.token)
    };
    let cases = vec![
        (confirm_as(&bob, &id), 404, "not_found"),
        (confirm_as(&other, &id), 404, "not_found"),
        (confirm_as(&ann, "nope"), 404, "not_found"),
        (
            confirm_as(&ann, &uuid::Uuid::now_v7().to_string()),
            404,
            "not_found",
        ),
        (
            confirm_as(&ann, &id).json(&json!({ "payment_method": "cash" })),
            422,
            "validation_failed",
        ),
        (
            confirm_as(&ann, &id).json(&json!({ "amount": 1 })),
            400,
            "invalid_request",
        ),
        (
            confirm_as(&ann, &id)
                .raw_body("{")
                .header("content-type", "application/json"),
            400,
            "malformed_json",
        ),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
    w.confirm(&ann, &p).await.assert_status(200);
    let refund_as = |who: &Actor, id: &str| {
        HttpEvent::post("/api/v1/payments/{id}/refund")
            .param("id", id)
            .bearer(&who.token)
    };
    for (event, status, code) in [
        (refund_as(&other, &id), 404, "not_found"),
        (
            refund_as(&admin, &id).json(&json!({ "amount": 5 })),
            400,
            "invalid_request",
        ),
    ] {
        w.refuses(event, status, code).await;
    }
}

#[tokio::test]
async fn lists_are_newest_first_with_cursor_pagination() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(w.intent(&ann, &plan, "card").await["id"].clone());
    }
    ids.reverse();
    let page = |after: Option<&serde_json::Value>| {
        let mut e = HttpEvent::get("/api/v1/payments")
            .bearer(&ann.token)
            .query("limit", 2);
        if let Some(a) = after {
            e = e.query("starting_after", a.as_str().unwrap_or_default());
        }
        e
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let reply = w.send(page(after.as_ref())).await;
        reply.assert_status(200);
        let data = reply.body["data"].as_array().cloned().unwrap_or_default();
        seen.extend(data.iter().map(|p| p["id"].clone()));
        if reply.body["has_more"] != true {
            break;
        }
        after = data.last().map(|p| p["id"].clone());
    }
    assert_eq!(seen, ids);

    let one = w
        .send(
            HttpEvent::get("/api/v1/payments/{id}")
                .param("id", ids[0].as_str().unwrap_or_default())
                .bearer(&ann.token),
        )
        .await;
    one.assert_status(200);
    assert_eq!(one.body["id"], ids[0]);

    let filtered = w
        .send(
            HttpEvent::get("/api/v1/payments")
                .bearer(&admin.token)
                .query("status", "succeeded"),
        )
        .await;
    assert_eq!(filtered.body["data"].as_array().map(Vec::len), Some(0));

    for (event, code) in [
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("limit", 0),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("limit", 101),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("limit", "ten"),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("status", "lost"),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("starting_after", "x"),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("starting_after", uuid::Uuid::now_v7()),
            "invalid_request",
        ),
        (
            HttpEvent::get("/api/v1/payments")
                .bearer(&ann.token)
                .query("sort", "asc"),
            "invalid_request",
        ),
    ] {
        w.send(event).await.assert_error(400, code);
    }
}
