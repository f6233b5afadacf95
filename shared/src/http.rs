//! Request parsing and JSON responses, shared by every endpoint. Everything a caller can get
//! wrong ends here as a 4xx `ApiError` with a message that says what to fix.

use crate::error::{ApiError, ApiResult};
use http::HeaderValue;
pub use http::{header, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub type ApiResponse = Response<Body>;

/// Request bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> ApiResult<ApiResponse> {
    let text = serde_json::to_string(body).map_err(ApiError::internal)?;
    Ok(raw_json(status, text))
}

impl ApiError {
    pub fn into_response(self) -> ApiResponse {
        raw_json(self.status, self.body().to_string())
    }
}

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses the body as a JSON object into `T` (which should `deny_unknown_fields`).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> ApiResult<T> {
    let bytes = body_bytes(req);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "missing_body",
            "the request body must be a JSON object",
        ));
    }
    parse_json(req, bytes)
}

/// Like [`json_body`], but an empty body means `T::default()`.
pub fn optional_json_body<T: DeserializeOwned + Default>(req: &Request) -> ApiResult<T> {
    let bytes = body_bytes(req);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(req, bytes)
}

fn parse_json<T: DeserializeOwned>(req: &Request, bytes: &[u8]) -> ApiResult<T> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the request body must be a JSON object",
        ));
    }
    T::deserialize(value).map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))
}

/// A path parameter that must be a UUID; anything else cannot name a `what`, so it is 404.
pub fn path_id(req: &Request, what: &str) -> ApiResult<Uuid> {
    req.path_parameters_ref()
        .and_then(|p| p.first("id"))
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| ApiError::not_found(what))
}

/// Query-string parameters, checked against the names an endpoint accepts.
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    pub fn new(req: &Request, allowed: &[&str]) -> ApiResult<Query> {
        let mut params = Vec::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (name, _) in map.iter() {
                if !allowed.contains(&name) {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        format!(
                            "unknown query parameter {name:?}; allowed: {}",
                            allowed.join(", ")
                        ),
                    ));
                }
                let values = map.all(name).unwrap_or_default();
                if values.len() > 1 {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        format!("query parameter {name:?} is given more than once"),
                    ));
                }
                if let Some(v) = values.first() {
                    params.push((name.to_string(), v.to_string()));
                }
            }
        }
        Ok(Query { params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn int(
        &self,
        name: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> ApiResult<i64> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.parse::<i64>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "{name} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    pub fn uuid(&self, name: &str) -> ApiResult<Option<Uuid>> {
        self.get(name)
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|_| {
                    ApiError::bad_request("invalid_request", format!("{name} must be an id"))
                })
            })
            .transpose()
    }

    /// A value that must be one of `choices`.
    pub fn one_of(&self, name: &str, choices: &[&str]) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if choices.contains(&v) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::bad_request(
                "invalid_request",
                format!("{name} must be one of: {}", choices.join(", ")),
            )),
        }
    }
}

/// A page of a list, newest first, Stripe-style: pass the last item's id as
/// `starting_after` to get the next page.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Self {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Page {
            data: rows,
            has_more,
        }
    }
}

/// The `limit` and `starting_after` parameters of a list endpoint.
pub struct Cursor {
    pub limit: i64,
    pub starting_after: Option<Uuid>,
}

impl Cursor {
    pub fn from_query(query: &Query) -> ApiResult<Cursor> {
        Ok(Cursor {
            limit: query.int("limit", 20, 1..=100)?,
            starting_after: query.uuid("starting_after")?,
        })
    }
}
