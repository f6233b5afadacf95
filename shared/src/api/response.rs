//! Writing a response: JSON bodies, the error mapping (the one place a `Kind` becomes an
//! HTTP status), and committing a write together with the response its Idempotency-Key
//! remembers. Turning an error into a response has no side effect; `lambda::dispatch` logs.

use crate::platform::error::{Error, Kind, Result};
use crate::store::idempotency::StoredResponse;
use crate::store::Tx;
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

pub type ApiResponse = Response<Body>;

/// The header a replayed response carries.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The HTTP status of an error kind.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"error":{"code","message"}}` with the error's status.
pub fn error(e: &Error) -> ApiResponse {
    raw_json(status(e.kind()), e.body().to_string())
}

pub fn raw_json(status: StatusCode, body: String) -> ApiResponse {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<ApiResponse> {
    let text = serde_json::to_string(body).map_err(Error::internal)?;
    Ok(raw_json(status, text))
}

/// Commits `tx`, storing the response first under the request's Idempotency-Key (if it
/// claimed one) so that a retry replays it, and returns it.
pub async fn commit<T: Serialize>(tx: Tx<'_>, status: StatusCode, body: &T) -> Result<ApiResponse> {
    let stored = StoredResponse {
        status: status.as_u16(),
        body: serde_json::to_string(body).map_err(Error::internal)?,
    };
    tx.commit_with_response(&stored).await?;
    Ok(raw_json(status, stored.body))
}

/// A stored response, replayed.
pub fn replay(stored: StoredResponse) -> Result<ApiResponse> {
    let status = StatusCode::from_u16(stored.status).map_err(Error::internal)?;
    let mut response = raw_json(status, stored.body);
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}
