//! Tickets: how a WebSocket client proves who it is without putting its access token in a
//! URL. `POST /api/v1/events/ticket` issues one (single-use, valid 60 s; only its hash is
//! stored); `$connect` spends it.

use crate::billing::auth::{self, Principal, Role};
use crate::platform::error::Result;
use deadpool_postgres::GenericClient;
use serde::Serialize;
use utoipa::ToSchema;

pub const TICKET_TTL_SECONDS: i64 = 60;

#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    pub ticket: String,
    pub expires_in: i64,
    /// Where to connect, when the deployment knows (`WEBSOCKET_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Issues a single-use ticket for `who`; only its hash is stored.
pub async fn issue_ticket(db: &impl GenericClient, who: &Principal) -> Result<String> {
    let ticket = auth::new_secret();
    db.execute(
        "INSERT INTO ws_tickets (ticket_hash, account_id, user_id, role, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        &[
            &auth::secret_hash(&ticket),
            &who.account_id,
            &who.user_id,
            &who.role.as_str(),
            &(TICKET_TTL_SECONDS as f64),
        ],
    )
    .await?;
    // Old tickets are useless; keep the table small.
    db.execute(
        "DELETE FROM ws_tickets WHERE expires_at < now() - interval '1 hour'",
        &[],
    )
    .await?;
    Ok(ticket)
}

/// Spends a ticket: valid, unexpired and unused, or `None`. Atomic, so a ticket opens at
/// most one connection even when raced.
pub async fn redeem_ticket(db: &impl GenericClient, ticket: &str) -> Result<Option<Principal>> {
    let row = db
        .query_opt(
            "UPDATE ws_tickets SET used_at = now()
              WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > now()
              RETURNING account_id, user_id, role",
            &[&auth::secret_hash(ticket)],
        )
        .await?;
    row.map(|r| {
        Ok(Principal {
            account_id: r.try_get("account_id")?,
            user_id: r.try_get("user_id")?,
            role: Role::from_db(r.try_get("role")?)?,
        })
    })
    .transpose()
}

/// Housekeeping: tickets nobody can use any more, a batch at a time.
pub async fn purge_expired(db: &impl GenericClient) -> Result<u64> {
    crate::platform::database::delete_batch(
        db,
        "ws_tickets",
        "expires_at < now() - interval '1 hour'",
    )
    .await
}
