use crate::support::*;

#[tokio::test]
async fn the_dashboard_adds_up() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let bob = w.customer("shop", "bob@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    for who in [&ann, &ann, &bob] {
        let p = w.intent(who, &plan, "card").await;
        w.confirm(who, &p).await.assert_status(200);
    }
    let declined = w.intent(&bob, &plan, "pm_card_chargeDeclined").await;
    w.confirm(&bob, &declined).await.assert_status(200);
    w.intent(&bob, &plan, "card").await;
    let inv = w.invoice(&admin, &ann).await;
    w.send(
        HttpEvent::post("/api/v1/invoices/{id}/finalize")
            .param("id", inv["id"].as_str().unwrap_or_default())
            .bearer(&admin.token),
    )
    .await
    .assert_status(200);
    let reply = w
        .send(HttpEvent::get("/api/v1/dashboard/stats").bearer(&admin.token))
        .await;
    reply.assert_status(200);
    let s = &reply.body;
    assert_eq!(s["currency"], "USD");
    assert_eq!(s["total_orders"], 5);
    assert_eq!(s["orders_24h"], 5);
    assert_eq!(s["payments_24h"], 3);
    assert_eq!(s["total_revenue"], 5700);
    assert_eq!(s["revenue_24h"], 5700);
    assert_eq!(s["total_customers"], 2);
    assert_eq!(s["payments_by_status"]["succeeded"], 3);
    assert_eq!(s["payments_by_status"]["failed"], 1);
    assert_eq!(s["payments_by_status"]["requires_confirmation"], 1);
    assert_eq!(s["invoices_by_status"]["open"], 1);
    assert_eq!(s["outstanding_invoices"], 3000);
    assert_eq!(s["top_customers"][0]["id"], ann.id.to_string());
    assert_eq!(s["top_customers"][0]["total_spent"]["USD"], 3800);
    assert_eq!(s["top_customers"][1]["id"], bob.id.to_string());
    let days = s["revenue_by_day"].as_array().cloned().unwrap_or_default();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["revenue"], 5700);
    assert_eq!(days[29]["orders"], 5);
    let last_event: i64 =
        w.db.client()
            .await
            .query_one("SELECT max(id) FROM events", &[])
            .await
            .expect("max")
            .get(0);
    assert_eq!(s["as_of_event"], last_event);

    // A customer's dashboard covers their own orders only.
    let mine = w
        .send(HttpEvent::get("/api/v1/dashboard/stats").bearer(&bob.token))
        .await;
    mine.assert_status(200);
    assert_eq!(mine.body["total_orders"], 3);
    assert_eq!(mine.body["total_revenue"], 1900);
    assert_eq!(mine.body["top_customers"], serde_json::json!([]));

    w.send(
        HttpEvent::get("/api/v1/dashboard/stats")
            .bearer(&admin.token)
            .query("days", 7),
    )
    .await
    .assert_error(400, "invalid_request");
}
