//! The control session: one dedicated Postgres connection (never pooled: LISTEN and session
//! advisory locks need a direct session) that holds the leadership lock and receives
//! NOTIFY wake-ups. When it dies, leadership dies with it.

use futures::StreamExt;
use shared::platform::database::Connect;
use shared::realtime::registry as connections;
use shared::store::outbox as events;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// Held by the leader for the life of its session; released by Postgres when the session ends.
pub const LEADER_LOCK: i64 = 7_394_461_024_938_240_010;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// New events were committed (the payload is an id; the table is the truth).
    Events,
    /// A connection subscribed or went away.
    Connection(String),
}

/// Server-side TCP settings for the control session: probe after 5 s idle, every 2 s, give
/// up after 3 unanswered; and drop the connection when sent data stays unacknowledged 15 s.
pub const SERVER_KEEPALIVES: &str = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 \
     -c tcp_keepalives_count=3 -c tcp_user_timeout=15000";

pub struct Session {
    pub client: tokio_postgres::Client,
    pub wakes: mpsc::UnboundedReceiver<Wake>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("postgres: {}", crate::fatal::describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("the control session was lost")]
    Lost,
}

impl Session {
    /// Connects as `billwire-connector <id>` (the name shows who holds the lock in
    /// `pg_stat_activity`).
    pub async fn connect(connect: &Connect, id: &str) -> Result<Session, SessionError> {
        let mut config = connect.config.clone();
        config
            .application_name(format!("billwire-connector {id}"))
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            // The server's side too: a leader whose host dies or is cut off without a FIN
            // would otherwise keep its backend, and so the leadership lock, until Postgres's
            // default keepalive (two hours) notices. With these it is ended within about
            // 20 s and a standby takes over. (A paused process still answers keepalives from
            // its kernel; that needs a lease, see docs/architecture.md, "Known gaps".)
            .options(SERVER_KEEPALIVES);
        let (client, mut connection) = config.connect(connect.tls.clone()).await?;
        let (tx, wakes) = mpsc::unbounded_channel();
        // Notifications reach only code that polls the connection for messages; a plain
        // spawned connection future would drop them.
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let wake = if n.channel() == connections::CHANNEL {
                            Wake::Connection(n.payload().to_string())
                        } else {
                            Wake::Events
                        };
                        if tx.send(wake).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "control session ended");
                        break;
                    }
                }
            }
            // Dropping `tx` tells the owner the session is gone.
        });
        client
            .batch_execute(&format!(
                "LISTEN {}; LISTEN {}",
                events::CHANNEL,
                connections::CHANNEL
            ))
            .await?;
        Ok(Session { client, wakes })
    }

    /// Waits until this session holds the leadership lock. `Ok(false)`: shut down first.
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
            let deadline = tokio::time::sleep(retry);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(false),
                    _ = &mut deadline => break,
                    // A standby ignores wake-ups, but must notice its session dying.
                    wake = self.wakes.recv() => if wake.is_none() { return Err(SessionError::Lost) },
                }
            }
        }
    }

    /// A round trip that proves the session (and so the lock) is still there.
    pub async fn check(&self, timeout: Duration) -> Result<(), SessionError> {
        match tokio::time::timeout(timeout, self.client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(SessionError::Lost),
        }
    }
}
