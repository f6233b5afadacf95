//! What the connector's leader purges periodically: rows nobody can use any more, owned by
//! the wings below (tickets, idempotency keys, refresh tokens).

use crate::billing::auth;
use crate::platform::error::Result;
use crate::store::idempotency;
use deadpool_postgres::GenericClient;

/// Drops expired tickets, idempotency keys and refresh tokens, a batch of each at a time.
/// Returns how many rows went.
pub async fn purge_expired(db: &impl GenericClient) -> Result<u64> {
    Ok(super::tickets::purge_expired(db).await?
        + idempotency::purge_expired(db).await?
        + auth::purge_expired_refresh_tokens(db).await?)
}
