//! Accounts (merchants, the tenants) and their users: creating an account with its first
//! admin, and a customer signing up to an account.

use crate::billing::auth::{hash_password, Role, User};
use crate::billing::values::{Currency, Email, Password, Slug};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
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
    pub async fn new(email: Email, name: String, password: &Password) -> Result<Self> {
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
pub async fn create(tx: &mut Tx<'_>, new: NewAccount) -> Result<(Account, User)> {
    let row = tx
        .query_opt(
            "INSERT INTO accounts (id, name, slug, currency) VALUES ($1, $2, $3, $4)
             ON CONFLICT (slug) DO NOTHING
             RETURNING id, name, slug, currency, created_at",
            &[&new.id, &new.name, &new.slug.as_str(), &new.currency.code()],
        )
        .await?
        .ok_or_else(|| {
            Error::conflict(
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
pub async fn register_customer(tx: &mut Tx<'_>, account_slug: &str, new: NewUser) -> Result<User> {
    let account_id = find_by_slug(&**tx, account_slug)
        .await?
        .ok_or_else(|| Error::validation(format!("no account with slug {account_slug:?}")))?;
    insert_user(tx, account_id, &new, Role::Customer).await
}

async fn insert_user(tx: &Tx<'_>, account_id: Uuid, new: &NewUser, role: Role) -> Result<User> {
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
            Error::conflict(
                "email_taken",
                "a user with this email already exists in the account",
            )
        })?;
    User::from_row(&row)
}

/// The account a slug names, if any.
pub async fn find_by_slug(db: &impl GenericClient, slug: &str) -> Result<Option<Uuid>> {
    Ok(db
        .query_opt("SELECT id FROM accounts WHERE slug = $1", &[&slug])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}
