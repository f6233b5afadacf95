//! The event outbox: what writes record, and the gap-free reader that the REST log
//! (`GET /api/v1/events`) and the connector both read through.
//!
//! Writing: `Tx::emit` collects events; at commit `append` calls the `record_event` SQL
//! function for each, which takes the outbox lock, draws the id, inserts, and NOTIFYs the id
//! on [`CHANNEL`]. Because the lock is held from the id's allocation to commit, ids become
//! visible in id order, so reading `id > cursor` never skips an id that commits later
//! (docs/architecture.md, "Gap-free ids"; `tests/api/outbox.rs` proves it with a writer held
//! open).

use crate::platform::error::Result;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The NOTIFY channel. Its payload is the new event's id: a wake-up, never the data.
pub const CHANNEL: &str = "billwire_events";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A payment intent was created.
    OrderCreated,
    /// A payment succeeded.
    PaymentReceived,
    /// An invoice was created.
    InvoiceCreated,
    /// A payment or invoice changed status.
    OrderUpdated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order_created",
            EventKind::PaymentReceived => "payment_received",
            EventKind::InvoiceCreated => "invoice_created",
            EventKind::OrderUpdated => "order_updated",
        }
    }
}

/// An event a write causes, before it has an id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: Uuid,
    /// The customer the event concerns; they see it besides the account's admins.
    pub user_id: Option<Uuid>,
    pub kind: EventKind,
    pub data: Value,
    /// Backdated demo data sets this; live writes leave it to the database clock.
    pub created_at: Option<DateTime<Utc>>,
}

impl NewEvent {
    pub fn new(account_id: Uuid, user_id: Option<Uuid>, kind: EventKind, data: Value) -> Self {
        NewEvent {
            account_id,
            user_id,
            kind,
            data,
            created_at: None,
        }
    }
}

/// Appends events inside the caller's transaction, in one statement (see the module docs):
/// the outbox lock is taken by its first `record_event` and held from there to COMMIT, so
/// the statement is the transaction's last but one and the lock spans a single round trip
/// more (docs/architecture.md, "Gap-free ids").
pub async fn append(tx: &impl GenericClient, events: &[NewEvent]) -> Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let accounts: Vec<Uuid> = events.iter().map(|e| e.account_id).collect();
    let users: Vec<Option<Uuid>> = events.iter().map(|e| e.user_id).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let data: Vec<&Value> = events.iter().map(|e| &e.data).collect();
    let dates: Vec<Option<DateTime<Utc>>> = events.iter().map(|e| e.created_at).collect();
    let stmt = tx
        .prepare_cached(
            "SELECT e.n, record_event(e.account_id, e.user_id, e.type, e.data,
                                      coalesce(e.created_at, now()))
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::timestamptz[])
                    WITH ORDINALITY AS e(account_id, user_id, type, data, created_at, n)
              ORDER BY e.n",
        )
        .await?;
    let rows = tx
        .query(&stmt, &[&accounts, &users, &kinds, &data, &dates])
        .await?;
    let mut ids = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<Vec<_>>>()?;
    ids.sort_unstable();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// A recorded event, as clients receive it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: i64,
    #[serde(skip)]
    pub account_id: Uuid,
    #[serde(skip)]
    pub user_id: Option<Uuid>,
    pub event: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl Event {
    fn from_row(row: &tokio_postgres::Row) -> Result<Event> {
        Ok(Event {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            user_id: row.try_get("user_id")?,
            event: row.try_get("type")?,
            data: row.try_get("data")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub fn visible_to(&self, account_id: Uuid, customer: Option<Uuid>) -> bool {
        visible(self.account_id, self.user_id, account_id, customer)
    }
}

/// Scoping (docs/architecture.md, "Scoping"): an event of `event_account` concerning `event_user` is visible to
/// a viewer of `account_id` if the viewer is an admin (`customer` is `None`) or is that user.
/// Nobody sees another account's events.
pub fn visible(
    event_account: Uuid,
    event_user: Option<Uuid>,
    account_id: Uuid,
    customer: Option<Uuid>,
) -> bool {
    event_account == account_id && (customer.is_none() || event_user == customer)
}

/// Whose events to read.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// Every account's (the connector, which filters per connection).
    All,
    /// What one caller may see (see [`visible`]).
    Caller {
        account_id: Uuid,
        customer: Option<Uuid>,
    },
}

/// Events with `id > after`, oldest first, at most `limit`. Gap-free: an id it has not
/// returned yet can never appear below one it has.
pub async fn read_after(
    db: &impl GenericClient,
    after: i64,
    limit: i64,
    audience: Audience,
) -> Result<Vec<Event>> {
    let rows = match audience {
        Audience::All => {
            let stmt = db
                .prepare_cached(
                    "SELECT id, account_id, user_id, type, data, created_at
                       FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .await?;
            db.query(&stmt, &[&after, &limit]).await?
        }
        Audience::Caller {
            account_id,
            customer: None,
        } => {
            let stmt = db
                .prepare_cached(
                    "SELECT id, account_id, user_id, type, data, created_at
                       FROM events WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .await?;
            db.query(&stmt, &[&account_id, &after, &limit]).await?
        }
        Audience::Caller {
            account_id,
            customer: Some(user_id),
        } => {
            let stmt = db
                .prepare_cached(
                    "SELECT id, account_id, user_id, type, data, created_at
                       FROM events WHERE user_id = $1 AND account_id = $2 AND id > $3
                      ORDER BY id LIMIT $4",
                )
                .await?;
            db.query(&stmt, &[&user_id, &account_id, &after, &limit])
                .await?
        }
    };
    rows.iter().map(Event::from_row).collect()
}

/// The newest event id (0 when there are none): where a subscriber with no history starts.
pub async fn last_id(db: &impl GenericClient) -> Result<i64> {
    let row = db
        .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
        .await?;
    Ok(row.try_get(0)?)
}
