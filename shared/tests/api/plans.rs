use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn admins_create_and_change_plans_customers_see_active_ones() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let pro = w.plan(&admin, "Pro").await;
    assert_eq!(pro["monthly_price"], 1900);
    assert_eq!(pro["currency"], "USD");
    assert_eq!(pro["active"], true);
    let basic = w.plan(&admin, "Basic").await;

    let reply = w
        .send(
            HttpEvent::patch("/api/v1/plans/{id}")
                .param("id", basic["id"].as_str().unwrap_or_default())
                .bearer(&admin.token)
                .json(&json!({ "active": false, "yearly_price": 15000, "description": "old" })),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body["yearly_price"], 15000);
    assert_eq!(reply.body["monthly_price"], 1900);
    assert_eq!(reply.body["description"], "old");

    let names = |r: &Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let as_admin = w
        .send(HttpEvent::get("/api/v1/plans").bearer(&admin.token))
        .await;
    assert_eq!(names(&as_admin).len(), 2);
    let as_ann = w
        .send(HttpEvent::get("/api/v1/plans").bearer(&ann.token))
        .await;
    assert_eq!(names(&as_ann), vec!["Pro"]);
}

#[tokio::test]
async fn plan_input_is_validated() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let other = w.merchant("other").await;
    let pro = w.plan(&admin, "Pro").await;
    let foreign = w.plan(&other, "Foreign").await;
    let ok =
        json!({ "name": "Gold", "monthly_price": 1000, "yearly_price": 10000, "currency": "USD" });
    let with = |k: &str, v: serde_json::Value| {
        let mut body = ok.clone();
        body[k] = v;
        HttpEvent::post("/api/v1/plans")
            .bearer(&admin.token)
            .json(&body)
    };
    let cases = vec![
        (with("monthly_price", json!(0)), 422, "validation_failed"),
        (with("monthly_price", json!(-100)), 422, "validation_failed"),
        (
            with("yearly_price", json!(1_000_000_000_000i64)),
            422,
            "validation_failed",
        ),
        (
            with("yearly_price", json!(9_223_372_036_854_775_808u64)),
            400,
            "invalid_request",
        ),
        (with("yearly_price", json!(12.5)), 400, "invalid_request"),
        (with("monthly_price", json!("1000")), 400, "invalid_request"),
        (with("currency", json!("ABC")), 422, "validation_failed"),
        (with("currency", json!("")), 422, "validation_failed"),
        (with("name", json!("")), 422, "validation_failed"),
        (
            with("name", json!("n".repeat(101))),
            422,
            "validation_failed",
        ),
        (
            with("description", json!("d".repeat(1001))),
            422,
            "validation_failed",
        ),
        (with("active", json!(true)), 400, "invalid_request"),
        (with("name", json!("pro")), 409, "name_taken"),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
    let patch = |id: &serde_json::Value, body: serde_json::Value| {
        HttpEvent::patch("/api/v1/plans/{id}")
            .param("id", id.as_str().unwrap_or_default())
            .bearer(&admin.token)
            .json(&body)
    };
    let cases = vec![
        (patch(&pro["id"], json!({})), 422, "validation_failed"),
        (
            patch(&pro["id"], json!({ "currency": "EUR" })),
            400,
            "invalid_request",
        ),
        (
            patch(&pro["id"], json!({ "monthly_price": 0 })),
            422,
            "validation_failed",
        ),
        (
            patch(&pro["id"], json!({ "active": "yes" })),
            400,
            "invalid_request",
        ),
        (
            patch(&foreign["id"], json!({ "active": false })),
            404,
            "not_found",
        ),
        (
            patch(&json!("not-a-uuid"), json!({ "active": false })),
            404,
            "not_found",
        ),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
    let gold = w.plan(&admin, "Gold").await;
    w.refuses(
        patch(&gold["id"], json!({ "name": "PRO" })),
        409,
        "name_taken",
    )
    .await;
}

#[tokio::test]
async fn plans_list_takes_no_parameters() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    w.send(
        HttpEvent::get("/api/v1/plans")
            .bearer(&admin.token)
            .query("page", 2),
    )
    .await
    .assert_error(400, "invalid_request");
}
