//! `POST /api/v1/accounts` (a merchant signs up) and `POST /api/v1/auth/register` (a
//! customer signs up to an account).

use super::idempotency;
use super::openapi_parts;
use super::request::json_body;
use super::response::{commit, ApiResponse};
use super::App;
use crate::billing::accounts::{self, register_customer, Account, NewAccount, NewUser};
use crate::billing::auth::User;
use crate::billing::values::{text, Currency, Email, Password, Slug};
use crate::platform::error::Result;
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAccountInput {
    name: String,
    admin_email: String,
    admin_password: String,
    #[serde(default)]
    admin_name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    currency: Option<String>,
}

/// What `POST /api/v1/accounts` answers: the account and its first admin.
#[derive(Serialize, ToSchema)]
pub struct AccountCreated {
    pub account: Account,
    pub admin: User,
}

/// `POST /api/v1/accounts`: a new merchant account and its admin.
///
/// `slug` defaults to one made from `name`, `currency` to USD, `admin_name` to "Admin".
#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    operation_id = "accounts-create",
    tag = "accounts",
    request_body = CreateAccountInput,
    params(openapi_parts::IdempotencyKey),
    responses(
        (status = 201, description = "The account and its admin", body = AccountCreated),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 409, response = openapi_parts::Conflict),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn create(app: App, req: Request) -> Result<ApiResponse> {
    let input: CreateAccountInput = json_body(&req)?;
    let name = text("name", &input.name, 1, 200)?;
    let new = NewAccount {
        id: Uuid::now_v7(),
        slug: match &input.slug {
            Some(s) => Slug::parse("slug", s)?,
            None => Slug::from_name(&name)?,
        },
        currency: Currency::parse("currency", input.currency.as_deref().unwrap_or("USD"))?,
        admin: NewUser::new(
            Email::parse("admin_email", &input.admin_email)?,
            text(
                "admin_name",
                input.admin_name.as_deref().unwrap_or("Admin"),
                1,
                200,
            )?,
            &Password::parse("admin_password", &input.admin_password)?,
        )
        .await?,
        name,
    };
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, None).await? {
        return Ok(replay);
    }
    let (account, admin) = accounts::create(&mut tx, new).await?;
    commit(tx, StatusCode::CREATED, &AccountCreated { account, admin }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterInput {
    email: String,
    password: String,
    name: String,
    account: String,
}

/// `POST /api/v1/auth/register`: a customer signs up to an account (by its slug).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    operation_id = "auth-register",
    tag = "auth",
    request_body = RegisterInput,
    params(openapi_parts::IdempotencyKey),
    responses(
        (status = 201, description = "The new customer", body = User),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 409, response = openapi_parts::Conflict),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn register(app: App, req: Request) -> Result<ApiResponse> {
    let input: RegisterInput = json_body(&req)?;
    let account = Slug::parse("account", &input.account)?;
    let new = NewUser::new(
        Email::parse("email", &input.email)?,
        text("name", &input.name, 1, 200)?,
        &Password::parse("password", &input.password)?,
    )
    .await?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, None).await? {
        return Ok(replay);
    }
    let user = register_customer(&mut tx, account.as_str(), new).await?;
    commit(tx, StatusCode::CREATED, &user).await
}
