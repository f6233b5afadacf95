//! One delivery task per connection: the only writer to that connection, sending in id order.
//!
//! The fan-out offers each event to the tasks whose connections may see it, through a
//! bounded queue. A task that falls behind (its queue fills: a slow or stuck client) is marked
//! lagging; the fan-out stops offering to it and moves on, and the task catches up from
//! Postgres by its own cursor, then rejoins. A connection's trouble therefore never slows the
//! fan-out or any other connection, and memory stays bounded.
//!
//! Rejoining is gap-free: the task reads everything after its cursor, clears `lagging`,
//! then reads once more. Whatever the fan-out skipped while `lagging` was set was committed
//! before that second read; whatever it offers afterwards arrives on the queue. Overlaps
//! are dropped by id (`id <= cursor`).

use crate::lease::Lease;
use crate::metrics::Metrics;
use crate::sender::{SendError, Sender, MAX_MESSAGE_BYTES};
use shared::realtime::protocol::{self, ServerMessage};
use shared::realtime::registry::{self, Connection};
use shared::store::outbox::{self as events, Audience, Event};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// An event ready to send: serialised once, however many connections receive it.
#[derive(Debug)]
pub struct Outgoing {
    pub id: i64,
    pub account_id: Uuid,
    pub user_id: Option<Uuid>,
    /// The event's type, for the `oversized` marker.
    pub event: String,
    /// The wire JSON: `{"type":"event","id":..,"event":..,"data":..,"created_at":..}`.
    pub wire: String,
}

impl From<Event> for Outgoing {
    fn from(e: Event) -> Self {
        Outgoing {
            id: e.id,
            account_id: e.account_id,
            user_id: e.user_id,
            wire: protocol::event_json(&e),
            event: e.event,
        }
    }
}

/// What all delivery tasks share.
pub struct Shared {
    pub pool: shared::platform::database::Pool,
    pub sender: Sender,
    pub metrics: Arc<Metrics>,
    /// Cursors reached since the last flush, by connection and subscription generation.
    pub progress: Mutex<HashMap<Progress, i64>>,
    pub read_batch: i64,
    pub queue: usize,
}

/// Whose progress: a connection's subscription. A re-subscribe bumps the generation, so
/// the old subscription's cursor can never be written over the new one's.
pub type Progress = (String, i32);

impl Shared {
    fn record_progress(&self, connection_id: &str, generation: i32, cursor: i64) {
        if let Ok(mut p) = self.progress.lock() {
            let entry = p
                .entry((connection_id.to_string(), generation))
                .or_insert(cursor);
            *entry = (*entry).max(cursor);
        }
    }

    /// Takes the cursors to write back.
    pub fn take_progress(&self) -> Vec<registry::CursorUpdate> {
        self.progress
            .lock()
            .map(|mut p| {
                p.drain()
                    .map(|((id, generation), cursor)| registry::CursorUpdate {
                        connection_id: id,
                        generation,
                        cursor,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts cursors back after a failed write, keeping any newer ones.
    pub fn restore_progress(&self, cursors: Vec<registry::CursorUpdate>) {
        for c in cursors {
            self.record_progress(&c.connection_id, c.generation, c.cursor);
        }
    }
}

/// How a task starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new subscription: say `{"type":"subscribed","after":N}`, mark the connection live,
    /// then deliver everything after N.
    Announce(i64),
    /// A live connection taken over after a restart: deliver everything after its cursor.
    Resume(i64),
}

/// The fan-out's handle on a delivery task.
pub struct Worker {
    pub generation: i32,
    pub account_id: Uuid,
    pub customer: Option<Uuid>,
    queue: mpsc::Sender<Arc<Outgoing>>,
    lagging: Arc<AtomicBool>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Worker {
    pub fn spawn(
        shared: Arc<Shared>,
        lease: Arc<Lease>,
        connection: &Connection,
        start: Start,
        parent: &CancellationToken,
    ) -> Worker {
        let (queue, rx) = mpsc::channel(shared.queue);
        // Starts lagging: nothing is offered until its first catch-up is done.
        let lagging = Arc::new(AtomicBool::new(true));
        let cancel = parent.child_token();
        let mut task = Task {
            id: connection.id.clone(),
            account: connection.account_id,
            audience: Audience::Caller {
                account_id: connection.account_id,
                customer: connection.customer_scope(),
            },
            generation: connection.generation,
            cursor: match start {
                Start::Announce(c) | Start::Resume(c) => c,
            },
            rx,
            lagging: lagging.clone(),
            cancel: cancel.clone(),
            shared,
            lease,
        };
        let handle = tokio::spawn(async move { task.run(start).await });
        Worker {
            generation: connection.generation,
            account_id: connection.account_id,
            customer: connection.customer_scope(),
            queue,
            lagging,
            cancel,
            task: handle,
        }
    }

    pub fn sees(&self, event: &Outgoing) -> bool {
        events::visible(
            event.account_id,
            event.user_id,
            self.account_id,
            self.customer,
        )
    }

    /// Hands an event to the task without ever waiting: a full queue marks it lagging.
    pub fn offer(&self, event: &Arc<Outgoing>) {
        if self.lagging.load(Ordering::SeqCst) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(event.clone()) {
            self.lagging.store(true, Ordering::SeqCst);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the task and waits for it, so a replacement never overlaps it.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

struct Task {
    id: String,
    account: Uuid,
    audience: Audience,
    generation: i32,
    /// The last event id delivered (or known to be invisible) to this connection.
    cursor: i64,
    rx: mpsc::Receiver<Arc<Outgoing>>,
    lagging: Arc<AtomicBool>,
    cancel: CancellationToken,
    shared: Arc<Shared>,
    /// The leadership this task sends under: every post checks it, every write names its epoch.
    lease: Arc<Lease>,
}

/// Events per message at most; more wait for the next message.
const MAX_EVENTS_PER_MESSAGE: usize = 256;

impl Task {
    async fn run(&mut self, start: Start) {
        match self.deliver_forever(start).await {
            Err(SendError::Gone) => {
                self.shared
                    .metrics
                    .connections_gone
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    connection_id = self.id,
                    "connection gone (410); removing it"
                );
                if let Ok(db) = self.shared.pool.get().await {
                    if let Err(e) = registry::remove_gone(&db, &self.id, self.lease.epoch).await {
                        tracing::warn!(connection_id = self.id, error = %e, "could not remove a gone connection");
                    }
                }
            }
            Err(SendError::Cancelled) | Ok(()) => {}
            Err(SendError::NotLeader) => {
                tracing::debug!(
                    connection_id = self.id,
                    "lease over; this task sends nothing more"
                )
            }
            Err(SendError::TooLarge) => {
                tracing::error!(
                    connection_id = self.id,
                    "a message over the size limit; stopping this connection's delivery"
                );
            }
        }
    }

    async fn deliver_forever(&mut self, start: Start) -> Result<(), SendError> {
        if let Start::Announce(after) = start {
            let hello = ServerMessage::Subscribed { after }.to_json();
            self.shared
                .sender
                .post(
                    self.account,
                    &self.id,
                    hello.into_bytes(),
                    &self.cancel,
                    &self.lease,
                )
                .await?;
            self.activate(after).await?;
        }
        self.rejoin().await?;
        loop {
            let first = tokio::select! {
                _ = self.cancel.cancelled() => return Err(SendError::Cancelled),
                next = self.rx.recv() => match next {
                    Some(event) => event,
                    None => return Ok(()),
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_EVENTS_PER_MESSAGE {
                match self.rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if self.lagging.load(Ordering::SeqCst) {
                // The queue overflowed: what it holds is a prefix; Postgres has the rest.
                self.rejoin().await?;
                continue;
            }
            batch.retain(|e| e.id > self.cursor);
            self.deliver(&batch).await?;
        }
    }

    /// Marks the subscription live at its cursor (retrying while Postgres is unavailable).
    async fn activate(&mut self, after: i64) -> Result<(), SendError> {
        self.with_db_retry(|db| {
            let (id, generation, epoch) = (self.id.clone(), self.generation, self.lease.epoch);
            async move { registry::activate(&db, &id, generation, after, epoch).await }
        })
        .await
        .map(|_| ())
    }

    /// Catches up from Postgres and resumes taking events from the queue.
    async fn rejoin(&mut self) -> Result<(), SendError> {
        while self.rx.try_recv().is_ok() {}
        self.catch_up().await?;
        self.lagging.store(false, Ordering::SeqCst);
        self.catch_up().await
    }

    async fn catch_up(&mut self) -> Result<(), SendError> {
        loop {
            let (cursor, limit, audience) = (self.cursor, self.shared.read_batch, self.audience);
            let events = self
                .with_db_retry(|db| async move {
                    events::read_after(&db, cursor, limit, audience).await
                })
                .await?;
            let n = events.len() as i64;
            let events: Vec<Arc<Outgoing>> =
                events.into_iter().map(|e| Arc::new(e.into())).collect();
            self.deliver(&events).await?;
            if n < limit {
                return Ok(());
            }
        }
    }

    async fn with_db_retry<T, F, Fut>(&self, op: F) -> Result<T, SendError>
    where
        F: Fn(shared::platform::database::Client) -> Fut,
        Fut: std::future::Future<Output = shared::platform::error::Result<T>>,
    {
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                let db = self
                    .shared
                    .pool
                    .get()
                    .await
                    .map_err(shared::platform::error::Error::from)?;
                op(db).await
            };
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => return Err(SendError::Cancelled),
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(connection_id = self.id, error = %e, "database unavailable; retrying")
                }
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(SendError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Sends `events` in id order, several to a message (`{"type":"events","items":[..]}`)
    /// when more than one is waiting, each message under API Gateway's 128 KB. An event
    /// too large on its own goes as an `oversized` marker the client can fetch it by.
    async fn deliver(&mut self, events: &[Arc<Outgoing>]) -> Result<(), SendError> {
        let mut start = 0;
        let mut size = 0;
        for (i, event) in events.iter().enumerate() {
            let len = event.wire.len() + 1;
            if len + protocol::BATCH_OVERHEAD_BYTES > MAX_MESSAGE_BYTES {
                self.send_split(&events[start..i]).await?;
                self.send_oversized(event).await?;
                (start, size) = (i + 1, 0);
                continue;
            }
            if size + len + protocol::BATCH_OVERHEAD_BYTES > MAX_MESSAGE_BYTES {
                self.send_split(&events[start..i]).await?;
                (start, size) = (i, 0);
            }
            size += len;
        }
        self.send_split(&events[start..]).await
    }

    /// Sends `items` as one message; if API Gateway refuses it as too large anyway (its
    /// accounting may differ from ours), as two halves, down to single events, and a
    /// single event as its `oversized` marker. A refusal never stalls the connection.
    async fn send_split(&mut self, items: &[Arc<Outgoing>]) -> Result<(), SendError> {
        let mut pending = vec![items];
        while let Some(part) = pending.pop() {
            match self.send(part).await {
                Err(SendError::TooLarge) => match part {
                    [] => {}
                    [one] => self.send_oversized(one).await?,
                    many => {
                        let (first, second) = many.split_at(many.len() / 2);
                        // Popped last-in first-out: `first` goes first.
                        pending.push(second);
                        pending.push(first);
                    }
                },
                other => other?,
            }
        }
        Ok(())
    }

    async fn send_oversized(&mut self, event: &Arc<Outgoing>) -> Result<(), SendError> {
        tracing::warn!(
            connection_id = self.id,
            event_id = event.id,
            bytes = event.wire.len(),
            "event too large for one message; sending its marker"
        );
        let marker = ServerMessage::Oversized {
            id: event.id,
            event: event.event.clone(),
        }
        .to_json();
        self.shared
            .sender
            .post(
                self.account,
                &self.id,
                marker.into_bytes(),
                &self.cancel,
                &self.lease,
            )
            .await?;
        self.cursor = event.id;
        self.shared
            .record_progress(&self.id, self.generation, event.id);
        Ok(())
    }

    async fn send(&mut self, items: &[Arc<Outgoing>]) -> Result<(), SendError> {
        let Some(last) = items.last().map(|e| e.id) else {
            return Ok(());
        };
        let payload = match items {
            [one] => one.wire.clone(),
            many => protocol::batch_json(many.iter().map(|e| e.wire.as_str())),
        };
        self.shared
            .sender
            .post(
                self.account,
                &self.id,
                payload.into_bytes(),
                &self.cancel,
                &self.lease,
            )
            .await?;
        self.cursor = last;
        self.shared.record_progress(&self.id, self.generation, last);
        self.shared
            .metrics
            .events_delivered
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
