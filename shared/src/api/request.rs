//! Reading a request: the body as JSON, path ids, query parameters, and the caller behind
//! the bearer token. Everything a caller can get wrong ends here as an `Error` of a 4xx kind
//! with a message that says what to fix.

use super::App;
use crate::billing::auth::Principal;
use crate::billing::pagination::Cursor;
use crate::platform::error::{Error, Kind, Result};
use http::header;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// Request bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses the body as a JSON object into `T` (which should `deny_unknown_fields`).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T> {
    let bytes = body_bytes(req);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            "missing_body",
            "the request body must be a JSON object",
        ));
    }
    parse_json(req, bytes)
}

/// Like [`json_body`], but an empty body means `T::default()`.
pub fn optional_json_body<T: DeserializeOwned + Default>(req: &Request) -> Result<T> {
    let bytes = body_bytes(req);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(req, bytes)
}

fn parse_json<T: DeserializeOwned>(req: &Request, bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::new(
            Kind::TooLarge,
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
            return Err(Error::new(
                Kind::UnsupportedMediaType,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(Error::bad_request(
            "invalid_request",
            "the request body must be a JSON object",
        ));
    }
    T::deserialize(value).map_err(|e| Error::bad_request("invalid_request", e.to_string()))
}

/// A path parameter that must be a UUID; anything else cannot name a `what`, so it is 404.
pub fn path_id(req: &Request, what: &str) -> Result<Uuid> {
    req.path_parameters_ref()
        .and_then(|p| p.first("id"))
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| Error::not_found(what))
}

/// Query-string parameters, checked against the names an endpoint accepts.
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    pub fn new(req: &Request, allowed: &[&str]) -> Result<Query> {
        let mut params = Vec::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (name, _) in map.iter() {
                if !allowed.contains(&name) {
                    return Err(Error::bad_request(
                        "invalid_request",
                        format!(
                            "unknown query parameter {name:?}; allowed: {}",
                            allowed.join(", ")
                        ),
                    ));
                }
                let values = map.all(name).unwrap_or_default();
                if values.len() > 1 {
                    return Err(Error::bad_request(
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
    ) -> Result<i64> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.parse::<i64>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(Error::bad_request(
                "invalid_request",
                format!(
                    "{name} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>> {
        self.get(name)
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|_| {
                    Error::bad_request("invalid_request", format!("{name} must be an id"))
                })
            })
            .transpose()
    }

    /// A value that must be one of `choices`.
    pub fn one_of(&self, name: &str, choices: &[&str]) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if choices.contains(&v) => Ok(Some(v.to_string())),
            Some(_) => Err(Error::bad_request(
                "invalid_request",
                format!("{name} must be one of: {}", choices.join(", ")),
            )),
        }
    }
}

/// The `limit` and `starting_after` parameters of a list endpoint.
pub fn cursor(query: &Query) -> Result<Cursor> {
    Ok(Cursor {
        limit: query.int("limit", 20, 1..=100)?,
        starting_after: query.uuid("starting_after")?,
    })
}

/// The caller behind `Authorization: Bearer <token>`, or 401.
pub fn authenticate(app: &App, req: &Request) -> Result<Principal> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::unauthorized("missing Authorization: Bearer <access token>"))?;
    let value = header
        .to_str()
        .map_err(|_| Error::unauthorized("malformed Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::unauthorized("Authorization must be \"Bearer <access token>\""))?;
    app.tokens.verify(token)
}
