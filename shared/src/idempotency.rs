//! `Idempotency-Key` on POSTs, with Stripe's semantics.
//!
//! The key is claimed by inserting its row at the start of the write's transaction and the
//! response is stored in that same transaction, so "written" and "remembered" are one fact.
//! A retry with the same key and body replays the stored response and writes nothing; the
//! same key with a different body is refused with 422. Two concurrent requests with one key
//! serialise on the row's unique index: the second waits for the first to commit and then
//! replays its response (or, if the first rolled back, runs itself). Keys are scoped to the
//! caller and expire after 24 hours. A request that fails is not remembered: it changed
//! nothing, so a retry runs afresh.

use crate::auth::Principal;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, ApiResponse, StatusCode};
use ::http::HeaderValue;
use lambda_http::Request;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

#[derive(Debug)]
pub struct Claim {
    scope: String,
    key: String,
}

/// Claims the request's key inside `tx`, or returns the response to replay. Requests
/// without the header run normally.
pub async fn begin(
    tx: &mut Tx<'_>,
    req: &Request,
    who: Option<&Principal>,
) -> ApiResult<Option<ApiResponse>> {
    let Some(key) = key(req)? else {
        return Ok(None);
    };
    let scope = who.map_or_else(
        || "anonymous".to_string(),
        |p| format!("user:{}", p.user_id),
    );
    let hash = fingerprint(req);
    tx.execute(
        "DELETE FROM idempotency_keys
          WHERE scope = $1 AND key = $2 AND created_at < now() - interval '24 hours'",
        &[&scope, &key],
    )
    .await?;
    let claimed = tx
        .query_opt(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, response_body)
             VALUES ($1, $2, $3, 0, '')
             ON CONFLICT (scope, key) DO NOTHING
             RETURNING 1",
            &[&scope, &key, &hash],
        )
        .await?;
    if claimed.is_some() {
        tx.claim_idempotency(Claim { scope, key });
        return Ok(None);
    }
    let row = tx
        .query_one(
            "SELECT request_hash, status, response_body FROM idempotency_keys
              WHERE scope = $1 AND key = $2",
            &[&scope, &key],
        )
        .await?;
    let stored_hash: Vec<u8> = row.try_get("request_hash")?;
    if stored_hash != hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request; use a new key",
        ));
    }
    let status: i16 = row.try_get("status")?;
    let status = StatusCode::from_u16(status as u16).map_err(ApiError::internal)?;
    let mut response = http::raw_json(status, row.try_get("response_body")?);
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(Some(response))
}

/// Stores the response under the claimed key; called by `Tx::respond` just before commit.
pub(crate) async fn store(
    tx: &deadpool_postgres::Transaction<'_>,
    claim: &Claim,
    status: StatusCode,
    body: &str,
) -> ApiResult<()> {
    tx.execute(
        "UPDATE idempotency_keys SET status = $3, response_body = $4 WHERE scope = $1 AND key = $2",
        &[&claim.scope, &claim.key, &(status.as_u16() as i16), &body],
    )
    .await?;
    Ok(())
}

fn key(req: &Request) -> ApiResult<Option<String>> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// What makes two requests "the same": method, path and exact body.
fn fingerprint(req: &Request) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().path());
    h.update(b"\n");
    h.update(http::body_bytes(req));
    h.finalize().to_vec()
}
