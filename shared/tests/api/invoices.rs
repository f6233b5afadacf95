use crate::support::*;
use serde_json::json;

fn transition(admin: &Actor, invoice: &serde_json::Value, name: &str) -> HttpEvent {
    HttpEvent::post(&format!("/api/v1/invoices/{{id}}/{name}"))
        .param("id", invoice["id"].as_str().unwrap_or_default())
        .bearer(&admin.token)
}

#[tokio::test]
async fn invoices_total_exactly_and_number_without_gaps() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let reply = w
        .send(
            HttpEvent::post("/api/v1/invoices")
                .bearer(&admin.token)
                .json(&json!({
                    "customer_id": ann.id,
                    "currency": "eur",
                    "memo": "Thanks",
                    "due_date": "2026-12-31",
                    "lines": [
                        { "description": "Seats", "quantity": 3, "unit_amount": 1999 },
                        { "description": "Setup", "quantity": 1, "unit_amount": 1 }
                    ]
                })),
        )
        .await;
    reply.assert_status(201);
    let inv = &reply.body;
    assert_eq!(inv["number"], "INV-000001");
    assert_eq!(inv["status"], "draft");
    assert_eq!(inv["currency"], "EUR");
    assert_eq!(inv["total"], 5998);
    assert_eq!(inv["lines"][0]["amount"], 5997);
    assert_eq!(inv["due_date"], "2026-12-31");
    let (kind, data): (String, serde_json::Value) = {
        let row =
            w.db.client()
                .await
                .query_one(
                    "SELECT type, data FROM events ORDER BY id DESC LIMIT 1",
                    &[],
                )
                .await
                .expect("event");
        (row.get(0), row.get(1))
    };
    assert_eq!(kind, "invoice_created");
    assert_eq!(data["invoice_id"], inv["id"]);
    assert_eq!(data["invoice_number"], "INV-000001");
    assert_eq!(data["total"], 5998);
    assert_eq!(data["currency"], "EUR");
    assert_eq!(data["status"], "draft");

    // A refused invoice does not use up a number.
    w.refuses(
        HttpEvent::post("/api/v1/invoices").bearer(&admin.token).json(&json!({
            "customer_id": uuid::Uuid::now_v7(), "lines": [{ "description": "x", "quantity": 1, "unit_amount": 1 }]
        })),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(w.invoice(&admin, &ann).await["number"], "INV-000002");

    // Numbers are per account.
    let other = w.merchant("other").await;
    let zed = w.customer("other", "zed@example.com").await;
    assert_eq!(w.invoice(&other, &zed).await["number"], "INV-000001");
}

#[tokio::test]
async fn concurrent_invoices_get_distinct_consecutive_numbers() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let results = futures::future::join_all((0..12).map(|_| w.invoice(&admin, &ann))).await;
    let mut numbers: Vec<String> = results
        .iter()
        .map(|i| i["number"].as_str().unwrap_or("").to_string())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=12).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn the_state_machine_is_stripes() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;

    let inv = w.invoice(&admin, &ann).await;
    for illegal in ["pay", "void", "mark-uncollectible"] {
        w.refuses(
            transition(&admin, &inv, illegal),
            409,
            "invalid_state_transition",
        )
        .await;
    }
    let open = w.send(transition(&admin, &inv, "finalize")).await;
    open.assert_status(200);
    assert_eq!(open.body["status"], "open");
    assert!(open.body["finalized_at"].is_string());
    w.refuses(
        transition(&admin, &inv, "finalize"),
        409,
        "invalid_state_transition",
    )
    .await;
    let unc = w.send(transition(&admin, &inv, "mark-uncollectible")).await;
    assert_eq!(unc.body["status"], "uncollectible");
    let paid = w.send(transition(&admin, &inv, "pay")).await;
    paid.assert_status(200);
    assert_eq!(paid.body["status"], "paid");
    assert!(paid.body["paid_at"].is_string());
    for illegal in ["finalize", "pay", "void", "mark-uncollectible"] {
        w.refuses(
            transition(&admin, &inv, illegal),
            409,
            "invalid_state_transition",
        )
        .await;
    }
    let events: Vec<(String, serde_json::Value)> =
        w.db.client()
            .await
            .query(
                "SELECT type, data FROM events WHERE type = 'order_updated' ORDER BY id",
                &[],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let steps: Vec<(String, String)> = events
        .iter()
        .map(|(_, d)| {
            (
                d["previous_status"].as_str().unwrap_or("").into(),
                d["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("draft".into(), "open".into()),
            ("open".into(), "uncollectible".into()),
            ("uncollectible".into(), "paid".into())
        ]
    );
    assert!(events
        .iter()
        .all(|(_, d)| d["kind"] == "invoice" && d["id"] == inv["id"]));

    let voided = w.invoice(&admin, &ann).await;
    w.send(transition(&admin, &voided, "finalize"))
        .await
        .assert_status(200);
    let v = w.send(transition(&admin, &voided, "void")).await;
    assert_eq!(v.body["status"], "void");
    w.refuses(
        transition(&admin, &voided, "pay"),
        409,
        "invalid_state_transition",
    )
    .await;
}

#[tokio::test]
async fn invoice_input_is_validated() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let other = w.merchant("other").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let zed = w.customer("other", "zed@example.com").await;
    let line = json!({ "description": "Seats", "quantity": 1, "unit_amount": 100 });
    let ok = json!({ "customer_id": ann.id, "lines": [line] });
    let with = |k: &str, v: serde_json::Value| {
        let mut body = ok.clone();
        body[k] = v;
        HttpEvent::post("/api/v1/invoices")
            .bearer(&admin.token)
            .json(&body)
    };
    let with_line = |k: &str, v: serde_json::Value| {
        let mut l = line.clone();
        l[k] = v;
        with("lines", json!([l]))
    };
    let many: Vec<serde_json::Value> = (0..101).map(|_| line.clone()).collect();
    let cases = vec![
        (with("lines", json!([])), 422, "validation_failed"),
        (with("lines", json!(many)), 422, "validation_failed"),
        (with("lines", json!("Seats")), 400, "invalid_request"),
        (with("customer_id", json!(zed.id)), 422, "validation_failed"),
        (
            with("customer_id", json!(admin.id)),
            422,
            "validation_failed",
        ),
        (with("customer_id", json!(42)), 400, "invalid_request"),
        (with("currency", json!("DOLLARS")), 422, "validation_failed"),
        (
            with("due_date", json!("31/12/2026")),
            422,
            "validation_failed",
        ),
        (
            with("memo", json!("m".repeat(2001))),
            422,
            "validation_failed",
        ),
        (with("status", json!("paid")), 400, "invalid_request"),
        (with_line("quantity", json!(0)), 422, "validation_failed"),
        (with_line("quantity", json!(-1)), 422, "validation_failed"),
        (
            with_line("quantity", json!(1_000_001)),
            422,
            "validation_failed",
        ),
        (with_line("unit_amount", json!(0)), 422, "validation_failed"),
        (
            with_line("unit_amount", json!(-5)),
            422,
            "validation_failed",
        ),
        (
            with_line("unit_amount", json!(1_000_000_000_000i64)),
            422,
            "validation_failed",
        ),
        (
            with_line("unit_amount", json!(1e30)),
            400,
            "invalid_request",
        ),
        (
            with_line("description", json!("")),
            422,
            "validation_failed",
        ),
        (
            with_line("description", json!("d".repeat(501))),
            422,
            "validation_failed",
        ),
        (with_line("tax", json!(1)), 400, "invalid_request"),
        (
            with(
                "lines",
                json!([
                    { "description": "a", "quantity": 1000, "unit_amount": 999_999_999 },
                    { "description": "b", "quantity": 1, "unit_amount": 1000 }
                ]),
            ),
            422,
            "validation_failed",
        ),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
    let foreign = w.invoice(&other, &zed).await;
    w.refuses(transition(&admin, &foreign, "finalize"), 404, "not_found")
        .await;
    w.refuses(
        transition(&admin, &json!({ "id": uuid::Uuid::now_v7() }), "finalize")
            .json(&json!({ "force": true })),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn invoices_list_and_get_with_status_filter() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let bob = w.customer("shop", "bob@example.com").await;
    let a = w.invoice(&admin, &ann).await;
    w.invoice(&admin, &bob).await;
    w.send(transition(&admin, &a, "finalize"))
        .await
        .assert_status(200);
    let open = w
        .send(
            HttpEvent::get("/api/v1/invoices")
                .bearer(&admin.token)
                .query("status", "open"),
        )
        .await;
    open.assert_status(200);
    assert_eq!(open.body["data"].as_array().map(Vec::len), Some(1));
    assert!(open.body["data"][0].get("lines").is_none());
    let all = w
        .send(HttpEvent::get("/api/v1/invoices").bearer(&admin.token))
        .await;
    assert_eq!(all.body["data"].as_array().map(Vec::len), Some(2));
    let mine = w
        .send(HttpEvent::get("/api/v1/invoices").bearer(&ann.token))
        .await;
    assert_eq!(mine.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine.body["data"][0]["id"], a["id"]);
    let one = w
        .send(
            HttpEvent::get("/api/v1/invoices/{id}")
                .param("id", a["id"].as_str().unwrap_or_default())
                .bearer(&ann.token),
        )
        .await;
    one.assert_status(200);
    assert_eq!(one.body["lines"][0]["description"], "Consulting");
    assert_eq!(one.body["status"], "open");
    w.send(
        HttpEvent::get("/api/v1/invoices/{id}")
            .param("id", a["id"].as_str().unwrap_or_default())
            .bearer(&bob.token),
    )
    .await
    .assert_error(404, "not_found");
    w.send(
        HttpEvent::get("/api/v1/invoices")
            .bearer(&admin.token)
            .query("status", "late"),
    )
    .await
    .assert_error(400, "invalid_request");
}
