//! The `Idempotency-Key` header on POSTs (Stripe's semantics; storage and the rules are in
//! `store::idempotency`): the key is scoped to the caller, and the request's method, path
//! and exact body are what make two requests "the same".

use super::response::{self, ApiResponse};
use crate::billing::auth::Principal;
use crate::platform::error::Result;
use crate::store::idempotency::{Decision, Key};
use crate::store::Tx;
use lambda_http::Request;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// Claims the request's key inside `tx`, or returns the stored response to replay (then
/// the handler writes nothing). Requests without the header run normally.
pub async fn begin(
    tx: &mut Tx<'_>,
    req: &Request,
    who: Option<&Principal>,
) -> Result<Option<ApiResponse>> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let scope = who.map_or_else(
        || "anonymous".to_string(),
        |p| format!("user:{}", p.user_id),
    );
    let key = Key::new(scope, value.to_str().unwrap_or(""), fingerprint(req))?;
    match tx.claim(key).await? {
        Decision::Proceed => Ok(None),
        Decision::Replay(stored) => response::replay(stored).map(Some),
    }
}

/// What makes two requests "the same": method, path and exact body.
fn fingerprint(req: &Request) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(req.uri().path());
    h.update(b"\n");
    h.update(super::request::body_bytes(req));
    h.finalize().to_vec()
}
