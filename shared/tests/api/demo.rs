use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn demo_data_loads_once_and_its_logins_work() {
    let w = world().await;
    let mut client = w.db.client().await;
    let loaded = demo::load(&mut client).await.expect("load");
    assert_eq!(loaded.accounts_created, vec!["demo", "acme"]);
    let before = w.snapshot().await;
    let again = demo::load(&mut client).await.expect("reload");
    assert!(again.accounts_created.is_empty());
    assert_eq!(before, w.snapshot().await, "loading twice changed data");
    for (email, password) in [demo::DEMO_ADMIN, demo::DEMO_CUSTOMER, demo::ACME_ADMIN] {
        w.send(
            HttpEvent::post("/api/v1/auth/login")
                .json(&json!({ "email": email, "password": password })),
        )
        .await
        .assert_status(200);
    }
    let customers: i64 = client
        .query_one(
            "SELECT count(*) FROM users u JOIN accounts a ON a.id = u.account_id WHERE a.slug = 'demo' AND role = 'customer'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(customers, 13);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
                    count(*) FILTER (WHERE status = 'refunded'), min(created_at) < now() - interval '14 days'
               FROM payments",
            &[],
        )
        .await
        .expect("payments");
    assert!(row.get::<_, i64>(0) > 30);
    assert!(row.get::<_, i64>(1) > 0);
    assert!(row.get::<_, i64>(2) > 0);
    assert!(row.get::<_, bool>(3), "payments span a few weeks");
    // Every payment and invoice has its events.
    let orphans: i64 = client
        .query_one(
            "SELECT count(*) FROM payments p WHERE NOT EXISTS
               (SELECT 1 FROM events e WHERE e.type = 'order_created' AND e.data->>'payment_id' = p.id::text)",
            &[],
        )
        .await
        .expect("orphans")
        .get(0);
    assert_eq!(orphans, 0);
    let stable = demo::stable_id("plan/demo/Starter");
    let starter: String = client
        .query_one("SELECT name FROM plans WHERE id = $1", &[&stable])
        .await
        .expect("stable plan id")
        .get(0);
    assert_eq!(starter, "Starter");
}
