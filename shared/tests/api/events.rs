use crate::support::*;

#[tokio::test]
async fn the_event_log_pages_by_id_and_reports_where_to_resume() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    for _ in 0..3 {
        let p = w.intent(&ann, &plan, "card").await;
        w.confirm(&ann, &p).await.assert_status(200);
    }
    let all = w.events_for(&admin).await;
    assert_eq!(all.len(), 6);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap_or(0)).collect();
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "{ids:?}");
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds[..2], ["order_created", "payment_received"]);
    assert!(all[0]["created_at"].is_string());
    assert!(all[0]["data"]["payment_id"].is_string());

    let page = w
        .send(
            HttpEvent::get("/api/v1/events")
                .bearer(&admin.token)
                .query("limit", 4),
        )
        .await;
    page.assert_status(200);
    assert_eq!(page.body["has_more"], true);
    assert_eq!(page.body["next_after"], ids[3]);
    let rest = w
        .send(
            HttpEvent::get("/api/v1/events")
                .bearer(&admin.token)
                .query("after", ids[3]),
        )
        .await;
    let rest_ids: Vec<i64> = rest.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["id"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(rest_ids, ids[4..]);
    assert_eq!(rest.body["has_more"], false);
    let none = w
        .send(
            HttpEvent::get("/api/v1/events")
                .bearer(&admin.token)
                .query("after", ids[5]),
        )
        .await;
    assert_eq!(none.body["data"].as_array().map(Vec::len), Some(0));
    assert_eq!(none.body["next_after"], ids[5]);

    for event in [
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("after", -1),
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("after", "x"),
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("limit", 1001),
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("limit", 0),
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("cursor", 1),
        HttpEvent::get("/api/v1/events")
            .bearer(&admin.token)
            .query("after", 1)
            .query("after", 2),
    ] {
        w.send(event).await.assert_error(400, "invalid_request");
    }
}
