//! `Idempotency-Key` storage, with Stripe's semantics.
//!
//! The key is claimed by inserting its row at the start of the write's transaction and the
//! response is stored in that same transaction, so "written" and "remembered" are one fact.
//! A retry with the same key and request replays the stored response and writes nothing;
//! the same key with a different request is refused. Two concurrent requests with one key
//! serialise on the row's unique index: the second waits for the first to commit and then
//! replays its response (or, if the first rolled back, runs itself). Keys are scoped to the
//! caller and expire after 24 hours. A request that fails is not remembered: it changed
//! nothing, so a retry runs afresh. Reading the header and fingerprinting the request is
//! the edge's job (`api::idempotency`).

use crate::platform::error::{Error, Kind, Result};
use deadpool_postgres::GenericClient;

pub const MAX_KEY_LEN: usize = 255;

/// A validated key, scoped to its caller, with the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Key {
    scope: String,
    key: String,
    request_hash: Vec<u8>,
}

impl Key {
    /// `scope` names the caller (`user:<id>`, or `anonymous`); `request_hash` is what makes
    /// two requests "the same".
    pub fn new(scope: String, key: &str, request_hash: Vec<u8>) -> Result<Key> {
        let key = key.trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::bad_request(
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(Key {
            scope,
            key: key.to_string(),
            request_hash,
        })
    }
}

/// A claimed key, held by the transaction until its response is stored.
#[derive(Debug)]
pub struct Claim {
    scope: String,
    key: String,
}

/// A response as remembered: status code and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Decision {
    /// First time: run it (the key is now claimed in this transaction).
    Proceed,
    /// Seen before with the same request: answer this and write nothing.
    Replay(StoredResponse),
}

/// Claims `key` in the transaction `tx`; see the module docs.
pub(super) async fn try_claim(
    tx: &impl GenericClient,
    key: Key,
) -> Result<(Decision, Option<Claim>)> {
    tx.execute(
        "DELETE FROM idempotency_keys
          WHERE scope = $1 AND key = $2 AND created_at < now() - interval '24 hours'",
        &[&key.scope, &key.key],
    )
    .await?;
    let claimed = tx
        .query_opt(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, response_body)
             VALUES ($1, $2, $3, 0, '')
             ON CONFLICT (scope, key) DO NOTHING
             RETURNING 1",
            &[&key.scope, &key.key, &key.request_hash],
        )
        .await?;
    if claimed.is_some() {
        let claim = Claim {
            scope: key.scope,
            key: key.key,
        };
        return Ok((Decision::Proceed, Some(claim)));
    }
    let row = tx
        .query_one(
            "SELECT request_hash, status, response_body FROM idempotency_keys
              WHERE scope = $1 AND key = $2",
            &[&key.scope, &key.key],
        )
        .await?;
    let stored_hash: Vec<u8> = row.try_get("request_hash")?;
    if stored_hash != key.request_hash {
        return Err(Error::new(
            Kind::Invalid,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request; use a new key",
        ));
    }
    let status: i16 = row.try_get("status")?;
    let stored = StoredResponse {
        status: u16::try_from(status).map_err(Error::internal)?,
        body: row.try_get("response_body")?,
    };
    Ok((Decision::Replay(stored), None))
}

/// Stores the response under the claimed key; `Tx::commit_with_response` calls it just
/// before commit.
pub(super) async fn store(
    tx: &impl GenericClient,
    claim: &Claim,
    response: &StoredResponse,
) -> Result<()> {
    let status = i16::try_from(response.status).map_err(Error::internal)?;
    tx.execute(
        "UPDATE idempotency_keys SET status = $3, response_body = $4 WHERE scope = $1 AND key = $2",
        &[&claim.scope, &claim.key, &status, &response.body],
    )
    .await?;
    Ok(())
}

/// Housekeeping: expired keys, a batch at a time. Returns how many went.
pub async fn purge_expired(db: &impl GenericClient) -> Result<u64> {
    crate::platform::database::delete_batch(
        db,
        "idempotency_keys",
        "created_at < now() - interval '24 hours'",
    )
    .await
}
