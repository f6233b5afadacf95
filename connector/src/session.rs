//! The control session: one dedicated Postgres connection (never pooled: LISTEN and session
//! advisory locks need a direct session) that holds the leadership lock and receives
//! NOTIFY wake-ups. When it dies, leadership dies with it.

use futures::StreamExt;
use shared::platform::database::Connect;
use shared::realtime::lease;
use shared::realtime::registry as connections;
use shared::store::outbox as events;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// Held by the leader for the life of its session; released by Postgres when the session ends.
pub const LEADER_LOCK: i64 = 7_394_461_024_938_240_010;

/// What the control session has heard since the leader last looked, coalesced: however
/// many NOTIFYs arrive, it is one flag for events and a set of connection ids, never a
/// queue that grows with the write rate.
#[derive(Default)]
pub struct Wakes {
    events: AtomicBool,
    connections: Mutex<HashSet<String>>,
    notify: Notify,
    /// Fired when the session ends.
    closed: CancellationToken,
}

impl Wakes {
    fn events(&self) {
        self.events.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn connection(&self, id: String) {
        if let Ok(mut c) = self.connections.lock() {
            c.insert(id);
        }
        self.notify.notify_one();
    }

    /// Waits for a wake-up; `false` once the session has ended.
    pub async fn wait(&self) -> bool {
        tokio::select! {
            _ = self.notify.notified() => true,
            _ = self.closed.cancelled() => false,
        }
    }

    /// Takes what has been heard: whether events were committed (the payload is an id; the
    /// table is the truth), and which connections subscribed or went away.
    pub fn take(&self) -> (bool, HashSet<String>) {
        let events = self.events.swap(false, Ordering::SeqCst);
        let connections = self
            .connections
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        (events, connections)
    }
}

/// Server-side TCP settings for a replica's sessions: probe after 5 s idle, every 2 s, give
/// up after 3 unanswered; and drop the connection when sent data stays unacknowledged 15 s.
/// A leader whose host dies or is cut off without a FIN would otherwise keep its backends,
/// and so the leadership lock, until Postgres's default keepalive (two hours) notices; with
/// these they end within about 20 s. (A paused process still answers keepalives from its
/// kernel: the lease covers that, see `shared::realtime::lease`.)
pub const SERVER_KEEPALIVES: &str = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 \
     -c tcp_keepalives_count=3 -c tcp_user_timeout=15000";

/// Sets what every session of a replica carries, its control session and its pools alike:
/// the replica's application name (see [`application_name`]), by which a successor finds
/// them all, and [`SERVER_KEEPALIVES`] (added to any options the URL gave), so that the
/// server ends a cut-off leader's sessions.
pub fn configure(connect: &mut Connect, application_name: &str) {
    let options = match connect.config.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {SERVER_KEEPALIVES}"),
        _ => SERVER_KEEPALIVES.to_string(),
    };
    connect
        .config
        .application_name(application_name)
        .options(&options);
}

pub struct Session {
    /// Shared with the task that renews the lease on it (`crate::lease::renew`).
    pub client: Arc<tokio_postgres::Client>,
    pub wakes: Arc<Wakes>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("postgres: {}", crate::fatal::describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("the control session was lost")]
    Lost,
    /// Leadership ended without the session failing: the lease ran out or another replica
    /// took it over.
    #[error("deposed: {0}")]
    Deposed(String),
}

/// How long a standby waits for a stale leader's session to exit once it has ended it.
const END_WAIT: Duration = Duration::from_secs(5);

impl Session {
    /// Connects as `connect` says (set up by [`configure`]).
    pub async fn connect(connect: &Connect) -> Result<Session, SessionError> {
        let mut config = connect.config.clone();
        config
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let (client, mut connection) = config.connect(connect.tls.clone()).await?;
        let wakes = Arc::new(Wakes::default());
        // Notifications reach only code that polls the connection for messages; a plain
        // spawned connection future would drop them.
        tokio::spawn({
            let wakes = wakes.clone();
            async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(n)) => {
                            if n.channel() == connections::CHANNEL {
                                wakes.connection(n.payload().to_string());
                            } else {
                                wakes.events();
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "control session ended");
                            break;
                        }
                    }
                }
                wakes.closed.cancel();
            }
        });
        client
            .batch_execute(&format!(
                "LISTEN {}; LISTEN {}",
                events::CHANNEL,
                connections::CHANNEL
            ))
            .await?;
        Ok(Session {
            client: Arc::new(client),
            wakes,
        })
    }

    /// Waits until this session holds the leadership lock. `Ok(false)`: shut down first.
    /// While another replica holds it, checks its lease every `retry`: once the lease has
    /// ended on the database's clock (the holder is paused, cut off, or hung), ends the
    /// holder's sessions, which frees the lock.
    pub async fn acquire_leadership(
        &mut self,
        retry: Duration,
        shutdown: &CancellationToken,
        health: &crate::health::Health,
    ) -> Result<bool, SessionError> {
        loop {
            let row = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                .await?;
            health.beat(false);
            if row.try_get::<_, bool>(0)? {
                return Ok(true);
            }
            match lease::end_expired_holder(&self.client, LEADER_LOCK, END_WAIT).await {
                Ok(0) => {}
                Ok(ended) => {
                    tracing::warn!(
                        sessions = ended,
                        "the leader's lease ran out without a renewal; ended its sessions to take over"
                    );
                    continue;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not end a stale leader's sessions (the role needs to be the leader's, or a member of pg_signal_backend)"
                ),
            }
            let deadline = tokio::time::sleep(retry);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(false),
                    _ = &mut deadline => break,
                    // A standby ignores wake-ups, but must notice its session dying.
                    alive = self.wakes.wait() => {
                        if !alive {
                            return Err(SessionError::Lost);
                        }
                        drop(self.wakes.take());
                    }
                }
            }
        }
    }
}

/// The application name all of a replica's sessions carry: `billwire-connector <id>
/// <instance>`. A successor finds a deposed leader's sessions by it; the instance part
/// keeps two processes apart even when they were given the same id.
pub fn application_name(id: &str) -> String {
    let instance = uuid::Uuid::new_v4().simple().to_string();
    // Postgres keeps 63 bytes of it.
    let id: String = id.chars().filter(|c| !c.is_whitespace()).take(32).collect();
    format!("billwire-connector {id} {}", &instance[..8])
}
