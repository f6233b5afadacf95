//! The outbox invariants (docs/architecture.md: "Atomic outbox", "Gap-free ids", "NOTIFY is
//! a wake-up"): the write and its event commit together; NOTIFY is a wake-up delivered at
//! commit; the reader never skips an event whose transaction commits late.

use crate::support::*;
use futures::StreamExt;
use serde_json::json;
use shared::billing::payments::{self, NewIntent};
use shared::billing::values::BillingCycle;
use shared::store::outbox::{self as events, Audience, EventKind, NewEvent};
use shared::store::Tx;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

#[tokio::test]
async fn a_write_that_fails_after_its_insert_leaves_neither_row_nor_event() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let before = w.snapshot().await;
    {
        let mut client = w.db.client().await;
        let mut tx = Tx::begin(&mut client).await.expect("tx");
        let payment = payments::create_intent(
            &mut tx,
            &ann.principal(),
            NewIntent {
                plan_id: uuid(&plan["id"]),
                billing_cycle: BillingCycle::Monthly,
                payment_method: "card".into(),
                customer_id: None,
            },
        )
        .await
        .expect("insert");
        assert_eq!(
            payment.status,
            payments::PaymentStatus::RequiresConfirmation
        );
        // Something after the insert fails: the transaction must not commit.
        assert!(tx.execute("SELECT 1 / 0", &[]).await.is_err());
        assert!(tx.commit().await.is_err());
    }
    assert_eq!(before, w.snapshot().await);
}

#[tokio::test]
async fn events_are_written_with_their_rows_at_commit() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let mut client = w.db.client().await;
    let mut tx = Tx::begin(&mut client).await.expect("tx");
    tx.emit(NewEvent::new(
        admin.account_id,
        None,
        EventKind::OrderCreated,
        json!({ "n": 1 }),
    ));
    tx.emit(NewEvent::new(
        admin.account_id,
        None,
        EventKind::OrderUpdated,
        json!({ "n": 2 }),
    ));
    // Not yet visible to others.
    assert_eq!(w.db.count("events").await, 0);
    let ids = tx.commit().await.expect("commit");
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    assert_eq!(w.db.count("events").await, 2);
}

async fn begin_with_event(client: &tokio_postgres::Client, account: uuid::Uuid, n: i64) -> i64 {
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .query_one(
            "SELECT record_event($1, NULL, 'order_created', $2)",
            &[&account, &json!({ "n": n })],
        )
        .await
        .expect("record_event")
        .get(0)
}

/// Invariant 3 with a writer held open: the later writer cannot commit ahead of it, the
/// reader sees nothing until the first commits, then both, in order, once each.
#[tokio::test]
async fn a_writer_held_open_cannot_be_overtaken() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let account = admin.account_id;
    let first = w.db.raw().await;
    let second = w.db.raw().await;
    let reader = w.db.client().await;

    let first_id = begin_with_event(&first, account, 1).await;
    // The second writer does its own work and then tries to record its event and commit.
    let later = tokio::spawn(async move {
        let id = begin_with_event(&second, account, 2).await;
        second.batch_execute("COMMIT").await.expect("commit second");
        id
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !later.is_finished(),
        "the later writer committed while an earlier one was open"
    );
    let seen = events::read_after(&reader, 0, 100, Audience::All)
        .await
        .expect("read");
    assert!(
        seen.is_empty(),
        "read an event while an earlier one was uncommitted: {seen:?}"
    );

    first.batch_execute("COMMIT").await.expect("commit first");
    let second_id = later.await.expect("second writer");
    assert!(first_id < second_id);
    let seen = events::read_after(&reader, 0, 100, Audience::All)
        .await
        .expect("read");
    assert_eq!(
        seen.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![first_id, second_id]
    );
    let after = events::read_after(&reader, second_id, 100, Audience::All)
        .await
        .expect("read");
    assert!(after.is_empty());
}

/// Many writers that pause between recording and committing, some rolling back, and a
/// reader polling with `id > cursor` all along: it ends with every committed event exactly
/// once, in id order.
#[tokio::test]
async fn a_polling_reader_never_skips_under_concurrent_writers() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let account = admin.account_id;
    let url = w.db.url.clone();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let url = url.clone();
            tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                let mut committed = Vec::new();
                for i in 0..25i64 {
                    let id = begin_with_event(&client, account, writer * 100 + i).await;
                    tokio::time::sleep(Duration::from_millis(((writer * 7 + i * 3) % 5) as u64))
                        .await;
                    if (writer + i) % 5 == 0 {
                        client.batch_execute("ROLLBACK").await.expect("rollback");
                    } else {
                        client.batch_execute("COMMIT").await.expect("commit");
                        committed.push(id);
                    }
                }
                committed
            })
        })
        .collect();
    let reader = w.db.client().await;
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut done = false;
    while !done {
        done = writers.iter().all(|h| h.is_finished());
        for e in events::read_after(&reader, cursor, 7, Audience::All)
            .await
            .expect("read")
        {
            seen.push(e.id);
            cursor = e.id;
        }
        tokio::task::yield_now().await;
    }
    // Drain what committed after the last poll.
    loop {
        let batch = events::read_after(&reader, cursor, 100, Audience::All)
            .await
            .expect("read");
        if batch.is_empty() {
            break;
        }
        for e in batch {
            seen.push(e.id);
            cursor = e.id;
        }
    }
    let mut committed = Vec::new();
    for h in writers {
        committed.extend(h.await.expect("writer"));
    }
    committed.sort();
    assert_eq!(seen, committed, "the reader skipped or repeated an event");
}

async fn listener(url: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (client, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Notifications reach only code that polls the connection for messages.
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(message)) = stream.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", events::CHANNEL))
        .await
        .expect("listen");
    // Keep the client alive as long as the connection task runs.
    std::mem::forget(client);
    rx
}

#[tokio::test]
async fn listeners_are_woken_by_commits_not_by_rollbacks() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let mut rx = listener(&w.db.url).await;
    let writer = w.db.raw().await;

    let rolled_back = begin_with_event(&writer, admin.account_id, 1).await;
    writer.batch_execute("ROLLBACK").await.expect("rollback");
    let nothing = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(
        nothing.is_err(),
        "woken by a rolled-back write ({rolled_back}): {nothing:?}"
    );

    let id = begin_with_event(&writer, admin.account_id, 2).await;
    // Not before commit...
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
    writer.batch_execute("COMMIT").await.expect("commit");
    // ...and at commit, with the id as the whole payload.
    let payload = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification")
        .expect("channel open");
    assert_eq!(payload, id.to_string());
}

#[tokio::test]
async fn an_api_write_wakes_listeners() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let mut rx = listener(&w.db.url).await;
    w.intent(&ann, &plan, "card").await;
    let payload = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("notified")
        .expect("open");
    let id: i64 = payload.parse().expect("an event id");
    let events = events::read_after(&w.db.client().await, id - 1, 10, Audience::All)
        .await
        .expect("read");
    assert_eq!(events[0].event, "order_created");
}

/// A writer that takes the outbox lock and then goes silent (a frozen process, a lost
/// network) cannot hold every tenant's writes: Postgres ends its session once it has idled
/// in its transaction for `DB_IDLE_IN_TRANSACTION_TIMEOUT_MS`, and the writers waiting
/// behind it (for up to `DB_LOCK_TIMEOUT_MS`) go through.
#[tokio::test]
async fn a_writer_that_goes_silent_holding_the_outbox_lock_cannot_block_other_tenants() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let ann = w.customer("shop", "ann@example.com").await;
    let plan = w.plan(&admin, "Pro").await;
    let app = shared::api::App::new(devkit::testdb::test_config_with(
        &w.db.url,
        &[
            ("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "1000"),
            ("DB_LOCK_TIMEOUT_MS", "20000"),
        ],
    ))
    .expect("app");

    // Another tenant's writer takes the outbox lock and stops talking.
    let mut stalled = app.pool.get().await.expect("a session");
    let tx = stalled.transaction().await.expect("begin");
    tx.query_one(
        "SELECT record_event($1, NULL, 'order_created', '{}'::jsonb)",
        &[&uuid::Uuid::now_v7()],
    )
    .await
    .expect("holds the outbox lock now");

    let started = std::time::Instant::now();
    let reply = HttpEvent::post("/api/v1/payments/intent")
        .bearer(&ann.token)
        .json(&serde_json::json!({
            "plan_id": plan["id"], "billing_cycle": "monthly", "payment_method": "card"
        }))
        .send(&app)
        .await;
    let waited = started.elapsed();
    reply.assert_status(201);
    assert!(
        waited < std::time::Duration::from_secs(15),
        "the write waited {waited:?}, past the idle timeout"
    );
    // The silent writer's session was ended; its event never became visible.
    assert!(
        tx.commit().await.is_err(),
        "the stalled transaction was ended"
    );
    let events = w.events_for(&admin).await;
    assert_eq!(events.len(), 1, "only the new order's event: {events:?}");
}
