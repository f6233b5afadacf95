//! Accounts (merchants, the tenants) and their users: creating an account with its first
//! admin, and a customer signing up to an account.

use crate::auth::{hash_password, Role, User};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::types::{text, Currency, Email, Password, Slug};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewAccount {
    pub id: Uuid,
    pub name: String,
    pub slug: Slug,
    pub currency: Currency,
    pub admin: NewUser,
}

pub struct NewUser {
    pub id: Uuid,
    pub email: Email,
    pub name: String,
    password_hash: String,
}

impl NewUser {
    /// Hashes the password now, before any transaction is open, so the (deliberately slow)
    /// hash never holds a connection or a lock.
    pub async fn new(email: Email, name: String, password: &Password) -> ApiResult<Self> {
        Ok(NewUser {
            id: Uuid::now_v7(),
            email,
            name,
            password_hash: hash_password(password).await?,
        })
    }

    /// The same user with a fixed id (demo data has stable ids).
    pub fn with_id(self, id: Uuid) -> Self {
        NewUser { id, ..self }
    }
}

/// Creates an account and its first admin.
pub async fn create(tx: &mut Tx<'_>, new: NewAccount) -> ApiResult<(Account, User)> {
    let row = tx
        .query_opt(
            "INSERT INTO accounts (id, name, slug, currency) VALUES ($1, $2, $3, $4)
             ON CONFLICT (slug) DO NOTHING
             RETURNING id, name, slug, currency, created_at",
            &[&new.id, &new.name, &new.slug.as_str(), &new.currency.code()],
        )
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "slug_taken",
                format!(
                    "an account with slug {:?} exists; pass another \"slug\"",
                    new.slug.as_str()
                ),
            )
        })?;
    let account = Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        slug: row.try_get("slug")?,
        currency: row.try_get("currency")?,
        created_at: row.try_get("created_at")?,
    };
    let admin = insert_user(tx, account.id, &new.admin, Role::Admin).await?;
    Ok((account, admin))
}

/// Adds a customer to the account with `account_slug`.
pub async fn register_customer(
    tx: &mut Tx<'_>,
    account_slug: &str,
    new: NewUser,
) -> ApiResult<User> {
    let account_id = find_by_slug(&**tx, account_slug)
        .await?
        .ok_or_else(|| ApiError::validation(format!("no account with slug {account_slug:?}")))?;
    insert_user(tx, account_id, &new, Role::Customer).await
}

async fn insert_user(tx: &Tx<'_>, account_id: Uuid, new: &NewUser, role: Role) -> ApiResult<User> {
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO users (id, account_id, email, name, password_hash, role)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (account_id, lower(email)) DO NOTHING
                 RETURNING {}",
                User::COLUMNS
            ),
            &[
                &new.id,
                &account_id,
                &new.email.as_str(),
                &new.name,
                &new.password_hash,
                &role.as_str(),
            ],
        )
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "email_taken",
                "a user with this email already exists in the account",
            )
        })?;
    User::from_row(&row)
}

/// The account a slug names, if any.
pub async fn find_by_slug(db: &impl GenericClient, slug: &str) -> ApiResult<Option<Uuid>> {
    Ok(db
        .query_opt("SELECT id FROM accounts WHERE slug = $1", &[&slug])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

pub mod api {
    use super::*;
    use crate::app::App;
    use crate::http::{self, ApiResponse, StatusCode};
    use crate::idempotency;
    use lambda_http::Request;
    use serde::Deserialize;

    #[derive(Deserialize)]
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

    /// `POST /api/v1/accounts`: a new merchant account and its admin.
    pub async fn create(app: App, req: Request) -> ApiResult<ApiResponse> {
        let input: CreateAccountInput = http::json_body(&req)?;
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
        let (account, admin) = super::create(&mut tx, new).await?;
        tx.respond(
            StatusCode::CREATED,
            &serde_json::json!({ "account": account, "admin": admin }),
        )
        .await
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RegisterInput {
        email: String,
        password: String,
        name: String,
        account: String,
    }

    /// `POST /api/v1/auth/register`: a customer signs up to an account (by its slug).
    pub async fn register(app: App, req: Request) -> ApiResult<ApiResponse> {
        let input: RegisterInput = http::json_body(&req)?;
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
        tx.respond(StatusCode::CREATED, &user).await
    }
}
