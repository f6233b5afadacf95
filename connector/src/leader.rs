//! What the leader does while it holds the lock: read events in order with the gap-free
//! reader, offer each to the delivery tasks of the connections allowed to see it, start and
//! stop those tasks as connections subscribe and leave, and write cursors back.

use crate::config::Config;
use crate::delivery::{Outgoing, Shared, Start, Worker};
use crate::lease::Lease;
use crate::session::{Session, SessionError};
use futures::StreamExt;
use shared::platform::database::Pool;
use shared::realtime::housekeeping;
use shared::realtime::registry::{self as connections, Connection};
use shared::store::outbox::{self as events, Audience};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Batches one pass of the fan-out reads before the loop looks at its timers again.
const PUMP_BATCHES: usize = 4;

/// Aborts background tasks when leadership ends, however `run` returns.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

struct Leader<'a> {
    cfg: &'a Config,
    shared: Arc<Shared>,
    workers: HashMap<String, Worker>,
    by_account: HashMap<Uuid, HashSet<String>>,
    /// The newest event id offered to the delivery tasks.
    head: i64,
    cancel: CancellationToken,
    lease: Arc<Lease>,
    /// The loop's own sessions (reads of events and connections, cursor flushes): never
    /// queued behind the delivery tasks' catch-up reads on `shared.pool`, however many
    /// connections are catching up at once.
    db: Pool,
}

/// Leads under `lease` until the session or the lease is lost (`Err`) or shutdown (`Ok`).
/// Either way every delivery task is stopped and cursors are written back (fenced by the
/// lease's epoch) before it returns.
pub async fn lead(
    cfg: &Config,
    shared: Arc<Shared>,
    db: Pool,
    lease: Arc<Lease>,
    session: &mut Session,
    shutdown: &CancellationToken,
    health: &crate::health::Health,
) -> Result<(), SessionError> {
    // Progress an earlier leadership of this process did not write back is stale: the
    // replica that led since owns those cursors.
    drop(shared.take_progress());
    let mut leader = Leader {
        cfg,
        shared,
        workers: HashMap::new(),
        by_account: HashMap::new(),
        head: 0,
        cancel: shutdown.child_token(),
        lease,
        db,
    };
    let result = leader.run(session, shutdown, health).await;
    leader.stop_all().await;
    // Bounded: cut off from Postgres, the write would wait for the path to heal, and it is
    // fenced by the epoch anyway.
    if tokio::time::timeout(Duration::from_secs(5), leader.flush())
        .await
        .is_err()
    {
        tracing::warn!(
            "could not write cursors back in time; the next leader re-sends from the last flush"
        );
    }
    result
}

impl Leader<'_> {
    async fn run(
        &mut self,
        session: &mut Session,
        shutdown: &CancellationToken,
        health: &crate::health::Health,
    ) -> Result<(), SessionError> {
        // Everything up to here is delivered by the tasks' own catch-up; everything after
        // by the fan-out.
        self.head = session
            .client
            .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
            .await?
            .try_get(0)?;
        self.shared.metrics.head.store(self.head, Relaxed);
        self.reconcile_all().await;
        let started_behind = self.pump().await;

        // Cursor flushes and housekeeping run beside the loop, so neither waits for the
        // other nor holds up the fan-out; both stop when leadership ends.
        let background = self.cancel.child_token();
        let _stop_background = background.clone().drop_guard();
        let epoch = self.lease.epoch;
        let flusher = every(self.cfg.cursor_flush_interval, background.clone(), {
            let (shared, db) = (self.shared.clone(), self.db.clone());
            move || {
                let (shared, db) = (shared.clone(), db.clone());
                async move { flush(&shared, &db, epoch).await }
            }
        });
        let housekeeper = every(self.cfg.housekeeping_interval, background.clone(), {
            let (shared, stale_after) = (self.shared.clone(), self.cfg.stale_after);
            move || {
                let shared = shared.clone();
                async move { housekeeping(&shared, stale_after, epoch).await }
            }
        });
        // The lease is renewed beside the loop too: a long pass cannot let it run out.
        let keeper = every(self.cfg.lease_renew_interval(), background.clone(), {
            let (lease, control, ttl) =
                (self.lease.clone(), session.client.clone(), self.cfg.lease);
            move || {
                let (lease, control) = (lease.clone(), control.clone());
                async move { crate::lease::renew(&lease, &control, ttl).await }
            }
        });
        let _tasks = AbortOnDrop(vec![flusher, housekeeper, keeper]);

        let mut poll = tokio::time::interval(self.cfg.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        // More committed events than one pass reads: read on at the loop's next turn, after
        // whatever else is due (timers are never starved by a busy fan-out).
        let mut more = started_behind;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.lease.lost() => return Err(self.lease.error()),
                alive = session.wakes.wait() => {
                    if !alive {
                        return Err(SessionError::Lost);
                    }
                    // Everything heard since the last look, in one pass.
                    let (new_events, changed) = session.wakes.take();
                    // Events first: the connections already live should not wait for a
                    // crowd of (re)subscriptions to be set up.
                    if new_events {
                        more = self.pump().await;
                    }
                    self.reconcile_some(changed.into_iter().collect()).await;
                }
                _ = std::future::ready(()), if more => more = self.pump().await,
                _ = poll.tick() => {
                    // The lease keeper proves the session, and with it the lock, is ours.
                    health.beat(self.lease.valid());
                    ticks += 1;
                    if ticks.is_multiple_of(5) {
                        self.reconcile_all().await;
                        session
                            .client
                            .execute(
                                "UPDATE connector_state SET cursor = $1 WHERE id = 1 AND epoch = $2",
                                &[&self.head, &epoch],
                            )
                            .await?;
                    }
                    // A lost NOTIFY delays events by one poll at most.
                    more = self.pump().await;
                }
            }
        }
    }

    /// Reads committed events after `head`, a few batches at most, and offers each to the
    /// tasks that may see it. Returns whether more are waiting.
    async fn pump(&mut self) -> bool {
        for _ in 0..PUMP_BATCHES {
            let batch = match self.db.get().await {
                Ok(db) => {
                    events::read_after(&db, self.head, self.shared.read_batch, Audience::All).await
                }
                Err(e) => Err(e.into()),
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read events; retrying on the next tick");
                    return false;
                }
            };
            let Some(last) = batch.last() else {
                self.shared.metrics.lag_ms.store(0, Relaxed);
                return false;
            };
            let lag = (chrono::Utc::now() - last.created_at)
                .num_milliseconds()
                .max(0);
            self.shared.metrics.lag_ms.store(lag, Relaxed);
            let n = batch.len() as i64;
            for event in batch {
                let event = Arc::new(Outgoing::from(event));
                if let Some(ids) = self.by_account.get(&event.account_id) {
                    for id in ids {
                        if let Some(w) = self.workers.get(id).filter(|w| w.sees(&event)) {
                            w.offer(&event);
                        }
                    }
                }
                self.head = event.id;
            }
            self.shared.metrics.events_read.fetch_add(n as u64, Relaxed);
            self.shared.metrics.head.store(self.head, Relaxed);
            if n < self.shared.read_batch {
                return false;
            }
        }
        true
    }

    /// Brings the tasks of these connections in line with the table, in one read.
    async fn reconcile_some(&mut self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let loaded = match self.db.get().await {
            Ok(db) => connections::load_many(&db, &ids).await,
            Err(e) => Err(e.into()),
        };
        let found = match loaded {
            Ok(found) => found,
            // The periodic full reconcile repairs it.
            Err(e) => {
                tracing::warn!(connections = ids.len(), error = %e, "could not load connections");
                return;
            }
        };
        let present: HashSet<String> = found.iter().map(|c| c.id.clone()).collect();
        for id in ids.iter().filter(|id| !present.contains(*id)) {
            self.stop(id).await;
        }
        for c in found {
            self.apply(c).await;
        }
    }

    /// Makes the tasks match the table: one per subscribing or live connection.
    async fn reconcile_all(&mut self) {
        let loaded = match self.db.get().await {
            Ok(db) => connections::load_active(&db).await,
            Err(e) => Err(e.into()),
        };
        let active = match loaded {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "could not load connections");
                return;
            }
        };
        let keep: HashSet<String> = active.iter().map(|c| c.id.clone()).collect();
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop(&id).await;
        }
        for c in active {
            self.apply(c).await;
        }
    }

    async fn apply(&mut self, c: Connection) {
        let current = self
            .workers
            .get(&c.id)
            .is_some_and(|w| w.generation == c.generation && !w.is_finished());
        let start = match c.state.as_str() {
            "subscribing" => Start::Announce(c.requested_after.unwrap_or(0)),
            "live" => Start::Resume(c.cursor.or(c.requested_after).unwrap_or(0)),
            _ => {
                self.stop(&c.id).await;
                return;
            }
        };
        if current {
            return;
        }
        self.stop(&c.id).await;
        let worker = Worker::spawn(
            self.shared.clone(),
            self.lease.clone(),
            &c,
            start,
            &self.cancel,
        );
        self.by_account
            .entry(c.account_id)
            .or_default()
            .insert(c.id.clone());
        self.workers.insert(c.id.clone(), worker);
        self.shared
            .metrics
            .connections
            .store(self.workers.len() as i64, Relaxed);
    }

    async fn stop(&mut self, id: &str) {
        if let Some(w) = self.workers.remove(id) {
            if let Some(ids) = self.by_account.get_mut(&w.account_id) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_account.remove(&w.account_id);
                }
            }
            w.stop().await;
            self.shared
                .metrics
                .connections
                .store(self.workers.len() as i64, Relaxed);
        }
    }

    async fn stop_all(&mut self) {
        self.cancel.cancel();
        let ids: Vec<String> = self.workers.keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }

    /// Writes delivery cursors back (see [`flush`]).
    async fn flush(&mut self) {
        flush(&self.shared, &self.db, self.lease.epoch).await;
    }
}

/// Writes delivery cursors back (a crash re-sends at most what one flush interval
/// delivered; clients drop ids they have seen), only while `epoch` leads.
async fn flush(shared: &Shared, db: &Pool, epoch: i64) {
    let cursors = shared.take_progress();
    if cursors.is_empty() {
        return;
    }
    let saved = match db.get().await {
        Ok(db) => connections::save_cursors(&db, &cursors, epoch).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not save cursors; keeping them for the next flush");
        shared.restore_progress(cursors);
    }
}

/// Silent connections probed at once during housekeeping.
const PROBE_CONCURRENCY: usize = 16;

/// Removes what nobody can use any more, and connections API Gateway no longer has but
/// whose `$disconnect` never came (it is best-effort). Runs in its own task: however long
/// the probes take, the fan-out goes on.
async fn housekeeping(shared: &Shared, stale_after: Duration, epoch: i64) {
    let db = match shared.pool.get().await {
        Ok(db) => db,
        Err(e) => {
            tracing::warn!(error = %e, "housekeeping skipped");
            return;
        }
    };
    match housekeeping::purge_expired(&db).await {
        Ok(n) if n > 0 => {
            tracing::info!(
                rows = n,
                "purged expired tickets, idempotency keys and refresh tokens"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not purge expired rows"),
    }
    let silent = match connections::silent(&db, stale_after, 500).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list silent connections");
            return;
        }
    };
    drop(db);
    futures::stream::iter(silent)
        .for_each_concurrent(PROBE_CONCURRENCY, |id| async move {
            let verdict = shared.sender.alive(&id).await;
            let db = match shared.pool.get().await {
                Ok(db) => db,
                Err(e) => {
                    tracing::warn!(connection_id = id, error = %e, "could not record a probe");
                    return;
                }
            };
            match verdict {
                Ok(true) => {
                    let _ = connections::touch(&db, &id).await;
                }
                Ok(false) => {
                    tracing::info!(
                        connection_id = id,
                        "connection is gone (410 on GetConnection); removing it"
                    );
                    shared.metrics.connections_gone.fetch_add(1, Relaxed);
                    if let Err(e) = connections::remove_gone(&db, &id, epoch).await {
                        tracing::warn!(connection_id = id, error = %e, "could not remove a gone connection");
                    }
                }
                Err(e) => tracing::warn!(
                    connection_id = id,
                    error = e,
                    "could not probe a silent connection"
                ),
            }
        })
        .await;
}

/// Runs `work` every `every` until `stop`, never in a burst after an overrun.
fn every<F, Fut>(every: Duration, stop: CancellationToken, work: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => work().await,
            }
        }
    })
}
