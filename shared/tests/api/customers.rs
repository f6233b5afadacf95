use crate::support::*;

#[tokio::test]
async fn customers_come_with_order_count_and_total_spent() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let bob = w.customer("shop", "bob@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    for _ in 0..2 {
        let p = w.intent(&ann, &plan, "card").await;
        w.confirm(&ann, &p).await.assert_status(200);
    }
    let declined = w.intent(&ann, &plan, "pm_card_chargeDeclined").await;
    w.confirm(&ann, &declined).await.assert_status(200);
    let reply = w
        .send(HttpEvent::get("/api/v1/customers").bearer(&admin.token))
        .await;
    reply.assert_status(200);
    let data = reply.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 2);
    let ann_row = data
        .iter()
        .find(|c| c["id"] == ann.id.to_string())
        .expect("ann");
    assert_eq!(ann_row["order_count"], 3);
    assert_eq!(ann_row["total_spent"]["USD"], 3800);
    let bob_row = data
        .iter()
        .find(|c| c["id"] == bob.id.to_string())
        .expect("bob");
    assert_eq!(bob_row["order_count"], 0);
    assert_eq!(bob_row["total_spent"], serde_json::json!({}));
    // Newest first, paginated.
    let first = w
        .send(
            HttpEvent::get("/api/v1/customers")
                .bearer(&admin.token)
                .query("limit", 1),
        )
        .await;
    assert_eq!(first.body["data"][0]["id"], bob.id.to_string());
    assert_eq!(first.body["has_more"], true);
    let second = w
        .send(
            HttpEvent::get("/api/v1/customers")
                .bearer(&admin.token)
                .query("limit", 1)
                .query("starting_after", bob.id),
        )
        .await;
    assert_eq!(second.body["data"][0]["id"], ann.id.to_string());
    assert_eq!(second.body["has_more"], false);
    w.send(
        HttpEvent::get("/api/v1/customers")
            .bearer(&admin.token)
            .query("starting_after", admin.id),
    )
    .await
    .assert_error(400, "invalid_request");
}
