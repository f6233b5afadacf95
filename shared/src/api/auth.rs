//! `POST /api/v1/auth/login`, `/auth/refresh`, `/auth/logout` and `GET /api/v1/auth/me`.

use super::openapi_parts;
use super::request::{authenticate, json_body};
use super::response::{json, ApiResponse};
use super::App;
use crate::billing::auth::{self, Credentials, Me, TokenResponse};
use crate::billing::values::{Email, Password};
use crate::platform::error::{Error, Result};
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    email: String,
    password: String,
    /// The account's slug; needed only when the email is a user of several accounts.
    #[serde(default)]
    account: Option<String>,
}

/// `POST /api/v1/auth/login`. Not idempotency-keyed on purpose: it changes nothing, so
/// a retry is already safe, and storing its response would persist a bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "auth-login",
    tag = "auth",
    request_body = LoginInput,
    responses(
        (status = 200, description = "An access token and a refresh token", body = TokenResponse),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn login(app: App, req: Request) -> Result<ApiResponse> {
    let input: LoginInput = json_body(&req)?;
    if input.password.is_empty() || input.password.chars().count() > Password::MAX {
        return Err(Error::unauthorized("email or password is wrong"));
    }
    let creds = Credentials {
        email: Email::parse("email", &input.email)?,
        password: input.password,
        account: input.account.map(|a| a.trim().to_string()),
    };
    let db = app.db().await?;
    let token = auth::login(&app.tokens, &db, &creds).await?;
    json(StatusCode::OK, &token)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshInput {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh` `{"refresh_token"}`: a new access token and a new
/// refresh token; the presented one is spent.
///
/// Presenting a spent refresh token again is 401 and revokes every token of that login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "auth-refresh",
    tag = "auth",
    request_body = RefreshInput,
    responses(
        (status = 200, description = "A new access token and refresh token", body = TokenResponse),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn refresh(app: App, req: Request) -> Result<ApiResponse> {
    let input: RefreshInput = json_body(&req)?;
    let token = refresh_token_input(&input)?;
    let mut db = app.db().await?;
    let pair = auth::refresh(&app.tokens, &mut db, token).await?;
    json(StatusCode::OK, &pair)
}

/// `POST /api/v1/auth/logout` `{"refresh_token"}`: ends that login: its refresh tokens
/// stop working at once (access tokens already issued run out within their 15 min).
/// Answers `{"logged_out":true}` whether or not the token was known: it reveals nothing.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "auth-logout",
    tag = "auth",
    request_body = RefreshInput,
    responses(
        (status = 200, description = "That login's refresh tokens no longer work", body = LoggedOut),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn logout(app: App, req: Request) -> Result<ApiResponse> {
    let input: RefreshInput = json_body(&req)?;
    let token = refresh_token_input(&input)?;
    let db = app.db().await?;
    auth::logout(&db, token).await?;
    json(StatusCode::OK, &LoggedOut { logged_out: true })
}

/// What `POST /api/v1/auth/logout` answers.
#[derive(Serialize, ToSchema)]
pub struct LoggedOut {
    /// Always true.
    pub logged_out: bool,
}

fn refresh_token_input(input: &RefreshInput) -> Result<&str> {
    let token = input.refresh_token.trim();
    if token.is_empty() || token.len() > 1024 {
        return Err(Error::validation(
            "refresh_token must be the refresh token login returned",
        ));
    }
    Ok(token)
}

/// `GET /api/v1/auth/me`: the caller and their account.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    operation_id = "auth-me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller and their account", body = Me),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn me(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let db = app.db().await?;
    json(StatusCode::OK, &auth::me(&db, &who).await?)
}
