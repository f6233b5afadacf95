//! The connection registry the connector delivers from: one row per WebSocket connection
//! (who it is, its subscription and generation, its durable delivery cursor). The
//! WebSocket functions write it (`$connect`, subscribe, ping, `$disconnect`) and wake the
//! connector on [`CHANNEL`]; the connector reads it, activates subscriptions and flushes
//! cursors (docs/architecture.md, "Durable cursors").

use crate::billing::auth::{Principal, Role};
use crate::platform::error::Result;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// NOTIFY channel for subscribe and disconnect; the payload is the connection id.
pub const CHANNEL: &str = "billwire_connections";

/// A registered connection, as the connector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub state: String,
    pub requested_after: Option<i64>,
    pub cursor: Option<i64>,
    pub generation: i32,
}

impl Connection {
    fn from_row(row: &tokio_postgres::Row) -> Result<Connection> {
        Ok(Connection {
            id: row.try_get("connection_id")?,
            account_id: row.try_get("account_id")?,
            user_id: row.try_get("user_id")?,
            role: Role::from_db(row.try_get("role")?)?,
            state: row.try_get("state")?,
            requested_after: row.try_get("requested_after")?,
            cursor: row.try_get("cursor")?,
            generation: row.try_get("generation")?,
        })
    }

    /// The customer scope of invariant 7: `None` for admins.
    pub fn customer_scope(&self) -> Option<Uuid> {
        (self.role != Role::Admin).then_some(self.user_id)
    }
}

const CONNECTION_COLUMNS: &str =
    "connection_id, account_id, user_id, role, state, requested_after, cursor, generation";

/// Registers a new connection as `who`, pending its subscribe. An id that already has a
/// row (API Gateway reusing one, or a `$disconnect` that never arrived) starts afresh: the
/// new caller's identity, no subscription, no cursor, a new generation; the connector is
/// woken to drop whatever it was delivering under that id.
pub async fn register(db: &impl GenericClient, connection_id: &str, who: &Principal) -> Result<()> {
    db.query_one(
        "WITH up AS (
            INSERT INTO ws_connections (connection_id, account_id, user_id, role)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (connection_id) DO UPDATE
               SET account_id = EXCLUDED.account_id, user_id = EXCLUDED.user_id,
                   role = EXCLUDED.role, state = 'pending', requested_after = NULL,
                   cursor = NULL, generation = ws_connections.generation + 1,
                   connected_at = now(), last_seen_at = now()
            RETURNING (xmax <> 0) AS replaced)
         SELECT replaced, CASE WHEN replaced THEN pg_notify($5, $1) END FROM up",
        &[
            &connection_id,
            &who.account_id,
            &who.user_id,
            &who.role.as_str(),
            &CHANNEL,
        ],
    )
    .await?;
    Ok(())
}

/// Records a subscribe request and wakes the connector. `after` is clamped to the newest
/// event id, and `null` means "from the newest", so the cursor the connector will set is
/// fixed here, whichever connector replica picks it up. Returns false if the connection is
/// unknown.
pub async fn request_subscribe(
    db: &impl GenericClient,
    connection_id: &str,
    after: Option<i64>,
) -> Result<bool> {
    let row = db
        .query_opt(
            "WITH head AS (SELECT coalesce(max(id), 0) AS id FROM events),
                  u AS (UPDATE ws_connections c
                           SET state = 'subscribing',
                               requested_after = least(coalesce($2, head.id), head.id),
                               generation = c.generation + 1,
                               last_seen_at = now()
                          FROM head
                         WHERE c.connection_id = $1
                     RETURNING c.connection_id)
             SELECT pg_notify($3, u.connection_id) FROM u",
            &[&connection_id, &after, &CHANNEL],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn touch(db: &impl GenericClient, connection_id: &str) -> Result<bool> {
    Ok(db
        .execute(
            "UPDATE ws_connections SET last_seen_at = now() WHERE connection_id = $1",
            &[&connection_id],
        )
        .await?
        == 1)
}

/// Forgets a connection and tells the connector (`$disconnect`, or a 410 from the API).
pub async fn remove(db: &impl GenericClient, connection_id: &str) -> Result<bool> {
    let row = db
        .query_opt(
            "WITH d AS (DELETE FROM ws_connections WHERE connection_id = $1 RETURNING connection_id)
             SELECT pg_notify($2, d.connection_id) FROM d",
            &[&connection_id, &CHANNEL],
        )
        .await?;
    Ok(row.is_some())
}

/// Connections nothing has been heard from for `silent_for`: candidates for a liveness probe.
pub async fn silent(
    db: &impl GenericClient,
    silent_for: std::time::Duration,
    limit: i64,
) -> Result<Vec<String>> {
    db.query(
        "SELECT connection_id FROM ws_connections
          WHERE last_seen_at < now() - make_interval(secs => $1)
          ORDER BY last_seen_at LIMIT $2",
        &[&silent_for.as_secs_f64(), &limit],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// Connections that are subscribed or asking to be.
pub async fn load_active(db: &impl GenericClient) -> Result<Vec<Connection>> {
    db.query(
        &format!("SELECT {CONNECTION_COLUMNS} FROM ws_connections WHERE state IN ('subscribing', 'live')"),
        &[],
    )
    .await?
    .iter()
    .map(Connection::from_row)
    .collect()
}

/// The rows of these connections that exist, in one read.
pub async fn load_many(
    db: &impl GenericClient,
    connection_ids: &[String],
) -> Result<Vec<Connection>> {
    db.query(
        &format!("SELECT {CONNECTION_COLUMNS} FROM ws_connections WHERE connection_id = ANY($1)"),
        &[&connection_ids],
    )
    .await?
    .iter()
    .map(Connection::from_row)
    .collect()
}

/// The leadership fence every connector write carries (see `super::lease`): the row lock
/// makes the write and a takeover's epoch bump happen one after the other, so a write
/// either lands before the new epoch or finds it and changes nothing.
const FENCE: &str =
    "lease AS (SELECT 1 FROM connector_state WHERE id = 1 AND epoch = $EPOCH FOR SHARE)";

fn fenced(epoch_param: &str, sql: &str) -> String {
    format!("WITH {} {sql}", FENCE.replace("$EPOCH", epoch_param))
}

/// Marks a subscribing connection live at `cursor`, if it is still the same subscription
/// and `epoch` still leads.
pub async fn activate(
    db: &impl GenericClient,
    connection_id: &str,
    generation: i32,
    cursor: i64,
    epoch: i64,
) -> Result<bool> {
    Ok(db
        .execute(
            &fenced(
                "$4",
                "UPDATE ws_connections SET state = 'live', cursor = $3 FROM lease
                  WHERE connection_id = $1 AND generation = $2 AND state = 'subscribing'",
            ),
            &[&connection_id, &generation, &cursor, &epoch],
        )
        .await?
        == 1)
}

/// Forgets a connection API Gateway says is gone (410), if `epoch` still leads.
pub async fn remove_gone(db: &impl GenericClient, connection_id: &str, epoch: i64) -> Result<bool> {
    let row = db
        .query_opt(
            &fenced(
                "$3",
                ", d AS (DELETE FROM ws_connections WHERE connection_id = $1
                            AND EXISTS (SELECT 1 FROM lease) RETURNING connection_id)
                 SELECT pg_notify($2, d.connection_id) FROM d",
            ),
            &[&connection_id, &CHANNEL, &epoch],
        )
        .await?;
    Ok(row.is_some())
}

/// How far one subscription has been delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorUpdate {
    pub connection_id: String,
    /// The subscription it belongs to: a cursor of an older subscription is never written.
    pub generation: i32,
    pub cursor: i64,
}

/// Persists delivery cursors in one statement. A cursor never moves backwards, and only
/// the subscription that reached it may write it: after a re-subscribe (a new generation,
/// perhaps with a lower `after`), the old subscription's cursor is ignored. Only while
/// `epoch` leads.
pub async fn save_cursors(
    db: &impl GenericClient,
    cursors: &[CursorUpdate],
    epoch: i64,
) -> Result<()> {
    if cursors.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = cursors.iter().map(|c| c.connection_id.as_str()).collect();
    let generations: Vec<i32> = cursors.iter().map(|c| c.generation).collect();
    let values: Vec<i64> = cursors.iter().map(|c| c.cursor).collect();
    db.execute(
        &fenced(
            "$4",
            "UPDATE ws_connections c SET cursor = v.cursor
               FROM unnest($1::text[], $2::int[], $3::bigint[]) AS v(id, generation, cursor), lease
              WHERE c.connection_id = v.id AND c.generation = v.generation AND c.state = 'live'
                AND (c.cursor IS NULL OR c.cursor < v.cursor)",
        ),
        &[&ids, &generations, &values, &epoch],
    )
    .await?;
    Ok(())
}
