//! Behind CloudFront, the API answers only what came through CloudFront (and its WAF): the
//! deployment gives the functions the value CloudFront sends as `X-Billwire-Origin`, and a
//! request sent straight to the `execute-api` URL is refused before any work.

use crate::support::*;
use serde_json::json;
use shared::api::lambda::ORIGIN_HEADER;

const ORIGIN_SECRET: &str = "cloudfront-origin-0123456789abcdefABCDEF";

fn login() -> HttpEvent {
    HttpEvent::post("/api/v1/auth/login")
        .json(&json!({ "email": "ann@example.com", "password": "Test123!" }))
}

#[tokio::test]
async fn requests_that_did_not_come_through_cloudfront_are_refused_and_change_nothing() {
    let w = world().await;
    w.merchant("shop").await;
    w.customer("shop", "ann@example.com").await;
    let behind_cloudfront = shared::api::App::new(devkit::testdb::test_config_with(
        &w.db.url,
        &[("ORIGIN_VERIFY_SECRET", ORIGIN_SECRET)],
    ))
    .expect("app");

    let before = w.snapshot().await;
    for (event, what) in [
        (login(), "no header"),
        (login().header(ORIGIN_HEADER, "guess"), "a wrong value"),
        (
            login().header(ORIGIN_HEADER, &ORIGIN_SECRET[..ORIGIN_SECRET.len() - 1]),
            "a prefix of the value",
        ),
        (
            login().header(ORIGIN_HEADER, format!("{ORIGIN_SECRET}x")),
            "the value and more",
        ),
        (HttpEvent::get("/api/v1/plans"), "a read without the header"),
    ] {
        let reply = send_to(&behind_cloudfront, event).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.body);
        reply.assert_error(403, "direct_access");
    }
    assert_eq!(
        before,
        w.snapshot().await,
        "a refused request changed the database"
    );

    // Through CloudFront, the same login works; without the setting (local mode) no header
    // is needed.
    send_to(
        &behind_cloudfront,
        login().header(ORIGIN_HEADER, ORIGIN_SECRET),
    )
    .await
    .assert_status(200);
    w.send(login()).await.assert_status(200);
}
