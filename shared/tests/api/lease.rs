//! The connector's leadership lease and the fence on its writes (shared::realtime::lease,
//! docs/architecture.md, "Leader and standby"), against a real Postgres: sessions stand in
//! for connector replicas.

use crate::support::*;
use devkit::testdb::TestDb;
use shared::realtime::lease::{self, Takeover};
use shared::realtime::registry::{self, CursorUpdate};
use std::time::{Duration, Instant};

const LOCK: i64 = 42_4242;

/// A session named like a connector replica's.
async fn replica(db: &TestDb, name: &str) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = db.url.parse().expect("url");
    config.application_name(format!("billwire-connector {name}"));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn lock(db: &tokio_postgres::Client) -> bool {
    db.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK])
        .await
        .expect("lock")
        .get(0)
}

async fn epoch(db: &TestDb) -> i64 {
    db.raw()
        .await
        .query_one("SELECT epoch FROM connector_state WHERE id = 1", &[])
        .await
        .expect("epoch")
        .get(0)
}

#[tokio::test]
async fn every_takeover_starts_a_larger_epoch_and_only_the_holder_renews() {
    let db = TestDb::new().await;
    let a = replica(&db, "a").await;
    let b = replica(&db, "b").await;
    assert!(lock(&a).await);
    let first = lease::take(&a, "a", Duration::from_secs(5))
        .await
        .expect("take");
    assert_eq!(first.epoch, 1);
    assert_eq!(first.previous_holder, None);
    assert_eq!(first.previous_lease_left, Duration::ZERO);
    assert!(lease::renew(&a, 1, Duration::from_secs(5))
        .await
        .expect("renew"));
    // Another session cannot renew it, with the right epoch or not.
    assert!(!lease::renew(&b, 1, Duration::from_secs(5))
        .await
        .expect("renew"));
    // While the lease runs, nobody's sessions are ended.
    assert_eq!(
        lease::end_expired_holder(&b, LOCK, Duration::from_secs(1))
            .await
            .expect("probe"),
        0
    );

    // `b` takes over (as if it held the lock): a new epoch; it learns who held it, that the
    // old holder is still connected and how long its lease still runs.
    let second: Takeover = lease::take(&b, "b", Duration::from_secs(5))
        .await
        .expect("take");
    assert_eq!(second.epoch, 2);
    assert_eq!(
        second.previous_holder.as_deref(),
        Some("billwire-connector a")
    );
    assert_eq!(second.stale_sessions, 1);
    assert!(
        second.previous_lease_left > Duration::from_secs(3),
        "{second:?}"
    );
    assert!(!lease::renew(&a, 1, Duration::from_secs(5))
        .await
        .expect("renew"));
    assert!(lease::renew(&b, 2, Duration::from_secs(5))
        .await
        .expect("renew"));

    // Releasing ends the lease at once; the next leader waits for nothing.
    lease::release(&b, 2).await.expect("release");
    let third = lease::take(&a, "a", Duration::from_secs(5))
        .await
        .expect("take");
    assert_eq!(third.epoch, 3);
    assert_eq!(third.previous_lease_left, Duration::ZERO);
}

#[tokio::test]
async fn a_holder_whose_lease_ended_is_cut_off_and_its_lock_freed() {
    let db = TestDb::new().await;
    let frozen = replica(&db, "frozen").await;
    let frozen_pool = replica(&db, "frozen").await;
    let standby = replica(&db, "standby").await;
    assert!(lock(&frozen).await);
    lease::take(&frozen, "frozen", Duration::from_millis(300))
        .await
        .expect("take");
    assert!(!lock(&standby).await);
    // The holder stops renewing (paused, cut off); once its lease has ended on the
    // database's clock, the standby ends all of its sessions and the lock is free.
    let started = Instant::now();
    let ended = loop {
        let n = lease::end_expired_holder(&standby, LOCK, Duration::from_secs(5))
            .await
            .expect("end");
        if n > 0 || started.elapsed() > Duration::from_secs(10) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended, 2, "the lock holder and its other session");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(lock(&standby).await, "the lock was not freed");
    assert!(frozen.simple_query("SELECT 1").await.is_err());
    assert!(frozen_pool.simple_query("SELECT 1").await.is_err());
    let taken = lease::take(&standby, "standby", Duration::from_secs(5))
        .await
        .expect("take");
    assert_eq!(taken.epoch, 2);
    assert_eq!(taken.stale_sessions, 0);
}

#[tokio::test]
async fn a_deposed_leaders_writes_change_nothing() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    let db = w.db.client().await;
    seed_connection(&w, &admin, "fenced=", "subscribing", None).await;
    seed_connection(&w, &admin, "live=", "live", Some(5)).await;
    bump_epoch(&w.db).await;
    assert_eq!(epoch(&w.db).await, 1);

    // Epoch 0 was deposed: activation, cursors and removal are refused...
    assert!(!registry::activate(&db, "fenced=", 1, 7, 0)
        .await
        .expect("activate"));
    let cursor = |cursor| CursorUpdate {
        connection_id: "live=".into(),
        generation: 1,
        cursor,
    };
    registry::save_cursors(&db, &[cursor(9)], 0)
        .await
        .expect("save");
    assert!(!registry::remove_gone(&db, "live=", 0)
        .await
        .expect("remove"));
    assert_eq!(
        state_of(&w, "fenced=").await,
        Some(("subscribing".into(), None))
    );
    assert_eq!(state_of(&w, "live=").await, Some(("live".into(), Some(5))));

    // ...and the current epoch's go through.
    assert!(registry::activate(&db, "fenced=", 1, 7, 1)
        .await
        .expect("activate"));
    registry::save_cursors(&db, &[cursor(9)], 1)
        .await
        .expect("save");
    assert_eq!(
        state_of(&w, "fenced=").await,
        Some(("live".into(), Some(7)))
    );
    assert_eq!(state_of(&w, "live=").await, Some(("live".into(), Some(9))));
    assert!(registry::remove_gone(&db, "live=", 1)
        .await
        .expect("remove"));
    assert_eq!(state_of(&w, "live=").await, None);
}

#[tokio::test]
async fn a_write_racing_a_takeover_lands_before_it_or_not_at_all() {
    let w = world().await;
    let admin = w.merchant("shop").await;
    seed_connection(&w, &admin, "racing=", "live", Some(5)).await;
    // A takeover in flight: the new epoch is written but not yet committed.
    let mut taker = w.db.raw().await;
    let tx = taker.transaction().await.expect("begin");
    tx.execute(
        "UPDATE connector_state SET epoch = epoch + 1 WHERE id = 1",
        &[],
    )
    .await
    .expect("bump");
    // The old leader's flush waits for it (it read epoch 0 as current a moment ago)...
    let flush = {
        let db = w.db.client().await;
        tokio::spawn(async move {
            let update = CursorUpdate {
                connection_id: "racing=".into(),
                generation: 1,
                cursor: 50,
            };
            registry::save_cursors(&db, &[update], 0).await
        })
    };
    let started = Instant::now();
    while waiting_on_a_lock(&w.db).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the fenced write did not wait for the takeover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!flush.is_finished());
    tx.commit().await.expect("commit");
    // ...and then finds the new epoch and writes nothing.
    flush.await.expect("join").expect("save");
    assert_eq!(
        state_of(&w, "racing=").await,
        Some(("live".into(), Some(5)))
    );
}

async fn waiting_on_a_lock(db: &TestDb) -> i64 {
    db.raw()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("activity")
        .get(0)
}

async fn bump_epoch(db: &TestDb) {
    db.raw()
        .await
        .execute(
            "UPDATE connector_state SET epoch = epoch + 1 WHERE id = 1",
            &[],
        )
        .await
        .expect("bump");
}

async fn seed_connection(w: &World, who: &Actor, id: &str, state: &str, cursor: Option<i64>) {
    w.db.raw()
        .await
        .execute(
            "INSERT INTO ws_connections (connection_id, account_id, user_id, role, state, requested_after, cursor, generation)
             VALUES ($1, $2, $3, 'admin', $4, 0, $5, 1)",
            &[&id, &who.account_id, &who.id, &state, &cursor],
        )
        .await
        .expect("connection");
}

async fn state_of(w: &World, id: &str) -> Option<(String, Option<i64>)> {
    w.db.raw()
        .await
        .query_opt(
            "SELECT state, cursor FROM ws_connections WHERE connection_id = $1",
            &[&id],
        )
        .await
        .expect("state")
        .map(|r| (r.get(0), r.get(1)))
}
