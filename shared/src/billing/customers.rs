//! An account's customers, with how much they ordered and spent.

use crate::billing::auth::Principal;
use crate::billing::pagination::{Cursor, Page};
use crate::platform::error::{Error, Result};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    /// Payments of any status.
    pub order_count: i64,
    /// Succeeded (not refunded) payments, per currency: `{"USD": 12900}`.
    #[schema(value_type = HashMap<String, i64>)]
    pub total_spent: Value,
}

/// The aggregate columns, for a `users u` row; shared with the dashboard's top customers.
pub const AGGREGATES: &str = "
    (SELECT count(*) FROM payments p WHERE p.customer_id = u.id) AS order_count,
    (SELECT coalesce(jsonb_object_agg(t.currency, t.spent), '{}'::jsonb)
       FROM (SELECT currency, sum(amount) AS spent FROM payments p
              WHERE p.customer_id = u.id AND p.status = 'succeeded'
              GROUP BY currency) t) AS total_spent";

impl Customer {
    pub fn from_row(row: &tokio_postgres::Row) -> Result<Customer> {
        Ok(Customer {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            created_at: row.try_get("created_at")?,
            order_count: row.try_get("order_count")?,
            total_spent: row.try_get("total_spent")?,
        })
    }
}

/// The account's customers, newest first (admins).
pub async fn list(
    db: &impl GenericClient,
    who: &Principal,
    cursor: &Cursor,
) -> Result<Page<Customer>> {
    who.require_admin()?;
    let after = match cursor.starting_after {
        Some(id) => Some(
            db.query_opt(
                "SELECT created_at FROM users WHERE id = $1 AND account_id = $2 AND role = 'customer'",
                &[&id, &who.account_id],
            )
            .await?
            .ok_or_else(|| {
                Error::bad_request("invalid_request", "starting_after does not name a customer")
            })?
            .try_get::<_, DateTime<Utc>>(0)?,
        ),
        None => None,
    };
    let rows = db
        .query(
            &format!(
                "SELECT u.id, u.name, u.email, u.created_at, {AGGREGATES}
                   FROM users u
                  WHERE u.account_id = $1 AND u.role = 'customer'
                    AND ($2::timestamptz IS NULL OR (u.created_at, u.id) < ($2, $3))
                  ORDER BY u.created_at DESC, u.id DESC
                  LIMIT $4"
            ),
            &[
                &who.account_id,
                &after,
                &cursor.starting_after,
                &(cursor.limit + 1),
            ],
        )
        .await?;
    let customers = rows
        .iter()
        .map(Customer::from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(customers, cursor.limit))
}
