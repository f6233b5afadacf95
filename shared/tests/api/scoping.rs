//! Scoping (docs/architecture.md) over REST: customers see their own rows and events, admins their
//! account's, nobody another account's.

use crate::support::*;
use serde_json::Value;

struct Shop {
    admin: Actor,
    ann: Actor,
    bob: Actor,
}

async fn shop(w: &World, slug: &str) -> Shop {
    let admin = w.merchant(slug).await;
    let ann = w.customer(slug, &format!("ann@{slug}.example")).await;
    let bob = w.customer(slug, &format!("bob@{slug}.example")).await;
    let plan = w.plan(&admin, "Pro").await;
    for who in [&ann, &bob] {
        let p = w.intent(who, &plan, "card").await;
        w.confirm(who, &p).await.assert_status(200);
        w.invoice(&admin, who).await;
    }
    Shop { admin, ann, bob }
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn nobody_sees_what_is_not_theirs() {
    let w = world().await;
    let demo = shop(&w, "demo").await;
    let acme = shop(&w, "acme").await;

    for (who, expected_owner) in [
        (&demo.ann, Some(demo.ann.id)),
        (&demo.bob, Some(demo.bob.id)),
        (&demo.admin, None),
    ] {
        let reply = w
            .send(HttpEvent::get("/api/v1/payments").bearer(&who.token))
            .await;
        let data = reply.body["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(data.len(), if expected_owner.is_some() { 1 } else { 2 });
        for p in &data {
            if let Some(owner) = expected_owner {
                assert_eq!(p["customer"]["id"], owner.to_string());
            }
            assert!(p["customer"]["email"]
                .as_str()
                .unwrap_or("")
                .ends_with("demo.example"));
        }
        let reply = w
            .send(HttpEvent::get("/api/v1/invoices").bearer(&who.token))
            .await;
        for inv in reply.body["data"].as_array().into_iter().flatten() {
            if let Some(owner) = expected_owner {
                assert_eq!(inv["customer"]["id"], owner.to_string());
            }
        }
    }

    // Another customer's or another account's payment is "not found", never "forbidden".
    let bobs = w
        .send(HttpEvent::get("/api/v1/payments").bearer(&demo.bob.token))
        .await;
    let bobs_payment = ids(&bobs.body)[0].clone();
    for who in [&demo.ann, &acme.admin, &acme.ann] {
        w.send(
            HttpEvent::get("/api/v1/payments/{id}")
                .param("id", &bobs_payment)
                .bearer(&who.token),
        )
        .await
        .assert_error(404, "not_found");
    }
    let acme_invoices = w
        .send(HttpEvent::get("/api/v1/invoices").bearer(&acme.admin.token))
        .await;
    let acme_invoice = ids(&acme_invoices.body)[0].clone();
    w.send(
        HttpEvent::get("/api/v1/invoices/{id}")
            .param("id", &acme_invoice)
            .bearer(&demo.admin.token),
    )
    .await
    .assert_error(404, "not_found");
    let customers = w
        .send(HttpEvent::get("/api/v1/customers").bearer(&acme.admin.token))
        .await;
    assert_eq!(customers.body["data"].as_array().map(Vec::len), Some(2));
    for c in customers.body["data"].as_array().into_iter().flatten() {
        assert!(c["email"].as_str().unwrap_or("").ends_with("acme.example"));
    }
}

#[tokio::test]
async fn the_event_log_is_scoped_like_live_delivery() {
    let w = world().await;
    let demo = shop(&w, "demo").await;
    let acme = shop(&w, "acme").await;
    let all: Vec<(uuid::Uuid, Option<uuid::Uuid>, i64)> =
        w.db.client()
            .await
            .query("SELECT account_id, user_id, id FROM events", &[])
            .await
            .expect("events")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    for (who, account, customer) in [
        (&demo.admin, demo.admin.account_id, None),
        (&demo.ann, demo.ann.account_id, Some(demo.ann.id)),
        (&demo.bob, demo.bob.account_id, Some(demo.bob.id)),
        (&acme.admin, acme.admin.account_id, None),
        (&acme.ann, acme.ann.account_id, Some(acme.ann.id)),
    ] {
        let got: Vec<i64> = w
            .events_for(who)
            .await
            .iter()
            .map(|e| e["id"].as_i64().unwrap_or(0))
            .collect();
        let mut expected: Vec<i64> = all
            .iter()
            .filter(|(a, u, _)| *a == account && (customer.is_none() || *u == customer))
            .map(|(_, _, id)| *id)
            .collect();
        expected.sort();
        assert_eq!(got, expected, "{}", who.email);
        assert!(!got.is_empty());
    }
}
