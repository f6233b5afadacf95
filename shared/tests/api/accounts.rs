use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn creating_an_account_makes_its_admin() {
    let w = world().await;
    let reply = w
        .send(HttpEvent::post("/api/v1/accounts").json(&json!({
            "name": "Acme Corp.", "admin_email": "Boss@Acme.test", "admin_password": "Admin123!"
        })))
        .await;
    reply.assert_status(201);
    assert_eq!(reply.body["account"]["slug"], "acme-corp");
    assert_eq!(reply.body["account"]["currency"], "USD");
    assert_eq!(reply.body["admin"]["role"], "admin");
    assert_eq!(reply.body["admin"]["email"], "Boss@Acme.test");
    assert!(reply.body["admin"].get("password_hash").is_none());
    let hash: String =
        w.db.client()
            .await
            .query_one("SELECT password_hash FROM users", &[])
            .await
            .expect("user")
            .get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict() {
    let w = world().await;
    w.merchant("shop").await;
    w.refuses(
        HttpEvent::post("/api/v1/accounts").json(&json!({
            "name": "Shop", "admin_email": "x@shop.test", "admin_password": "Admin123!"
        })),
        409,
        "slug_taken",
    )
    .await;
}

#[tokio::test]
async fn account_input_is_validated() {
    let w = world().await;
    let ok = json!({ "name": "Shop", "admin_email": "a@shop.test", "admin_password": "Admin123!" });
    let with = |k: &str, v: serde_json::Value| {
        let mut body = ok.clone();
        body[k] = v;
        HttpEvent::post("/api/v1/accounts").json(&body)
    };
    let cases: Vec<(HttpEvent, u16, &str)> = vec![
        (HttpEvent::post("/api/v1/accounts"), 400, "missing_body"),
        (
            HttpEvent::post("/api/v1/accounts")
                .raw_body("{\"name\":")
                .header("content-type", "application/json"),
            400,
            "malformed_json",
        ),
        (
            HttpEvent::post("/api/v1/accounts")
                .raw_body("name=x")
                .header("content-type", "application/x-www-form-urlencoded"),
            415,
            "unsupported_media_type",
        ),
        (
            HttpEvent::post("/api/v1/accounts").json(&json!([1, 2])),
            400,
            "invalid_request",
        ),
        (
            HttpEvent::post("/api/v1/accounts").json(&json!({ "name": "Shop" })),
            400,
            "invalid_request",
        ),
        (with("name", json!(42)), 400, "invalid_request"),
        (with("surprise", json!(true)), 400, "invalid_request"),
        (with("name", json!("   ")), 422, "validation_failed"),
        (
            with("name", json!("x".repeat(201))),
            422,
            "validation_failed",
        ),
        (
            with("admin_email", json!("not-an-email")),
            422,
            "validation_failed",
        ),
        (
            with("admin_password", json!("short")),
            422,
            "validation_failed",
        ),
        (
            with("admin_password", json!("x".repeat(129))),
            422,
            "validation_failed",
        ),
        (with("slug", json!("Bad Slug")), 422, "validation_failed"),
        (with("currency", json!("ZZZ")), 422, "validation_failed"),
        (with("name", json!("!!!")), 422, "validation_failed"),
        (
            HttpEvent::post("/api/v1/accounts")
                .raw_body(&format!("{{\"name\":\"{}\"}}", "x".repeat(70_000)))
                .header("content-type", "application/json"),
            413,
            "payload_too_large",
        ),
    ];
    for (event, status, code) in cases {
        w.refuses(event, status, code).await;
    }
}

#[tokio::test]
async fn customers_register_to_an_account_by_slug() {
    let w = world().await;
    w.merchant("shop").await;
    let reply = w
        .send(HttpEvent::post("/api/v1/auth/register").json(&json!({
            "email": "ann@example.com", "password": "Test123!", "name": "Ann", "account": "shop"
        })))
        .await;
    reply.assert_status(201);
    assert_eq!(reply.body["role"], "customer");
    assert_eq!(reply.body["name"], "Ann");
}

#[tokio::test]
async fn an_email_is_unique_per_account_case_insensitively() {
    let w = world().await;
    w.merchant("shop").await;
    w.merchant("other").await;
    w.customer("shop", "ann@example.com").await;
    w.refuses(
        HttpEvent::post("/api/v1/auth/register").json(&json!({
            "email": "ANN@example.com", "password": "Test123!", "name": "Ann", "account": "shop"
        })),
        409,
        "email_taken",
    )
    .await;
    // The same email in another account is another user.
    w.customer("other", "ann@example.com").await;
}

#[tokio::test]
async fn registration_input_is_validated() {
    let w = world().await;
    w.merchant("shop").await;
    let ok = json!({ "email": "ann@example.com", "password": "Test123!", "name": "Ann", "account": "shop" });
    let with = |k: &str, v: serde_json::Value| {
        let mut body = ok.clone();
        body[k] = v;
        HttpEvent::post("/api/v1/auth/register").json(&body)
    };
    for (event, status, code) in [
        (with("account", json!("nope")), 422, "validation_failed"),
        (
            with("account", json!("NOT A SLUG")),
            422,
            "validation_failed",
        ),
        (with("email", json!("")), 422, "validation_failed"),
        (with("password", json!("1234567")), 422, "validation_failed"),
        (with("name", json!("")), 422, "validation_failed"),
        (with("name", json!(null)), 400, "invalid_request"),
        (with("role", json!("admin")), 400, "invalid_request"),
    ] {
        w.refuses(event, status, code).await;
    }
}
