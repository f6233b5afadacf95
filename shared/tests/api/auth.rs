use crate::support::*;
use devkit::testdb::JWT_SECRET;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// Logs `email` in with the test password; returns the reply body (the tokens).
async fn logs_in(w: &World, email: &str) -> serde_json::Value {
    let reply = w
        .send(
            HttpEvent::post("/api/v1/auth/login")
                .json(&json!({ "email": email, "password": "Test123!" })),
        )
        .await;
    reply.assert_status(200);
    reply.body
}

async fn ann_logs_in(w: &World) -> serde_json::Value {
    logs_in(w, "ann@example.com").await
}

/// A world with the account "shop" and its customer ann@example.com.
async fn shop_with_ann() -> World {
    let w = world().await;
    w.merchant("shop").await;
    w.customer("shop", "ann@example.com").await;
    w
}

/// Moves a refresh token's expiry `ago` (an SQL interval) into the past.
async fn expire(w: &World, refresh_token: &serde_json::Value, ago: &str) {
    w.db.client()
        .await
        .execute(
            "UPDATE refresh_tokens SET expires_at = now() - $2::text::interval
              WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&refresh_token.as_str().expect("token"), &ago],
        )
        .await
        .expect("expire it");
}

async fn trade(w: &World, refresh_token: &serde_json::Value) -> Reply {
    w.send(HttpEvent::post("/api/v1/auth/refresh").json(&json!({ "refresh_token": refresh_token })))
        .await
}

#[tokio::test]
async fn a_refresh_token_buys_a_new_pair_once() {
    let w = shop_with_ann().await;
    let first = ann_logs_in(&w).await;
    assert_eq!(first["refresh_expires_in"], 14 * 86_400);
    let token = first["refresh_token"].as_str().expect("refresh token");
    assert!(token.starts_with("rt_") && token.len() == 67, "{token}");
    // Only a hash is stored.
    let stored: i64 =
        w.db.client()
            .await
            .query_one(
                "SELECT count(*) FROM refresh_tokens WHERE token_hash = convert_to($1, 'UTF8')",
                &[&token],
            )
            .await
            .expect("count")
            .get(0);
    assert_eq!(stored, 0);

    let second = trade(&w, &first["refresh_token"]).await;
    second.assert_status(200);
    assert_eq!(second.body["token_type"], "bearer");
    assert_ne!(second.body["refresh_token"], first["refresh_token"]);
    let access = second.body["access_token"].as_str().expect("access token");
    let me = w
        .send(HttpEvent::get("/api/v1/auth/me").bearer(access))
        .await;
    me.assert_status(200);
    assert_eq!(me.body["email"], "ann@example.com");
    // The new refresh token works in turn.
    trade(&w, &second.body["refresh_token"])
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_spent_refresh_token_presented_again_revokes_its_login() {
    let w = shop_with_ann().await;
    let stolen = ann_logs_in(&w).await["refresh_token"].clone();
    let other_login = ann_logs_in(&w).await["refresh_token"].clone();
    let owner = trade(&w, &stolen).await;
    owner.assert_status(200);
    // The copy is replayed: refused, and the owner's newer token dies with it.
    trade(&w, &stolen)
        .await
        .assert_error(401, "invalid_refresh_token");
    trade(&w, &owner.body["refresh_token"])
        .await
        .assert_error(401, "invalid_refresh_token");
    // Another login of the same user is a different family and keeps working.
    trade(&w, &other_login).await.assert_status(200);
}

#[tokio::test]
async fn bad_refresh_requests_are_refused_and_change_nothing() {
    let w = world().await;
    w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let live = ann_logs_in(&w).await;
    let expired = ann_logs_in(&w).await["refresh_token"].clone();
    expire(&w, &expired, "1 second").await;
    let post = || HttpEvent::post("/api/v1/auth/refresh");
    for (event, status, code) in [
        (post(), 400, "missing_body"),
        (
            post()
                .raw_body("{not json")
                .header("content-type", "application/json"),
            400,
            "malformed_json",
        ),
        (post().json(&json!({})), 400, "invalid_request"),
        (post().json(&json!([])), 400, "invalid_request"),
        (
            post().json(&json!({ "refresh_token": 42 })),
            400,
            "invalid_request",
        ),
        (
            post().json(&json!({ "refresh_token": live["refresh_token"], "extra": 1 })),
            400,
            "invalid_request",
        ),
        (
            post().json(&json!({ "refresh_token": "" })),
            422,
            "validation_failed",
        ),
        (
            post().json(&json!({ "refresh_token": "rt_".repeat(400) })),
            422,
            "validation_failed",
        ),
        (
            post().json(&json!({ "refresh_token": "rt_0000" })),
            401,
            "invalid_refresh_token",
        ),
        (
            post().json(&json!({ "refresh_token": expired })),
            401,
            "invalid_refresh_token",
        ),
        // An access token is not a refresh token.
        (
            post().json(&json!({ "refresh_token": live["access_token"] })),
            401,
            "invalid_refresh_token",
        ),
        (
            post().json(&json!({ "refresh_token": ann.token })),
            401,
            "invalid_refresh_token",
        ),
    ] {
        w.refuses(event, status, code).await;
    }
    // A refresh token is not an access token.
    let me = w
        .send(
            HttpEvent::get("/api/v1/auth/me")
                .bearer(live["refresh_token"].as_str().expect("token")),
        )
        .await;
    me.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn login_issues_a_short_lived_bearer_token_that_me_accepts() {
    let w = world().await;
    w.merchant("shop").await;
    w.customer("shop", "ann@example.com").await;
    // Emails match case-insensitively.
    let body = logs_in(&w, "Ann@Example.com").await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().expect("token");
    let me = w
        .send(HttpEvent::get("/api/v1/auth/me").bearer(token))
        .await;
    me.assert_status(200);
    assert_eq!(me.body["email"], "ann@example.com");
    assert_eq!(me.body["role"], "customer");
    assert_eq!(me.body["account"]["slug"], "shop");
}

#[tokio::test]
async fn wrong_credentials_are_refused_alike() {
    let w = world().await;
    w.merchant("shop").await;
    w.customer("shop", "ann@example.com").await;
    for body in [
        json!({ "email": "ann@example.com", "password": "Wrong123!" }),
        json!({ "email": "nobody@example.com", "password": "Test123!" }),
        json!({ "email": "ann@example.com", "password": "" }),
        json!({ "email": "ann@example.com", "password": "Test123!", "account": "other" }),
    ] {
        let reply = w
            .send(HttpEvent::post("/api/v1/auth/login").json(&body))
            .await;
        reply.assert_error(401, "unauthorized");
        assert_eq!(reply.body["error"]["message"], "email or password is wrong");
    }
    for body in [
        json!({ "email": "ann@example.com" }),
        json!({ "email": 1, "password": "x" }),
    ] {
        w.send(HttpEvent::post("/api/v1/auth/login").json(&body))
            .await
            .assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn an_email_in_two_accounts_needs_the_account() {
    let w = world().await;
    w.merchant("one").await;
    w.merchant("two").await;
    w.customer("one", "ann@example.com").await;
    w.customer("two", "ann@example.com").await;
    let reply = w
        .send(
            HttpEvent::post("/api/v1/auth/login")
                .json(&json!({ "email": "ann@example.com", "password": "Test123!" })),
        )
        .await;
    reply.assert_error(400, "account_required");
    let reply =
        w.send(HttpEvent::post("/api/v1/auth/login").json(
            &json!({ "email": "ann@example.com", "password": "Test123!", "account": "two" }),
        ))
        .await;
    reply.assert_status(200);
    let token = reply.body["access_token"].as_str().expect("token");
    let me = w
        .send(HttpEvent::get("/api/v1/auth/me").bearer(token))
        .await;
    assert_eq!(me.body["account"]["slug"], "two");
}

fn claims(overrides: serde_json::Value, actor: &Actor) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": actor.id, "acc": actor.account_id, "role": "admin",
        "iss": "billwire", "aud": "billwire-api", "iat": now, "exp": now + 600
    });
    for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            c.as_object_mut().map(|m| m.remove(&k));
        } else {
            c[k] = v;
        }
    }
    c
}

fn sign(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// Every way a token can be wrong, against a protected endpoint.
#[tokio::test]
async fn bad_tokens_are_refused() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let now = chrono::Utc::now().timestamp();
    let good = sign(&claims(json!({}), &admin), JWT_SECRET);
    // The good token works, so the refusals below are about the token alone.
    w.send(HttpEvent::get("/api/v1/auth/me").bearer(&good))
        .await
        .assert_status(200);

    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let payload = claims(json!({}), &admin);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&payload)
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = b64(&claims(
        json!({ "role": "admin", "sub": uuid::Uuid::new_v4() }),
        &admin,
    ));
    let tampered = parts.join(".");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &payload,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign");

    let cases: Vec<(&str, HttpEvent)> = vec![
        ("missing", HttpEvent::get("/api/v1/auth/me")),
        (
            "not bearer",
            HttpEvent::get("/api/v1/auth/me").header("authorization", format!("Basic {good}")),
        ),
        (
            "empty bearer",
            HttpEvent::get("/api/v1/auth/me").header("authorization", "Bearer "),
        ),
        (
            "garbage",
            HttpEvent::get("/api/v1/auth/me").bearer("not.a.jwt"),
        ),
        (
            "expired",
            HttpEvent::get("/api/v1/auth/me").bearer(&sign(
                &claims(json!({ "iat": now - 7200, "exp": now - 3600 }), &admin),
                JWT_SECRET,
            )),
        ),
        (
            "wrong secret",
            HttpEvent::get("/api/v1/auth/me").bearer(&sign(
                &payload,
                "another-secret-another-secret-another-secret",
            )),
        ),
        (
            "alg none",
            HttpEvent::get("/api/v1/auth/me").bearer(&alg_none),
        ),
        (
            "tampered",
            HttpEvent::get("/api/v1/auth/me").bearer(&tampered),
        ),
        ("hs512", HttpEvent::get("/api/v1/auth/me").bearer(&hs512)),
        (
            "wrong issuer",
            HttpEvent::get("/api/v1/auth/me")
                .bearer(&sign(&claims(json!({ "iss": "evil" }), &admin), JWT_SECRET)),
        ),
        (
            "wrong audience",
            HttpEvent::get("/api/v1/auth/me").bearer(&sign(
                &claims(json!({ "aud": "other" }), &admin),
                JWT_SECRET,
            )),
        ),
        (
            "no exp",
            HttpEvent::get("/api/v1/auth/me")
                .bearer(&sign(&claims(json!({ "exp": null }), &admin), JWT_SECRET)),
        ),
        (
            "no iat",
            HttpEvent::get("/api/v1/auth/me")
                .bearer(&sign(&claims(json!({ "iat": null }), &admin), JWT_SECRET)),
        ),
        (
            "iat in the future",
            HttpEvent::get("/api/v1/auth/me").bearer(&sign(
                &claims(json!({ "iat": now + 3600 }), &admin),
                JWT_SECRET,
            )),
        ),
        (
            "unknown role",
            HttpEvent::get("/api/v1/auth/me").bearer(&sign(
                &claims(json!({ "role": "root" }), &admin),
                JWT_SECRET,
            )),
        ),
    ];
    for (what, event) in cases {
        let reply = w.send(event).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        reply.assert_error(401, "unauthorized");
    }
}

/// Every protected endpoint refuses a request without a token, and writes nothing.
#[tokio::test]
async fn every_protected_endpoint_needs_a_token() {
    let w = world().await;
    w.merchant("shop").await;
    let id = uuid::Uuid::now_v7();
    let endpoints: Vec<HttpEvent> = vec![
        HttpEvent::get("/api/v1/auth/me"),
        HttpEvent::get("/api/v1/plans"),
        HttpEvent::post("/api/v1/plans").json(&json!({})),
        HttpEvent::patch("/api/v1/plans/{id}")
            .param("id", id)
            .json(&json!({})),
        HttpEvent::post("/api/v1/payments/intent").json(&json!({})),
        HttpEvent::post("/api/v1/payments/{id}/confirm").param("id", id),
        HttpEvent::post("/api/v1/payments/{id}/refund").param("id", id),
        HttpEvent::get("/api/v1/payments"),
        HttpEvent::get("/api/v1/payments/{id}").param("id", id),
        HttpEvent::post("/api/v1/invoices").json(&json!({})),
        HttpEvent::post("/api/v1/invoices/{id}/finalize").param("id", id),
        HttpEvent::post("/api/v1/invoices/{id}/pay").param("id", id),
        HttpEvent::post("/api/v1/invoices/{id}/void").param("id", id),
        HttpEvent::post("/api/v1/invoices/{id}/mark-uncollectible").param("id", id),
        HttpEvent::get("/api/v1/invoices"),
        HttpEvent::get("/api/v1/invoices/{id}").param("id", id),
        HttpEvent::get("/api/v1/customers"),
        HttpEvent::get("/api/v1/events"),
        HttpEvent::get("/api/v1/dashboard/stats"),
    ];
    for event in endpoints {
        w.refuses(event, 401, "unauthorized").await;
    }
}

/// Admin-only endpoints refuse customers with 403 and write nothing.
#[tokio::test]
async fn admin_endpoints_refuse_customers() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let payment = w.intent(&ann, &plan, "card").await;
    w.confirm(&ann, &payment).await.assert_status(200);
    let invoice = w.invoice(&admin, &ann).await;
    let t = &ann.token;
    let endpoints: Vec<HttpEvent> = vec![
        HttpEvent::post("/api/v1/plans").bearer(t).json(&json!({ "name": "X", "monthly_price": 1, "yearly_price": 1, "currency": "USD" })),
        HttpEvent::patch("/api/v1/plans/{id}").param("id", plan["id"].as_str().unwrap_or_default()).bearer(t).json(&json!({ "active": false })),
        HttpEvent::post("/api/v1/payments/{id}/refund").param("id", payment["id"].as_str().unwrap_or_default()).bearer(t),
        HttpEvent::post("/api/v1/invoices").bearer(t).json(&json!({ "customer_id": ann.id, "lines": [{ "description": "x", "quantity": 1, "unit_amount": 1 }] })),
        HttpEvent::post("/api/v1/invoices/{id}/finalize").param("id", invoice["id"].as_str().unwrap_or_default()).bearer(t),
        HttpEvent::get("/api/v1/customers").bearer(t),
    ];
    for event in endpoints {
        w.refuses(event, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn housekeeping_drops_expired_refresh_tokens_only() {
    let w = shop_with_ann().await;
    let old = ann_logs_in(&w).await["refresh_token"].clone();
    let live = ann_logs_in(&w).await["refresh_token"].clone();
    expire(&w, &old, "2 hours").await;
    let db = w.db.client().await;
    assert!(
        shared::realtime::housekeeping::purge_expired(&db)
            .await
            .expect("purge")
            >= 1
    );
    let left: i64 = db
        .query_one("SELECT count(*) FROM refresh_tokens", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 1);
    trade(&w, &live).await.assert_status(200);
}

#[tokio::test]
async fn logout_ends_that_login_only() {
    let w = shop_with_ann().await;
    let first = ann_logs_in(&w).await;
    let other = ann_logs_in(&w).await;
    // A refreshed token belongs to the same login: logging out with the old pair's
    // successor ends it all.
    let renewed = trade(&w, &first["refresh_token"]).await;
    renewed.assert_status(200);
    let reply = w
        .send(
            HttpEvent::post("/api/v1/auth/logout")
                .json(&json!({ "refresh_token": renewed.body["refresh_token"] })),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["logged_out"], true);
    trade(&w, &renewed.body["refresh_token"])
        .await
        .assert_error(401, "invalid_refresh_token");
    trade(&w, &other["refresh_token"]).await.assert_status(200);
    // Unknown tokens get the same answer and change nothing; bad bodies are refused.
    let before = w.snapshot().await;
    w.send(HttpEvent::post("/api/v1/auth/logout").json(&json!({ "refresh_token": "rt_unknown" })))
        .await
        .assert_status(200);
    assert_eq!(before, w.snapshot().await);
    let post = || HttpEvent::post("/api/v1/auth/logout");
    for (event, status, code) in [
        (post(), 400, "missing_body"),
        (
            post().json(&json!({ "token": "rt_x" })),
            400,
            "invalid_request",
        ),
        (
            post().json(&json!({ "refresh_token": "" })),
            422,
            "validation_failed",
        ),
    ] {
        w.refuses(event, status, code).await;
    }
}
